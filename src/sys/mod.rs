//! The syscall seam: the three kernel calls a source needs, behind the [`Syscalls`] trait.
//!
//! Every entry point of the crate is generic over `S: Syscalls`, so the decision logic never
//! knows whether it talks to Linux ([`Linux`], the default where it exists), the scripted fake
//! kernel of the tests (`ScriptedKernel`, feature `testing`), or an embedder's own
//! backend (a unikernel, a sandbox). Dispatch is static: a ZST backend costs nothing.
//!
//! Values follow the Linux ABI whatever the backend: `F_GETFL` flags and `st_mode` bits as in
//! `<fcntl.h>`/`<sys/stat.h>`, errno numbers of the target architecture.

use core::ffi::CStr;
use core::ptr::NonNull;

use crate::error::Errno;

with_linux_backend! {
    #[allow(unsafe_code)]
    mod linux;
    pub use linux::Linux;
}

#[cfg(any(test, feature = "testing"))]
pub mod scripted;

/// Linux ABI constants the decision logic uses, re-exported from `linux-raw-sys` under their
/// C names.
pub mod consts {
    pub use linux_raw_sys::general::{
        O_ACCMODE, O_PATH, O_RDONLY, O_RDWR, O_WRONLY, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK,
        S_IFMT, S_IFREG, S_IFSOCK,
    };
}

/// What [`Syscalls::fstat`] reports: the few fields of `struct stat` a source uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct FileStat {
    /// `st_mode`: file type bits (`S_IFMT`) and permissions.
    pub mode: u32,
    /// `st_rdev`: the device a device file stands for.
    pub rdev: u64,
    /// `st_dev`: the device holding the file.
    pub dev: u64,
    /// `st_ino`: the inode number.
    pub ino: u64,
    /// `st_size`: the size in bytes (0 for most special files).
    pub size: i64,
}

/// Why a copy to or from a Device DAX mapping did not complete.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MappingCopyError {
    /// The memory could not be accessed (a machine check: `SIGBUS` on a bad block). The copy
    /// stopped; the destination may be partly written.
    MachineCheck,
    /// This backend cannot copy with recovery from machine checks (the no_std [`Linux`]
    /// backend installs no signal handler; `pmem2-source-std` has one that does).
    Unsupported,
}

/// The caller's side of a `pread_mcsafe`/`pwrite_mcsafe` transfer.
pub(crate) enum Buffer<'a> {
    Read(&'a mut [u8]),
    Write(&'a [u8]),
}

impl Buffer<'_> {
    pub(crate) fn direction(&self) -> crate::IoDirection {
        match self {
            Buffer::Read(_) => crate::IoDirection::Read,
            Buffer::Write(_) => crate::IoDirection::Write,
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Buffer::Read(buf) => buf.len(),
            Buffer::Write(buf) => buf.len(),
        }
    }
}

/// Maps `map_len` bytes of `fd` from `start`, copies `buffer` from or to the mapping at byte
/// `at`, and unmaps: the safe wrapper around the unsafe mapping calls of [`Syscalls`].
///
/// The outer error is a failed `mmap`/`munmap` (call name and errno); the inner result is the
/// copy's. A range that does not fit the mapping is refused with `EINVAL` before mapping.
pub(crate) fn copy_through_mapping<S: Syscalls + ?Sized>(
    sys: &S,
    fd: i32,
    start: u64,
    map_len: usize,
    at: usize,
    buffer: Buffer<'_>,
) -> Result<Result<(), MappingCopyError>, (&'static str, Errno)> {
    if at.checked_add(buffer.len()).is_none_or(|end| end > map_len) || map_len == 0 {
        return Err(("mmap", Errno::EINVAL));
    }
    let writable = matches!(buffer, Buffer::Write(_));
    let map = sys
        .map_shared(fd, start, map_len, writable)
        .map_err(|errno| ("mmap", errno))?;
    // `at + buffer.len() <= map_len` (checked above): the pointer stays inside the mapping.
    let Some(target) = NonNull::new(map.as_ptr().wrapping_add(at)) else {
        // SAFETY: the mapping came from map_shared with this length and is not used again.
        unsafe { sys.unmap(map, map_len) }.map_err(|errno| ("munmap", errno))?;
        return Err(("mmap", Errno::EFAULT));
    };
    let copied = match buffer {
        // SAFETY: `target` is valid for `buf.len()` bytes of the live mapping (above).
        Buffer::Read(buf) => unsafe { sys.copy_from_mapping(buf, target) },
        // SAFETY: as above, and the mapping was made writable for a write.
        Buffer::Write(buf) => unsafe { sys.copy_to_mapping(target, buf) },
    };
    // SAFETY: the mapping came from map_shared with this length and is not used again.
    unsafe { sys.unmap(map, map_len) }.map_err(|errno| ("munmap", errno))?;
    Ok(copied)
}

