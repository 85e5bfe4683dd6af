//! The syscall seam: the three kernel calls a source needs, behind the [`Syscalls`] trait.
//!
//! Windows answers come through the same trait: [`Syscalls::file_information`],
//! [`Syscalls::allocation_granularity`] and positional handle I/O, which default to "not
//! implemented" like every optional call, so a Linux backend need not know them and the
//! scripted kernel fakes them on any host. The `Windows` backend (Windows targets only)
//! implements those and leaves the Linux calls failing with `ENOSYS`.
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

use crate::error::{Errno, Win32Error};

with_linux_backend! {
    #[allow(unsafe_code)]
    mod linux;
    pub use linux::Linux;
}

#[cfg(windows)]
#[allow(unsafe_code)]
mod windows;
#[cfg(windows)]
pub use windows::Windows;

// The backend of the convenience calls (`Source::from_fd`/`from_handle`, `Source::size`, …).
with_linux_backend! {
    pub(crate) use linux::Linux as Native;
}
#[cfg(windows)]
pub(crate) use windows::Windows as Native;

/// A Windows `HANDLE` (what `std::os::windows::io::RawHandle` and `windows-sys`'s `HANDLE`
/// are). Only its value matters here: the core never dereferences it, and the type exists on
/// every target so the Windows decision logic runs against the scripted kernel anywhere.
pub type RawHandle = *mut core::ffi::c_void;

/// `INVALID_HANDLE_VALUE` (`(HANDLE)-1`), what `CreateFile` returns on failure.
pub const INVALID_HANDLE_VALUE: RawHandle = core::ptr::without_provenance_mut(usize::MAX);

/// `FILE_ATTRIBUTE_DIRECTORY` (`<winnt.h>`).
pub const FILE_ATTRIBUTE_DIRECTORY: u32 = 0x10;

/// What [`Syscalls::file_information`] reports: the fields of Windows'
/// `BY_HANDLE_FILE_INFORMATION` a source uses.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct FileInformation {
    /// `dwFileAttributes` (`FILE_ATTRIBUTE_DIRECTORY`, …).
    pub attributes: u32,
    /// `dwVolumeSerialNumber`: the volume holding the file.
    pub volume_serial_number: u32,
    /// `nFileIndexHigh:nFileIndexLow`: the file's identifier on its volume.
    pub file_index: u64,
    /// `nFileSizeHigh:nFileSizeLow`: the size in bytes.
    pub size: u64,
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

