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
//! - `fcntl(2)` (`F_GETFL`), `fstat(2)`, `statx(2)`, `readlinkat(2)`, `syscall(2)`

use core::ffi::CStr;
use core::mem::MaybeUninit;
use core::ptr::NonNull;

use linux_raw_sys::general::{
    AT_EMPTY_PATH, AT_FDCWD, F_GETFL, MAP_SHARED, O_CLOEXEC, O_NOCTTY, O_NOFOLLOW, O_NONBLOCK,
    O_RDONLY, PROT_READ, PROT_WRITE, STATX_BTIME, stat, statx,
};

use super::{FileStat, Syscalls, Timestamp};
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
#[inline]
fn decode(ret: usize) -> Result<usize, Errno> {
    // The kernel returns -errno, and errnos are below 4096.
    let signed = ret as isize;
    if (-4095..0).contains(&signed) {
        Err(Errno::from_raw(-signed as i32))
    } else {
        Ok(ret)
    }
}

// The calls of `from_fd` and of the sysfs queries are `#[inline]`, so that other crates (the
// C ABI, the std shim) get the syscall instruction in place rather than a call through the
// GOT: the code that judges a syscall's answer then runs without a return in between (see
// `classify.rs`).
impl Syscalls for Linux {
    #[inline]
    fn fcntl_getfl(&self, fd: i32) -> Result<u32, Errno> {
        // SAFETY: F_GETFL takes no pointer argument and only reads the descriptor table.
        let ret = unsafe { sc::syscall!(FCNTL, fd, F_GETFL) };
        // The flags are a C int; only the low 32 bits are meaningful.
        decode(ret).map(|flags| flags as u32)
    }

    #[inline]
    fn fstat(&self, fd: i32) -> Result<FileStat, Errno> {
        let mut st = MaybeUninit::<stat>::uninit();
        // SAFETY: `st` is a writable `struct stat` of this architecture's kernel layout (from
        // linux-raw-sys), live for the whole call.
        let ret = unsafe { sc::syscall!(FSTAT, fd, st.as_mut_ptr()) };
        decode(ret)?;
        // SAFETY: fstat succeeded, so the kernel filled in the whole struct.
        let st = unsafe { st.assume_init() };
        // `st_ctime` is an unsigned long in x86_64's layout and a signed one in the generic
        // layout (aarch64, riscv64); the kernel's value is signed seconds since 1970, and the
        // nanoseconds are below 10^9.
        #[allow(clippy::unnecessary_cast, reason = "already i64 in the generic layout")]
        let ctime = Timestamp {
            sec: st.st_ctime as i64,
            nsec: st.st_ctime_nsec as u32,
        };
        Ok(FileStat {
            mode: st.st_mode,
            rdev: st.st_rdev,
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size,
            ctime,
        })
    }

    fn birth_time(&self, fd: i32) -> Result<Option<Timestamp>, Errno> {
        let mut stx = MaybeUninit::<statx>::uninit();
        // SAFETY: the empty path is NUL-terminated and only read; `stx` is a writable
        // `struct statx` (linux-raw-sys layout), live for the whole call.
        let ret = unsafe {
            sc::syscall!(STATX, fd, c"".as_ptr(), AT_EMPTY_PATH, STATX_BTIME, stx.as_mut_ptr())
        };
        decode(ret)?;
        // SAFETY: statx succeeded, so the kernel filled in the whole struct (fields it could
        // not fill are zero, and `stx_mask` says which were filled).
        let stx = unsafe { stx.assume_init() };
        Ok((stx.stx_mask & STATX_BTIME != 0).then_some(Timestamp {
            sec: stx.stx_btime.tv_sec,
            nsec: stx.stx_btime.tv_nsec,
        }))
    }

    #[inline]
    fn readlink(&self, path: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
        // SAFETY: `path` is NUL-terminated and `buf` is writable for `buf.len()` bytes; the
        // kernel writes at most that many and does not keep either pointer.
        let ret = unsafe {
            sc::syscall!(READLINKAT, AT_FDCWD, path.as_ptr(), buf.as_mut_ptr(), buf.len())
        };
        decode(ret)
    }

