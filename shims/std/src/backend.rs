//! [`StdSyscalls`]: the core's raw-syscall Linux backend, completed with what needs the C
//! library or process-wide state — the page size from `sysconf`, and the machine-check-safe
//! copy through a Device DAX mapping (the `mcsafe` module: assembly copy loops and a `SIGBUS`
//! handler installed only while a copy runs).

use std::ffi::CStr;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

use pmem2_source::Errno;
use pmem2_source::sys::{FileStat, Linux, MappingCopyError, Syscalls, Timestamp};

/// The Linux backend for std users (and the C ABI): [`Linux`]'s raw syscalls, the page size
/// from `sysconf(_SC_PAGESIZE)`, and machine-check-safe copies for Device DAX I/O.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StdSyscalls;

// The forwarding calls are `#[inline]`, like `Linux`'s own: the C ABI's queries then issue the
// syscall in place, and judge its answer without a return in between.
impl Syscalls for StdSyscalls {
    #[inline]
    fn fcntl_getfl(&self, fd: i32) -> Result<u32, Errno> {
        Linux.fcntl_getfl(fd)
    }

    #[inline]
    fn fstat(&self, fd: i32) -> Result<FileStat, Errno> {
        Linux.fstat(fd)
    }

    #[inline]
    fn birth_time(&self, fd: i32) -> Result<Option<Timestamp>, Errno> {
        Linux.birth_time(fd)
    }

    #[inline]
    fn readlink(&self, path: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
        Linux.readlink(path, buf)
    }

    #[inline]
    fn open_read_only(&self, path: &CStr) -> Result<i32, Errno> {
        Linux.open_read_only(path)
    }

    #[inline]
    fn read(&self, fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
        Linux.read(fd, buf)
    }

    #[inline]
    fn close(&self, fd: i32) -> Result<(), Errno> {
        Linux.close(fd)
    }

    #[inline]
    fn pread(&self, fd: i32, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
        Linux.pread(fd, buf, offset)
    }

    #[inline]
    fn pwrite(&self, fd: i32, buf: &[u8], offset: u64) -> Result<usize, Errno> {
        Linux.pwrite(fd, buf, offset)
    }

    fn page_size(&self) -> Result<usize, Errno> {
        // Asked once: the page size cannot change while the process runs, and `sysconf` on
        // every `alignment` query made it 7 ns through the C ABI against libpmem2's 1 ns
        // (benches/compare). A race only asks twice and stores the same number.
        static KNOWN: AtomicUsize = AtomicUsize::new(0);
        let known = KNOWN.load(Ordering::Relaxed);
        if known != 0 {
            return Ok(known);
        }
        // SAFETY: sysconf has no preconditions.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let size = usize::try_from(size).map_err(|_| {
            Errno::from_raw(
                std::io::Error::last_os_error()
                    .raw_os_error()
                    .unwrap_or(libc::EINVAL),
            )
        })?;
        KNOWN.store(size, Ordering::Relaxed);
        Ok(size)
    }

    fn map_shared(
        &self,
        fd: i32,
        offset: u64,
        len: usize,
        writable: bool,
    ) -> Result<NonNull<u8>, Errno> {
        Linux.map_shared(fd, offset, len, writable)
    }

    unsafe fn unmap(&self, addr: NonNull<u8>, len: usize) -> Result<(), Errno> {
        // SAFETY: the caller's guarantee is passed on unchanged.
        unsafe { Linux.unmap(addr, len) }
    }

    /// Copies with the assembly routine of the `mcsafe` module: a `SIGBUS` while reading the
    /// mapping (a bad block, or a page past the end of a file) is
    /// [`MappingCopyError::MachineCheck`]. [`MappingCopyError::Unsupported`] on architectures
    /// other than x86_64 and aarch64, or if the `SIGBUS` handler cannot be installed.
    unsafe fn copy_from_mapping(
        &self,
        dst: &mut [u8],
        src: NonNull<u8>,
    ) -> Result<(), MappingCopyError> {
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        {
            // SAFETY: the caller guarantees `src` is readable for `dst.len()` bytes of a live
            // mapping.
            unsafe { crate::mcsafe::read(dst, src.as_ptr()) }.map_err(mapping_error)
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        {
            let _ = (dst, src);
            Err(MappingCopyError::Unsupported)
        }
    }

    /// Copies as [`copy_from_mapping`](Self::copy_from_mapping) does, then writes the cache
    /// lines back to memory (x86_64: `clwb`, `clflushopt` or `clflush`, then `sfence`;
    /// aarch64: `DC CVAP` or `DC CVAC`, then `DSB ISH`), recovering from a `SIGBUS` in both.
    unsafe fn copy_to_mapping(&self, dst: NonNull<u8>, src: &[u8]) -> Result<(), MappingCopyError> {
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        {
            // SAFETY: the caller guarantees `dst` is writable for `src.len()` bytes of a live
            // mapping, which a `&[u8]` of the caller's cannot overlap.
            unsafe { crate::mcsafe::write(dst.as_ptr(), src) }.map_err(mapping_error)
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        {
            let _ = (dst, src);
            Err(MappingCopyError::Unsupported)
        }
    }
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn mapping_error(err: crate::mcsafe::CopyError) -> MappingCopyError {
    use crate::mcsafe::CopyError;
    match err {
        CopyError::Copy { .. } | CopyError::Flush => MappingCopyError::MachineCheck,
        CopyError::NoHandler => MappingCopyError::Unsupported,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_size_is_sysconfs_every_time() {
        // SAFETY: sysconf has no preconditions.
        let expected = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap();
        assert!(expected.is_power_of_two());
        for _ in 0..3 {
            assert_eq!(StdSyscalls.page_size(), Ok(expected));
        }
    }
}