/// A file timestamp as the kernel keeps it: seconds and nanoseconds since the Unix epoch.
/// Ordered by time (seconds first).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Timestamp {
    /// Whole seconds (negative before 1970).
    pub sec: i64,
    /// Nanoseconds within the second, below 1 000 000 000.
    pub nsec: u32,
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
    /// `st_ctime`: when the inode last changed (contents or metadata). A file's birth time
    /// is never later than its `st_ctime`, which is how a reused inode number is told apart
    /// from the file that had it (see [`Syscalls::birth_time`]).
    pub ctime: Timestamp,
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

    /// `statx(fd, "", AT_EMPTY_PATH, STATX_BTIME)`: when the file was created, or `None` if
    /// its file system does not record it.
    ///
    /// The queries of a source ask this only when `fstat` shows the recorded device and inode
    /// number but a different `st_ctime`: then the descriptor refers either to the same file,
    /// changed since, or to a new file that was given the old one's inode number after the
    /// descriptor number was closed and reused (ext4 and XFS hand out a freed inode number
    /// again at once). A file born after the recorded `st_ctime` is the new one.
    ///
    /// The default fails with `ENOSYS`, which the queries take as "not known" (as they do
    /// `EPERM`, what some seccomp filters answer): a reused inode number then goes unnoticed.
    /// A backend that wraps another must forward this call too.
    fn birth_time(&self, fd: i32) -> Result<Option<Timestamp>, Errno> {
        let _ = fd;
        Err(Errno::ENOSYS)
    }

    /// `openat(AT_FDCWD, path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW | O_CLOEXEC)`: a
    /// descriptor the caller closes with [`close`](Self::close). Used for sysfs attributes,
    /// which are regular files; the flags keep a FIFO, a terminal or a link put in their
    /// place from blocking the open or becoming the controlling terminal, or from being
    /// followed (the caller `fstat`s what was opened and reads only a regular file).
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

    /// The granularity at which the system places mappings, which is the alignment of every
    /// source but a Device DAX: the page size on Linux (the default asks
    /// [`page_size`](Self::page_size)), the allocation granularity on Windows
    /// (`GetSystemInfo`'s `dwAllocationGranularity`, what libpmem2 answers there).
    fn allocation_granularity(&self) -> Result<usize, Errno> {
        self.page_size()
    }

    /// Windows: `GetFileInformationByHandle(handle)`. Defaults to failing with
    /// `ERROR_CALL_NOT_IMPLEMENTED`.
    fn file_information(&self, handle: RawHandle) -> Result<FileInformation, Win32Error> {
        let _ = handle;
        Err(Win32Error::CALL_NOT_IMPLEMENTED)
    }

    /// Windows: `ReadFile(handle, buf, …)` at byte `offset` (an `OVERLAPPED` offset, not the
    /// file pointer): how many bytes were read, 0 at the end of the file. Defaults to failing
    /// with `ERROR_CALL_NOT_IMPLEMENTED`.
    fn read_handle_at(
        &self,
        handle: RawHandle,
        buf: &mut [u8],
        offset: u64,
    ) -> Result<usize, Win32Error> {
        let _ = (handle, buf, offset);
        Err(Win32Error::CALL_NOT_IMPLEMENTED)
    }

    /// Windows: `WriteFile(handle, buf, …)` at byte `offset`: how many bytes were written.
    /// Defaults to failing with `ERROR_CALL_NOT_IMPLEMENTED`.
    fn write_handle_at(
        &self,
        handle: RawHandle,
        buf: &[u8],
        offset: u64,
    ) -> Result<usize, Win32Error> {
        let _ = (handle, buf, offset);
        Err(Win32Error::CALL_NOT_IMPLEMENTED)
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

    fn birth_time(&self, fd: i32) -> Result<Option<Timestamp>, Errno> {
        (**self).birth_time(fd)
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

    fn allocation_granularity(&self) -> Result<usize, Errno> {
        (**self).allocation_granularity()
    }

    fn file_information(&self, handle: RawHandle) -> Result<FileInformation, Win32Error> {
        (**self).file_information(handle)
    }

    fn read_handle_at(
        &self,
        handle: RawHandle,
        buf: &mut [u8],
        offset: u64,
    ) -> Result<usize, Win32Error> {
        (**self).read_handle_at(handle, buf, offset)
    }

    fn write_handle_at(
        &self,
        handle: RawHandle,
        buf: &[u8],
        offset: u64,
    ) -> Result<usize, Win32Error> {
        (**self).write_handle_at(handle, buf, offset)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;
    use std::vec::Vec;

    use super::scripted::{Call, ScriptedKernel};
    use super::*;
    use crate::error::{Error, IoDirection, Unsupported};
    use crate::source::Source;
    use crate::sysfs::{SysfsFailure, SysfsOperation, SysfsPath, SysfsRoot};

    /// The three required calls of the scripted kernel and nothing else: every other answer
    /// is the trait's default.
    struct Minimal<'k>(&'k ScriptedKernel);

    impl Syscalls for Minimal<'_> {
        fn fcntl_getfl(&self, fd: i32) -> Result<u32, Errno> {
            self.0.fcntl_getfl(fd)
        }
        fn fstat(&self, fd: i32) -> Result<FileStat, Errno> {
            self.0.fstat(fd)
        }
        fn readlink(&self, path: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
            self.0.readlink(path, buf)
        }
    }

    /// How much of the scripted kernel a [`Partial`] backend provides, in addition to the
    /// three required calls.
    #[derive(Clone, Copy, PartialEq, PartialOrd, Debug)]
    enum Provides {
        Required,
        Open,
        SysfsAndFiles,
        Map,
        Unmap,
        Everything,
    }

    /// A backend that implements some calls (the scripted kernel's) and leaves the rest to
    /// the trait's defaults, as an embedder may.
    struct Partial {
        kernel: ScriptedKernel,
        provides: Provides,
    }

    impl Partial {
        fn has(&self, level: Provides) -> bool {
            self.provides >= level
        }

        fn minimal(&self) -> Minimal<'_> {
            Minimal(&self.kernel)
        }
    }

    impl Syscalls for Partial {
        fn fcntl_getfl(&self, fd: i32) -> Result<u32, Errno> {
            self.minimal().fcntl_getfl(fd)
        }
        fn fstat(&self, fd: i32) -> Result<FileStat, Errno> {
            self.minimal().fstat(fd)
        }
        fn readlink(&self, path: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
            self.minimal().readlink(path, buf)
        }
        fn open_read_only(&self, path: &CStr) -> Result<i32, Errno> {
            match self.has(Provides::Open) {
                true => self.kernel.open_read_only(path),
                false => self.minimal().open_read_only(path),
            }
        }
        fn read(&self, fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
            match self.has(Provides::SysfsAndFiles) {
                true => self.kernel.read(fd, buf),
                false => self.minimal().read(fd, buf),
            }
        }
        fn close(&self, fd: i32) -> Result<(), Errno> {
            match self.has(Provides::SysfsAndFiles) {
                true => self.kernel.close(fd),
                false => self.minimal().close(fd),
            }
        }
        fn pread(&self, fd: i32, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
            match self.has(Provides::SysfsAndFiles) {
                true => self.kernel.pread(fd, buf, offset),
                false => self.minimal().pread(fd, buf, offset),
            }
        }
        fn pwrite(&self, fd: i32, buf: &[u8], offset: u64) -> Result<usize, Errno> {
            match self.has(Provides::SysfsAndFiles) {
                true => self.kernel.pwrite(fd, buf, offset),
                false => self.minimal().pwrite(fd, buf, offset),
            }
        }
        fn page_size(&self) -> Result<usize, Errno> {
            match self.has(Provides::SysfsAndFiles) {
                true => self.kernel.page_size(),
                false => self.minimal().page_size(),
            }
        }
        fn map_shared(
            &self,
            fd: i32,
            offset: u64,
            len: usize,
            writable: bool,
        ) -> Result<NonNull<u8>, Errno> {
            match self.has(Provides::Map) {
                true => self.kernel.map_shared(fd, offset, len, writable),
                false => self.minimal().map_shared(fd, offset, len, writable),
            }
        }
        unsafe fn unmap(&self, addr: NonNull<u8>, len: usize) -> Result<(), Errno> {
            match self.has(Provides::Unmap) {
                // SAFETY: the caller's guarantee is passed on unchanged.
                true => unsafe { self.kernel.unmap(addr, len) },
                // SAFETY: as above.
                false => unsafe { self.minimal().unmap(addr, len) },
            }
        }
        unsafe fn copy_from_mapping(
            &self,
            dst: &mut [u8],
            src: NonNull<u8>,
        ) -> Result<(), MappingCopyError> {
            match self.has(Provides::Everything) {
                // SAFETY: the caller's guarantee is passed on unchanged.
                true => unsafe { self.kernel.copy_from_mapping(dst, src) },
                // SAFETY: as above.
                false => unsafe { self.minimal().copy_from_mapping(dst, src) },
            }
        }
        unsafe fn copy_to_mapping(
            &self,
            dst: NonNull<u8>,
            src: &[u8],
        ) -> Result<(), MappingCopyError> {
            match self.has(Provides::Everything) {
                // SAFETY: the caller's guarantee is passed on unchanged.
                true => unsafe { self.kernel.copy_to_mapping(dst, src) },
                // SAFETY: as above.
                false => unsafe { self.minimal().copy_to_mapping(dst, src) },
            }
        }
    }

    fn dax_kernel() -> ScriptedKernel {
        ScriptedKernel::char_device(0xfc00)
            .with_file("/sys/dev/char/252:0/size", b"4096\n")
            .with_file("/sys/dev/char/252:0/align", b"4096\n")
    }

    fn dax_size_path() -> SysfsPath {
        SysfsPath::new(
            SysfsRoot::CharDevice(crate::DeviceNumber::from_raw(0xfc00)),
            "size",
        )
    }

    /// What a missing call turns into: its `ENOSYS` (or, for the copies, "no
    /// machine-check-safe copy") reported by the operation that needed it.
    #[test]
    fn missing_calls_answer_with_the_defaults() {
        let partial = |kernel, provides| Partial { kernel, provides };
        let enosys = Errno::ENOSYS;

        let file = partial(ScriptedKernel::regular_file(), Provides::Required);
        let source = Source::from_fd_with(&file, 3).expect("the three required calls suffice");
        assert_eq!(source.size_with(&file), Ok(4096), "fstat is enough");
        // Without a birth time, a file whose st_ctime moved is taken for the same one.
        assert_eq!(file.birth_time(3), Err(enosys));
        let touched = partial(
            ScriptedKernel::regular_file().with_ctime(super::scripted::SCRIPTED_BIRTH),
            Provides::Required,
        );
        assert_eq!(source.size_with(&touched), Ok(4096), "no statx: not known");
        let err = source.alignment_with(&file).expect_err("no page size");
        assert_eq!(err, Error::PageSize { errno: enosys });
        assert_eq!(
            (err.code(), err.to_string().as_str()),
            (
                -38,
                "cannot find out the page size: Function not implemented"
            )
        );
        let read = Error::Io {
            direction: IoDirection::Read,
            errno: enosys,
        };
        assert_eq!(source.pread_mcsafe_with(&file, &mut [0; 4], 0), Err(read));
        let write = Error::Io {
            direction: IoDirection::Write,
            errno: enosys,
        };
        assert_eq!(source.pwrite_mcsafe_with(&file, &[0; 4], 0), Err(write));
        let file = partial(ScriptedKernel::regular_file(), Provides::SysfsAndFiles);
        assert_eq!(source.alignment_with(&file), Ok(4096));
        assert_eq!(source.pwrite_mcsafe_with(&file, b"file", 1), Ok(()));
        let mut back = [0; 5];
        assert_eq!(source.pread_mcsafe_with(&file, &mut back, 0), Ok(()));
        assert_eq!(&back, b"\0file");

        let sysfs = |operation| {
            Err(Error::Sysfs(SysfsFailure {
                path: dax_size_path(),
                operation,
                errno: enosys,
            }))
        };
        let dax = partial(dax_kernel(), Provides::Required);
        let source = Source::from_fd_with(&dax, 3).expect("Device DAX");
        assert_eq!(source.size_with(&dax), sysfs(SysfsOperation::Open));
        let dax = partial(dax_kernel(), Provides::Open);
        assert_eq!(source.size_with(&dax), sysfs(SysfsOperation::Read));
        assert_eq!(dax.kernel.open_descriptors(), 1, "close is missing too");

        let dax = partial(dax_kernel(), Provides::SysfsAndFiles);
        assert_eq!(source.size_with(&dax), Ok(4096));
        let mapping = |call| {
            Err(Error::Mapping {
                call,
                errno: enosys,
            })
        };
        assert_eq!(
            source.pread_mcsafe_with(&dax, &mut [0; 4], 0),
            mapping("mmap")
        );
        let dax = partial(dax_kernel(), Provides::Map);
        assert_eq!(
            source.pread_mcsafe_with(&dax, &mut [0; 4], 0),
            mapping("munmap")
        );

        let dax = partial(dax_kernel().with_data(&[9; 4096]), Provides::Unmap);
        let no_copy = Error::NotSupported(Unsupported::MachineCheckSafeCopy);
        let mut buf = [0; 4];
        assert_eq!(
            source.pread_mcsafe_with(&dax, &mut buf, 0),
            Err(no_copy.clone())
        );
        assert_eq!(buf, [0; 4], "nothing copied");
        assert_eq!(
            source.pwrite_mcsafe_with(&dax, &[1; 4], 0),
            Err(no_copy.clone())
        );
        assert_eq!(dax.kernel.data()[..4], [9; 4], "nothing written");
        assert!(
            matches!(dax.kernel.calls().last(), Some(Call::Unmap { len: 4096 })),
            "unmapped all the same"
        );
        assert_eq!(
            (no_copy.code(), no_copy.to_string().as_str()),
            (
                crate::codes::PMEM2_E_NOSUPP,
                "machine-check-safe Device DAX I/O needs a copy that survives SIGBUS, which \
                 this syscall backend does not provide (the no_std core installs no signal \
                 handler; pmem2-source-std and the C ABI do)"
            )
        );

        let dax = partial(dax_kernel().with_data(&[9; 4096]), Provides::Everything);
        assert_eq!(source.pread_mcsafe_with(&dax, &mut buf, 0), Ok(()));
        assert_eq!(buf, [9; 4]);
        assert_eq!(source.pwrite_mcsafe_with(&dax, &[1; 2], 1), Ok(()));
        assert_eq!(dax.kernel.data()[..4], [9, 1, 1, 9]);
    }

    /// Every query and transfer of one source, with the answers, as a comparable record.
    fn everything<S: Syscalls + ?Sized>(sys: &S) -> Vec<std::string::String> {
        let mut answers = Vec::new();
        let source = Source::from_fd_with(sys, 3).expect("a scripted source");
        answers.push(std::format!("{source:?}"));
        let mut buf = [0u8; 8];
        let mut id = [0u8; 64];
        answers.push(std::format!("{:?}", source.size_with(sys)));
        answers.push(std::format!("{:?}", source.alignment_with(sys)));
        answers.push(std::format!("{:?}", source.numa_node_with(sys)));
        answers.push(std::format!(
            "{:?}",
            source.device_id_with(sys, Some(&mut id))
        ));
        answers.push(std::format!("{:?}", source.device_usc_with(sys)));
        answers.push(std::format!(
            "{:?}",
            source.pwrite_mcsafe_with(sys, b"12345678", 8)
        ));
        answers.push(std::format!(
            "{:?}",
            source.pread_mcsafe_with(sys, &mut buf, 4)
        ));
        answers.push(std::format!("{buf:?} {id:?}"));
        answers
    }

    /// A backend behind a reference (`S = &Backend`, as generic code that stores `&S` ends up
    /// passing) answers exactly as the backend itself, through the same calls.
    #[test]
    fn references_to_backends_forward_every_call() {
        let kernels = || {
            [
                ScriptedKernel::regular_file()
                    .with_data(&[5; 64])
                    .with_link("/sys/dev/block/8:1/device/subsystem", Ok(b"../../bus/nd"))
                    .with_file("/sys/dev/block/8:1/device/numa_node", b"0\n")
                    .with_file("/sys/dev/block/8:1/device/../mappings", b"1\n")
                    .with_file("/sys/dev/block/8:1/device/../mapping0", b"nmem1,0,1,0\n")
                    .with_file("/sys/bus/nd/devices/nmem1/nfit/id", b"id-1\n")
                    .with_file("/sys/bus/nd/devices/nmem1/nfit/dirty_shutdown", b"4\n"),
                dax_kernel()
                    .with_data(&[6; 4096])
                    .with_file("/sys/dev/char/252:0/numa_node", b"1\n")
                    .with_file("/sys/dev/char/252:0/../mappings", b"1\n")
                    .with_file("/sys/dev/char/252:0/../mapping0", b"nmem0,0,1,0\n")
                    .with_file("/sys/bus/nd/devices/nmem0/nfit/id", b"id-0\n")
                    .with_file("/sys/bus/nd/devices/nmem0/nfit/dirty_shutdown", b"3\n"),
            ]
        };
        for (direct, by_reference) in kernels().into_iter().zip(kernels()) {
            let expected = everything(&direct);
            assert_eq!(everything(&&by_reference), expected);
            assert_eq!(
                <&ScriptedKernel as Syscalls>::birth_time(&&by_reference, 3),
                direct.birth_time(3)
            );
            assert_eq!(by_reference.calls(), direct.calls());
            assert_eq!(by_reference.data(), direct.data());
            assert!(
                expected.iter().all(|answer| !answer.contains("Err")),
                "{expected:?}"
            );
        }
    }

    /// A range that does not fit the mapping is refused before anything is mapped.
    #[test]
    fn copies_outside_the_mapping_are_refused() {
        let kernel = dax_kernel();
        let refused = Err(("mmap", Errno::EINVAL));
        let mut five = [0u8; 5];
        assert_eq!(
            copy_through_mapping(&kernel, 3, 0, 8, 4, Buffer::Read(&mut five)),
            refused
        );
        assert_eq!(
            copy_through_mapping(&kernel, 3, 0, 8, usize::MAX, Buffer::Write(&five)),
            refused
        );
        assert_eq!(
            copy_through_mapping(&kernel, 3, 0, 0, 0, Buffer::Write(&[])),
            refused
        );
        assert!(kernel.calls().is_empty());
        assert_eq!(
            copy_through_mapping(&kernel, 3, 0, 8, 3, Buffer::Write(&five)),
            Ok(Ok(()))
        );
    }
}