    #[inline]
    fn open_read_only(&self, path: &CStr) -> Result<i32, Errno> {
        let flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW | O_CLOEXEC;
        // SAFETY: `path` is NUL-terminated and only read during the call.
        let ret = unsafe { sc::syscall!(OPENAT, AT_FDCWD, path.as_ptr(), flags) };
        // A descriptor is a small non-negative int.
        decode(ret).map(|fd| fd as i32)
    }

    #[inline]
    fn read(&self, fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
        // SAFETY: `buf` is writable for `buf.len()` bytes during the call.
        let ret = unsafe { sc::syscall!(READ, fd, buf.as_mut_ptr(), buf.len()) };
        decode(ret)
    }

    #[inline]
    fn close(&self, fd: i32) -> Result<(), Errno> {
        // SAFETY: closing a descriptor touches no memory of ours.
        let ret = unsafe { sc::syscall!(CLOSE, fd) };
        decode(ret).map(drop)
    }

    fn pread(&self, fd: i32, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
        // SAFETY: `buf` is writable for `buf.len()` bytes during the call. On the 64-bit
        // architectures this backend serves, the offset is one register.
        let ret = unsafe { sc::syscall!(PREAD64, fd, buf.as_mut_ptr(), buf.len(), offset) };
        decode(ret)
    }

    fn pwrite(&self, fd: i32, buf: &[u8], offset: u64) -> Result<usize, Errno> {
        // SAFETY: `buf` is readable for `buf.len()` bytes during the call; see `pread`.
        let ret = unsafe { sc::syscall!(PWRITE64, fd, buf.as_ptr(), buf.len(), offset) };
        decode(ret)
    }

    fn page_size(&self) -> Result<usize, Errno> {
        page_size()
    }

    fn map_shared(
        &self,
        fd: i32,
        offset: u64,
        len: usize,
        writable: bool,
    ) -> Result<NonNull<u8>, Errno> {
        let protection = if writable { PROT_READ | PROT_WRITE } else { PROT_READ };
        // SAFETY: a new mapping at an address the kernel picks (NULL hint) cannot overlap
        // any memory Rust knows about; nothing is read or written here.
        let ret = unsafe { sc::syscall!(MMAP, 0usize, len, protection, MAP_SHARED, fd, offset) };
        let addr = decode(ret)?;
        NonNull::new(addr as *mut u8).ok_or(Errno::EFAULT)
    }

    unsafe fn unmap(&self, addr: NonNull<u8>, len: usize) -> Result<(), Errno> {
        // SAFETY: the caller guarantees `addr`/`len` are a mapping of ours nobody uses now.
        let ret = unsafe { sc::syscall!(MUNMAP, addr.as_ptr(), len) };
        decode(ret).map(drop)
    }
}

/// The base page size. x86_64 and riscv64 Linux have exactly one, 4 KiB; aarch64 kernels are
/// built with 4, 16 or 64 KiB pages, so there it is `AT_PAGESZ` from `/proc/self/auxv`.
fn page_size() -> Result<usize, Errno> {
    if cfg!(any(target_arch = "x86_64", target_arch = "riscv64")) {
        Ok(4096)
    } else {
        page_size_from_auxv(&Linux)
    }
}

/// `AT_PAGESZ` from the auxiliary vector in `/proc/self/auxv`, read through `sys` (the
/// running kernel on aarch64; scripted auxv files in the tests, on every architecture).
fn page_size_from_auxv<S: Syscalls + ?Sized>(sys: &S) -> Result<usize, Errno> {
    /// `AT_PAGESZ` in `<linux/auxvec.h>` (the same on every architecture).
    const AT_PAGESZ: usize = 6;
    const ENTRY: usize = 2 * size_of::<usize>();
    let fd = sys.open_read_only(c"/proc/self/auxv")?;
    let mut entry = [0u8; ENTRY];
    let found = loop {
        match read_exactly(sys, fd, &mut entry) {
            Ok(true) => {}
            Ok(false) => break Err(Errno::ENOENT),
            Err(errno) => break Err(errno),
        }
        let (key, value) = entry.split_at(size_of::<usize>());
        let word = |bytes: &[u8]| bytes.try_into().map(usize::from_ne_bytes).unwrap_or(0);
        if word(key) == AT_PAGESZ {
            break Ok(word(value));
        }
    };
    let _ = sys.close(fd);
    found
}