/// The kernel calls a source needs.
///
/// Implementations must report failures as the errno the kernel would give; they must not
/// retry or reinterpret (the decision logic maps errnos to libpmem2's codes).
///
/// Only the first three are required: they are all that creating a source needs. The others
/// serve the queries and I/O and default to failing with `ENOSYS` (or
/// [`MappingCopyError::Unsupported`]), so a minimal embedder implements three functions.
pub trait Syscalls {
    /// `fcntl(fd, F_GETFL)`: the file status flags and access mode.
    fn fcntl_getfl(&self, fd: i32) -> Result<u32, Errno>;

    /// `fstat(fd)`.
    fn fstat(&self, fd: i32) -> Result<FileStat, Errno>;

    /// `readlinkat(AT_FDCWD, path, buf, buf.len())`: copies the link target (not
    /// NUL-terminated, silently truncated to `buf.len()`) and returns how many bytes it wrote.
    fn readlink(&self, path: &CStr, buf: &mut [u8]) -> Result<usize, Errno>;

    /// `openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC)`: a descriptor the caller closes with
    /// [`close`](Self::close). Used for sysfs attributes.
    fn open_read_only(&self, path: &CStr) -> Result<i32, Errno> {
        let _ = path;
        Err(Errno::ENOSYS)
    }

    /// `read(fd, buf, buf.len())`: how many bytes were read (0 at the end of the file).
    fn read(&self, fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
        let _ = (fd, buf);
        Err(Errno::ENOSYS)
    }

    /// `close(fd)` of a descriptor from [`open_read_only`](Self::open_read_only).
    fn close(&self, fd: i32) -> Result<(), Errno> {
        let _ = fd;
        Err(Errno::ENOSYS)
    }

    /// `pread(fd, buf, buf.len(), offset)`: how many bytes were read (may be short).
    fn pread(&self, fd: i32, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
        let _ = (fd, buf, offset);
        Err(Errno::ENOSYS)
    }

    /// `pwrite(fd, buf, buf.len(), offset)`: how many bytes were written (may be short).
    fn pwrite(&self, fd: i32, buf: &[u8], offset: u64) -> Result<usize, Errno> {
        let _ = (fd, buf, offset);
        Err(Errno::ENOSYS)
    }

    /// The system page size (`sysconf(_SC_PAGESIZE)`): the alignment of regular-file and
    /// anonymous sources.
    fn page_size(&self) -> Result<usize, Errno> {
        Err(Errno::ENOSYS)
    }

    /// `mmap(NULL, len, PROT_READ [| PROT_WRITE], MAP_SHARED, fd, offset)`: a shared mapping
    /// of part of a Device DAX, released with [`unmap`](Self::unmap). `len` is not zero and
    /// `offset` is aligned as the device requires.
    fn map_shared(
        &self,
        fd: i32,
        offset: u64,
        len: usize,
        writable: bool,
    ) -> Result<NonNull<u8>, Errno> {
        let _ = (fd, offset, len, writable);
        Err(Errno::ENOSYS)
    }

