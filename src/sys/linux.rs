//! The real kernel: raw Linux syscalls through `sc`, with numbers, constants and
//! `struct stat` from `linux-raw-sys`. This is the only file that issues a syscall.
//!
//! # Safety
//!
//! Each call passes only pointers to live, correctly sized buffers owned by the caller for the
//! duration of the call; the kernel writes through them and nothing else. A syscall has no
//! other effect on Rust memory. Return values in `-4095..=-1` are errors (see `syscall(2)`).
//!
//! # References
//! - `fcntl(2)` (`F_GETFL`), `fstat(2)`, `readlinkat(2)`, `syscall(2)`

use core::ffi::CStr;
use core::mem::MaybeUninit;

use linux_raw_sys::general::{AT_FDCWD, F_GETFL, stat};

use super::{FileStat, Syscalls};
use crate::error::Errno;

/// The running Linux kernel, called directly (no libc).
///
/// A zero-sized type: generic code over `S: Syscalls` compiles to the bare syscall
/// instructions.
///
/// ```
/// use pmem2_source::sys::{Linux, Syscalls};
///
/// let file = std::fs::File::open("Cargo.toml").unwrap();
/// let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
/// let stat = Linux.fstat(fd).unwrap();
/// assert_eq!(stat.size as u64, file.metadata().unwrap().len());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Linux;

/// Splits a raw syscall return into the value or the errno.
fn decode(ret: usize) -> Result<usize, Errno> {
    // The kernel returns -errno, and errnos are below 4096.
    let signed = ret as isize;
    if (-4095..0).contains(&signed) {
        Err(Errno::from_raw(-signed as i32))
    } else {
        Ok(ret)
    }
}

impl Syscalls for Linux {
    fn fcntl_getfl(&self, fd: i32) -> Result<u32, Errno> {
        // SAFETY: F_GETFL takes no pointer argument and only reads the descriptor table.
        let ret = unsafe { sc::syscall!(FCNTL, fd, F_GETFL) };
        // The flags are a C int; only the low 32 bits are meaningful.
        decode(ret).map(|flags| flags as u32)
    }

    fn fstat(&self, fd: i32) -> Result<FileStat, Errno> {
        let mut st = MaybeUninit::<stat>::uninit();
        // SAFETY: `st` is a writable `struct stat` of this architecture's kernel layout (from
        // linux-raw-sys), live for the whole call.
        let ret = unsafe { sc::syscall!(FSTAT, fd, st.as_mut_ptr()) };
        decode(ret)?;
        // SAFETY: fstat succeeded, so the kernel filled in the whole struct.
        let st = unsafe { st.assume_init() };
        Ok(FileStat {
            mode: st.st_mode,
            rdev: st.st_rdev,
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size,
        })
    }

    fn readlink(&self, path: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
        // SAFETY: `path` is NUL-terminated and `buf` is writable for `buf.len()` bytes; the
        // kernel writes at most that many and does not keep either pointer.
        let ret = unsafe {
            sc::syscall!(
                READLINKAT,
                AT_FDCWD,
                path.as_ptr(),
                buf.as_mut_ptr(),
                buf.len()
            )
        };
        decode(ret)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::sys::consts::*;

    #[test]
    fn syscall_numbers_match_libc() {
        assert_eq!(sc::nr::FCNTL, libc::SYS_fcntl as usize);
        assert_eq!(sc::nr::FSTAT, libc::SYS_fstat as usize);
        assert_eq!(sc::nr::READLINKAT, libc::SYS_readlinkat as usize);
    }

    #[test]
    fn constants_match_libc() {
        assert_eq!(F_GETFL as i32, libc::F_GETFL);
        assert_eq!(AT_FDCWD, libc::AT_FDCWD);
        assert_eq!(O_ACCMODE as i32, libc::O_ACCMODE);
        assert_eq!(O_RDONLY as i32, libc::O_RDONLY);
        assert_eq!(O_WRONLY as i32, libc::O_WRONLY);
        assert_eq!(O_RDWR as i32, libc::O_RDWR);
        assert_eq!(O_PATH as i32, libc::O_PATH);
        assert_eq!(S_IFMT, libc::S_IFMT);
        assert_eq!(S_IFREG, libc::S_IFREG);
        assert_eq!(S_IFDIR, libc::S_IFDIR);
        assert_eq!(S_IFCHR, libc::S_IFCHR);
        assert_eq!(S_IFBLK, libc::S_IFBLK);
        assert_eq!(S_IFIFO, libc::S_IFIFO);
        assert_eq!(S_IFSOCK, libc::S_IFSOCK);
        assert_eq!(S_IFLNK, libc::S_IFLNK);
        // The kernel's struct stat and glibc's agree in size on the architectures we call
        // FSTAT on directly.
        assert_eq!(
            core::mem::size_of::<stat>(),
            core::mem::size_of::<libc::stat>()
        );
    }

    #[test]
    fn decode_splits_errors_from_values() {
        assert_eq!(decode(0), Ok(0));
        assert_eq!(decode(42), Ok(42));
        assert_eq!(decode(-9isize as usize), Err(Errno::EBADF));
        assert_eq!(decode(-4095isize as usize), Err(Errno::from_raw(4095)));
        // -4096 and below are values (e.g. high mmap addresses), not errors.
        assert_eq!(decode(-4096isize as usize), Ok(-4096isize as usize));
    }

    #[test]
    fn fstat_matches_libc() {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let file = std::fs::File::open("Cargo.toml").expect("open Cargo.toml");
        let ours = Linux.fstat(file.as_raw_fd()).expect("fstat");
        let meta = file.metadata().expect("metadata");
        assert_eq!(ours.mode, meta.mode());
        assert_eq!(ours.dev, meta.dev());
        assert_eq!(ours.ino, meta.ino());
        assert_eq!(ours.rdev, meta.rdev());
        assert_eq!(ours.size as u64, meta.size());
    }

    #[test]
    fn readlink_reads_and_truncates() {
        let path = c"/proc/self/cwd";
        let expected = std::env::current_dir().expect("cwd");
        let expected = expected.as_os_str().as_encoded_bytes();
        let mut buf = [0u8; 4096];
        let n = Linux.readlink(path, &mut buf).expect("readlink");
        assert_eq!(&buf[..n], expected);
        let mut small = [0u8; 3];
        assert_eq!(Linux.readlink(path, &mut small), Ok(3));
        assert_eq!(&small, &expected[..3]);
        assert_eq!(
            Linux.readlink(c"/nonexistent/x", &mut buf),
            Err(Errno::ENOENT)
        );
        assert_eq!(
            Linux.readlink(c"/proc/self/status", &mut buf),
            Err(Errno::EINVAL)
        );
    }

    #[test]
    fn bad_descriptors_give_ebadf() {
        assert_eq!(Linux.fcntl_getfl(-1), Err(Errno::EBADF));
        assert_eq!(Linux.fcntl_getfl(i32::MAX), Err(Errno::EBADF));
        assert_eq!(Linux.fstat(i32::MAX), Err(Errno::EBADF));
    }
}