/// Fills `buf` from `fd`: `Ok(true)` when full, `Ok(false)` at the end of the file.
fn read_exactly<S: Syscalls + ?Sized>(sys: &S, fd: i32, buf: &mut [u8]) -> Result<bool, Errno> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..).filter(|rest| !rest.is_empty()) {
        match sys.read(fd, rest)? {
            0 => return Ok(false),
            n => filled += n,
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::sys::consts::*;

    #[test]
    fn syscall_numbers_match_libc() {
        let pairs = [
            (sc::nr::FCNTL, libc::SYS_fcntl),
            (sc::nr::FSTAT, libc::SYS_fstat),
            (sc::nr::STATX, libc::SYS_statx),
            (sc::nr::READLINKAT, libc::SYS_readlinkat),
            (sc::nr::OPENAT, libc::SYS_openat),
            (sc::nr::READ, libc::SYS_read),
            (sc::nr::CLOSE, libc::SYS_close),
            (sc::nr::PREAD64, libc::SYS_pread64),
            (sc::nr::PWRITE64, libc::SYS_pwrite64),
            (sc::nr::MMAP, libc::SYS_mmap),
            (sc::nr::MUNMAP, libc::SYS_munmap),
        ];
        for (ours, theirs) in pairs {
            assert_eq!(ours, theirs as usize);
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "makes real syscalls (inline assembly)")]
    fn page_size_matches_sysconf() {
        // SAFETY: sysconf has no preconditions.
        let expected = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        assert_eq!(Linux.page_size(), Ok(expected));
        assert_eq!(page_size_from_auxv(&Linux), Ok(expected));
    }

    /// An auxiliary vector of `(key, value)` words, as `/proc/self/auxv` holds it.
    fn auxv(entries: &[(usize, usize)]) -> std::vec::Vec<u8> {
        entries
            .iter()
            .flat_map(|&(key, value)| [key.to_ne_bytes(), value.to_ne_bytes()])
            .flatten()
            .collect()
    }

    /// The aarch64 path, on any architecture: `AT_PAGESZ` (6) among other entries, and what
    /// happens when it is missing, cut short or unreadable.
    #[test]
    fn page_size_from_scripted_auxv() {
        use crate::sys::scripted::{FileScript, ScriptedKernel};
        const AUXV: &str = "/proc/self/auxv";
        let scripted = |bytes: &[u8]| ScriptedKernel::regular_file().with_file(AUXV, bytes);

        let kernel = scripted(&auxv(&[(33, 0x7fff), (16, 0xbfebfbff), (6, 65536), (0, 0)]));
        assert_eq!(page_size_from_auxv(&kernel), Ok(65536));
        assert_eq!(kernel.open_descriptors(), 0, "closed after reading");

        let kernel = scripted(&auxv(&[(33, 0x7fff), (0, 0)]));
        assert_eq!(page_size_from_auxv(&kernel), Err(Errno::ENOENT), "no AT_PAGESZ");
        assert_eq!(kernel.open_descriptors(), 0);

        let mut cut = auxv(&[(33, 0x7fff), (6, 16384)]);
        cut.truncate(cut.len() - 1);
        let kernel = scripted(&cut);
        assert_eq!(
            page_size_from_auxv(&kernel),
            Err(Errno::ENOENT),
            "a cut entry is not an answer"
        );

        let kernel = ScriptedKernel::regular_file()
            .with_file_script(AUXV, FileScript::ReadFails(Errno::EIO));
        assert_eq!(page_size_from_auxv(&kernel), Err(Errno::EIO));
        assert_eq!(kernel.open_descriptors(), 0, "closed after a failed read");

        let kernel = ScriptedKernel::regular_file();
        assert_eq!(page_size_from_auxv(&kernel), Err(Errno::ENOENT), "no auxv");
    }

    #[test]
    #[cfg_attr(miri, ignore = "makes real syscalls (inline assembly)")]
    fn file_io_round_trip() {
        let dir = std::env::temp_dir().join(std::format!("pmem2-source-linux-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("data");
        std::fs::write(&path, b"0123456789").expect("write");
        let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
        let fd = Linux.open_read_only(&c_path).expect("open");
        let mut buf = [0u8; 4];
        assert_eq!(Linux.read(fd, &mut buf), Ok(4));
        assert_eq!(&buf, b"0123");
        assert_eq!(Linux.pread(fd, &mut buf, 6), Ok(4));
        assert_eq!(&buf, b"6789");
        assert_eq!(Linux.pwrite(fd, b"x", 0), Err(Errno::EBADF), "opened read-only");
        assert_eq!(Linux.close(fd), Ok(()));
        assert_eq!(Linux.close(fd), Err(Errno::EBADF));
        let file = std::fs::OpenOptions::new().read(true).write(true).open(&path).expect("open");
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
        assert_eq!(Linux.pwrite(fd, b"ab", 2), Ok(2));
        let map = Linux.map_shared(fd, 0, 10, true).expect("mmap");
        // SAFETY: the mapping is 10 readable bytes of the file and lives until unmap.
        let mapped = unsafe { core::slice::from_raw_parts(map.as_ptr(), 10) };
        assert_eq!(mapped, b"01ab456789");
        // SAFETY: the mapping is not used after this.
        assert_eq!(unsafe { Linux.unmap(map, 10) }, Ok(()));
        assert_eq!(Linux.map_shared(fd, 1, 10, false), Err(Errno::EINVAL), "unaligned offset");
        std::fs::remove_dir_all(&dir).expect("clean up");
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
        assert_eq!(AT_EMPTY_PATH as i32, libc::AT_EMPTY_PATH);
        assert_eq!(O_NONBLOCK as i32, libc::O_NONBLOCK);
        assert_eq!(O_NOCTTY as i32, libc::O_NOCTTY);
        assert_eq!(O_NOFOLLOW as i32, libc::O_NOFOLLOW);
        assert_eq!(STATX_BTIME, libc::STATX_BTIME);
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
    #[cfg_attr(miri, ignore = "makes real syscalls (inline assembly)")]
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
        assert_eq!(ours.ctime.sec, meta.ctime());
        assert_eq!(i64::from(ours.ctime.nsec), meta.ctime_nsec());
    }

    #[test]
    #[cfg_attr(miri, ignore = "makes real syscalls (inline assembly)")]
    fn birth_time_matches_std() {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open("Cargo.toml").expect("open Cargo.toml");
        let ours = Linux.birth_time(file.as_raw_fd()).expect("statx");
        // std asks statx too; a file system without birth times gives an error there.
        match file.metadata().expect("metadata").created() {
            Ok(created) => {
                let since = created.duration_since(std::time::UNIX_EPOCH).expect("after 1970");
                let expected = Timestamp {
                    sec: since.as_secs() as i64,
                    nsec: since.subsec_nanos(),
                };
                assert_eq!(ours, Some(expected));
            }
            Err(_) => assert_eq!(ours, None),
        }
        assert_eq!(Linux.birth_time(-1), Err(Errno::EBADF));
        assert_eq!(Linux.birth_time(i32::MAX), Err(Errno::EBADF));
    }

    #[test]
    #[cfg_attr(miri, ignore = "makes real syscalls (inline assembly)")]
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
    #[cfg_attr(miri, ignore = "makes real syscalls (inline assembly)")]
    fn bad_descriptors_give_ebadf() {
        assert_eq!(Linux.fcntl_getfl(-1), Err(Errno::EBADF));
        assert_eq!(Linux.fcntl_getfl(i32::MAX), Err(Errno::EBADF));
        assert_eq!(Linux.fstat(i32::MAX), Err(Errno::EBADF));
    }
}