    /// `munmap(addr, len)`.
    ///
    /// # Safety
    ///
    /// `addr` and `len` describe a mapping from [`map_shared`](Self::map_shared) that nothing
    /// uses any more.
    unsafe fn unmap(&self, addr: NonNull<u8>, len: usize) -> Result<(), Errno> {
        let _ = (addr, len);
        Err(Errno::ENOSYS)
    }

    /// Copies `dst.len()` bytes from the mapped memory at `src` into `dst`, surviving a
    /// machine check (reported as [`MappingCopyError::MachineCheck`]) instead of dying of it.
    ///
    /// # Safety
    ///
    /// `src` is valid for reads of `dst.len()` bytes of a live [`map_shared`](Self::map_shared)
    /// mapping.
    unsafe fn copy_from_mapping(
        &self,
        dst: &mut [u8],
        src: NonNull<u8>,
    ) -> Result<(), MappingCopyError> {
        let _ = (dst, src);
        Err(MappingCopyError::Unsupported)
    }

    /// Copies `src` into the mapped memory at `dst` and makes it durable (flushed from the
    /// CPU caches), surviving a machine check as [`copy_from_mapping`](Self::copy_from_mapping)
    /// does.
    ///
    /// # Safety
    ///
    /// `dst` is valid for writes of `src.len()` bytes of a live writable
    /// [`map_shared`](Self::map_shared) mapping.
    unsafe fn copy_to_mapping(&self, dst: NonNull<u8>, src: &[u8]) -> Result<(), MappingCopyError> {
        let _ = (dst, src);
        Err(MappingCopyError::Unsupported)
    }
}

impl<S: Syscalls + ?Sized> Syscalls for &S {
    fn fcntl_getfl(&self, fd: i32) -> Result<u32, Errno> {
        (**self).fcntl_getfl(fd)
    }

    fn fstat(&self, fd: i32) -> Result<FileStat, Errno> {
        (**self).fstat(fd)
    }

    fn readlink(&self, path: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
        (**self).readlink(path, buf)
    }

    fn open_read_only(&self, path: &CStr) -> Result<i32, Errno> {
        (**self).open_read_only(path)
    }

    fn read(&self, fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
        (**self).read(fd, buf)
    }

    fn close(&self, fd: i32) -> Result<(), Errno> {
        (**self).close(fd)
    }

    fn pread(&self, fd: i32, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
        (**self).pread(fd, buf, offset)
    }

    fn pwrite(&self, fd: i32, buf: &[u8], offset: u64) -> Result<usize, Errno> {
        (**self).pwrite(fd, buf, offset)
    }

    fn page_size(&self) -> Result<usize, Errno> {
        (**self).page_size()
    }

    fn map_shared(
        &self,
        fd: i32,
        offset: u64,
        len: usize,
        writable: bool,
    ) -> Result<NonNull<u8>, Errno> {
        (**self).map_shared(fd, offset, len, writable)
    }

    unsafe fn unmap(&self, addr: NonNull<u8>, len: usize) -> Result<(), Errno> {
        // SAFETY: the caller's guarantee is passed on unchanged.
        unsafe { (**self).unmap(addr, len) }
    }

    unsafe fn copy_from_mapping(
        &self,
        dst: &mut [u8],
        src: NonNull<u8>,
    ) -> Result<(), MappingCopyError> {
        // SAFETY: the caller's guarantee is passed on unchanged.
        unsafe { (**self).copy_from_mapping(dst, src) }
    }

    unsafe fn copy_to_mapping(&self, dst: NonNull<u8>, src: &[u8]) -> Result<(), MappingCopyError> {
        // SAFETY: the caller's guarantee is passed on unchanged.
        unsafe { (**self).copy_to_mapping(dst, src) }
    }
}
