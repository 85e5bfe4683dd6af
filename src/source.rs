//! [`Source`]: what a data source is, laid out like libpmem2's `struct pmem2_source`.

use core::fmt;

use crate::classify;
use crate::error::Error;
use crate::sys::{FileInformation, FileStat, RawHandle, Syscalls, Timestamp};
use crate::sysfs::DeviceNumber;

/// `enum pmem2_source_type` values.
const KIND_ANON: u32 = 1;
const KIND_FD: u32 = 2;
const KIND_HANDLE: u32 = 3;

/// What kind of data a [`Source`] stands for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum SourceKind {
    /// Anonymous memory of a given size (`pmem2_source_from_anon`).
    Anonymous,
    /// An open file descriptor (`pmem2_source_from_fd` on Linux).
    Fd,
    /// An open Windows file handle (`pmem2_source_from_handle`, and `pmem2_source_from_fd`
    /// on Windows, which converts the C runtime descriptor to its handle).
    Handle,
    /// A type field that no constructor writes: only a `struct pmem2_source` that C code
    /// built or overwrote by hand has one. Such a source has no descriptor, handle or size,
    /// and every query fails with [`Error::UnrecognizedSourceType`].
    Unrecognized,
}

/// What a file-descriptor source refers to (`enum pmem2_file_type`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[repr(u32)]
pub enum FileType {
    /// A regular file (including memfd and procfs files).
    Regular = 1,
    /// A Device DAX character device (`/dev/daxX.Y`).
    DeviceDax = 2,
}

impl FileType {
    fn from_raw(raw: u32) -> Option<FileType> {
        match raw {
            1 => Some(FileType::Regular),
            2 => Some(FileType::DeviceDax),
            _ => None,
        }
    }
}

impl fmt::Display for FileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileType::Regular => "regular file",
            FileType::DeviceDax => "Device DAX",
        })
    }
}

/// A field of a source that holds a value no constructor writes: small, so that the queries'
/// checks return it in registers; it becomes an [`Error`] only when a query fails.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Unrecognized {
    /// The type field.
    Type(u32),
    /// An fd source's file type field.
    FileType(u32),
}

impl From<Unrecognized> for Error {
    #[cold]
    fn from(field: Unrecognized) -> Error {
        match field {
            Unrecognized::Type(raw) => Error::UnrecognizedSourceType { raw },
            Unrecognized::FileType(raw) => Error::UnrecognizedFileType { raw },
        }
    }
}

/// A data source: anonymous memory, or a validated file descriptor (Linux) or file handle
/// (Windows) with its file type.
///
/// A `Source` is plain data and does not own its descriptor: it never closes it, and the
/// caller must keep it open while the source is in use (the std shim's `Source<'fd>` makes the
/// borrow checker enforce that).
///
/// # Layout
///
/// `#[repr(C)]`; on 64-bit targets the first 40 bytes are libpmem2 1.12.1's
/// `struct pmem2_source` (type at 0, file type at 8, size or fd at 16, `st_rdev` at 24,
/// `st_dev` at 32), so a source made here can be handed to libpmem2 itself. Fields after
/// byte 40 are ours (`st_ino`, and `st_ctime` at 48: together they tell the file the
/// descriptor referred to at creation from one that took over its number later). A handle source keeps libpmem2's Windows layout: type 3 at 0,
/// file type at 8, the `HANDLE` at 16 (the volume serial number and file index, ours, where
/// the Linux layout has `st_dev` and `st_ino`).
///
/// ```
/// use pmem2_source::{FileType, Source, SourceKind};
///
/// let file = std::fs::File::open("Cargo.toml").unwrap();
/// let source = Source::from_fd(std::os::fd::AsRawFd::as_raw_fd(&file)).unwrap();
/// assert_eq!(source.kind(), SourceKind::Fd);
/// assert_eq!(source.file_type(), Some(FileType::Regular));
///
/// let anon = Source::anon(1 << 20);
/// assert_eq!(anon.anon_size(), Some(1 << 20));
/// assert!(anon.fd().is_err());
/// ```
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Source {
    kind: u32,
    kind_padding: u32,
    file_type: u32,
    file_type_padding: u32,
    /// C: `union { size_t size; HANDLE handle; struct { int fd; … } }`: the fd is the first
    /// 4 bytes in native byte order, the size and the handle all 8.
    size_or_fd: [u8; 8],
    rdev: u64,
    dev: u64,
    ino: u64,
    ctime_sec: i64,
    ctime_nsec: u32,
    ctime_padding: u32,
}

#[cfg(target_pointer_width = "64")]
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(Source, kind) == 0);
    assert!(offset_of!(Source, file_type) == 8);
    assert!(offset_of!(Source, size_or_fd) == 16);
    assert!(offset_of!(Source, rdev) == 24);
    assert!(offset_of!(Source, dev) == 32);
    assert!(offset_of!(Source, ino) == 40);
    assert!(offset_of!(Source, ctime_sec) == 48);
    assert!(core::mem::size_of::<Source>() == 64);
    assert!(core::mem::align_of::<Source>() == 8);
};

impl Source {
    /// `pmem2_source_from_anon`: a source of `size` bytes of anonymous memory. Any size is
    /// accepted, 0 and `usize::MAX` included (mapping decides what is usable).
    pub const fn anon(size: usize) -> Source {
        Source {
            kind: KIND_ANON,
            kind_padding: 0,
            file_type: 0,
            file_type_padding: 0,
            size_or_fd: (size as u64).to_ne_bytes(),
            rdev: 0,
            dev: 0,
            ino: 0,
            ctime_sec: 0,
            ctime_nsec: 0,
            ctime_padding: 0,
        }
    }

    /// An fd source of `file_type` with the identity of the file `stat` describes.
    pub(crate) fn fd_source(fd: i32, file_type: FileType, stat: &FileStat) -> Source {
        let [a, b, c, d] = fd.to_ne_bytes();
        Source {
            kind: KIND_FD,
            kind_padding: 0,
            file_type: file_type as u32,
            file_type_padding: 0,
            size_or_fd: [a, b, c, d, 0, 0, 0, 0],
            rdev: stat.rdev,
            dev: stat.dev,
            ino: stat.ino,
            ctime_sec: stat.ctime.sec,
            ctime_nsec: stat.ctime.nsec,
            ctime_padding: 0,
        }
    }

    pub(crate) fn handle_source(handle: RawHandle, info: &FileInformation) -> Source {
        Source {
            kind: KIND_HANDLE,
            kind_padding: 0,
            file_type: FileType::Regular as u32,
            file_type_padding: 0,
            size_or_fd: (handle.addr() as u64).to_ne_bytes(),
            rdev: 0,
            dev: u64::from(info.volume_serial_number),
            ino: info.file_index,
            ctime_sec: 0,
            ctime_nsec: 0,
            ctime_padding: 0,
        }
    }

    /// `pmem2_source_from_handle` over any [`Syscalls`] backend: validates a Windows file
    /// handle.
    ///
    /// `INVALID_HANDLE_VALUE` → `PMEM2_E_INVALID_FILE_HANDLE` without a call; then one
    /// `GetFileInformationByHandle`: `ERROR_INVALID_HANDLE` (a closed handle, a mutex, an
    /// event, …) → `PMEM2_E_INVALID_FILE_HANDLE`, another error → libpmem2's `-errno` for it
    /// or `PMEM2_E_UNKNOWN` ([`Win32Error::errno`](crate::Win32Error::errno)); a directory →
    /// `PMEM2_E_INVALID_FILE_TYPE`; anything else is a regular file (Windows has no Device
    /// DAX). Access rights are not checked (Windows cannot tell them from a handle).
    ///
    /// ```
    /// use pmem2_source::sys::scripted::ScriptedKernel;
    /// use pmem2_source::{codes, FileType, Source, SourceKind, Win32Error};
    ///
    /// let kernel = ScriptedKernel::windows_file();
    /// let handle = 0x44 as pmem2_source::sys::RawHandle;
    /// let source = Source::from_handle_with(&kernel, handle).unwrap();
    /// assert_eq!(source.kind(), SourceKind::Handle);
    /// assert_eq!(source.file_type(), Some(FileType::Regular));
    /// assert_eq!(source.handle(), Ok(handle));
    ///
    /// let closed = ScriptedKernel::windows_file().with_file_information(Err(Win32Error::INVALID_HANDLE));
    /// let err = Source::from_handle_with(&closed, handle).unwrap_err();
    /// assert_eq!(err.code(), codes::PMEM2_E_INVALID_FILE_HANDLE);
    /// assert_eq!(err.to_string(), "GetFileInformationByHandle: The handle is invalid.");
    /// ```
    ///
    /// # References
    /// - PMDK `src/libpmem2/source_windows.c` (`pmem2_source_from_handle`, `pmem2_win_stat`)
    pub fn from_handle_with<S: Syscalls + ?Sized>(
        sys: &S,
        handle: RawHandle,
    ) -> Result<Source, Error> {
        classify::classify_handle(sys, handle)
    }

    /// `pmem2_source_from_fd` over any [`Syscalls`] backend: validates `fd` and classifies
    /// what it refers to.
    ///
    /// The checks run in libpmem2's order, which decides the error a doubly-bad descriptor
    /// gets: negative number; `fcntl(F_GETFL)` (closed → `PMEM2_E_INVALID_FILE_HANDLE`);
    /// access mode (`O_WRONLY`, and — unlike libpmem2 — `O_PATH` and mode 3, all
    /// `PMEM2_E_INVALID_FILE_HANDLE`); `fstat`; file type (regular → [`FileType::Regular`];
    /// directory and every other non-character type → `PMEM2_E_INVALID_FILE_TYPE`; a
    /// character device → Device DAX only if the last component of its
    /// `/sys/dev/char/M:m/subsystem` link target is `dax`).
    ///
    /// Syscalls on success: 2 for a regular file, 3 for a character device; 1 for a closed
    /// descriptor; none for a negative number.
    ///
    /// ```
    /// use pmem2_source::sys::scripted::ScriptedKernel;
    /// use pmem2_source::{codes, FileType, Source};
    ///
    /// // A character device whose subsystem link ends in "dax".
    /// let kernel = ScriptedKernel::char_device(0xfc00);
    /// let source = Source::from_fd_with(&kernel, 3).unwrap();
    /// assert_eq!(source.file_type(), Some(FileType::DeviceDax));
    ///
    /// let dir = ScriptedKernel::regular_file().with_mode(0o040755);
    /// let err = Source::from_fd_with(&dir, 3).unwrap_err();
    /// assert_eq!(err.code(), codes::PMEM2_E_INVALID_FILE_TYPE);
    /// ```
    ///
    /// # References
    /// - `pmem2_source_from_fd(3)`; PMDK `src/libpmem2/source_posix.c`
    pub fn from_fd_with<S: Syscalls + ?Sized>(sys: &S, fd: i32) -> Result<Source, Error> {
        classify::classify_fd(sys, fd)
    }

    /// The file-type decision of [`from_fd_with`](Self::from_fd_with), from a `stat` alone:
    /// what `from_fd` answers for a readable descriptor of the file `stat` describes (the
    /// same code path, so the same codes and messages), without a descriptor. A checker can
    /// then judge a file before opening it, and open only a regular file or a Device DAX:
    /// opening a FIFO, a socket or another character device can have side effects (a FIFO
    /// writer released, a watchdog armed).
    ///
    /// Regular file → [`FileType::Regular`] (no call); character device → one `readlink` of
    /// its `/sys/dev/char/M:m/subsystem`; anything else → the [`Error`] `from_fd` gives
    /// (directory, `file type 060000 not supported`, …).
    ///
    /// ```
    /// use pmem2_source::sys::{FileStat, scripted::ScriptedKernel};
    /// use pmem2_source::{codes, FileType, Source};
    ///
    /// let kernel = ScriptedKernel::char_device(0xfc00);
    /// let dax = FileStat { mode: 0o020600, rdev: 0xfc00, ..FileStat::default() };
    /// assert_eq!(Source::file_type_from_stat_with(&kernel, &dax), Ok(FileType::DeviceDax));
    ///
    /// let fifo = FileStat { mode: 0o010600, ..FileStat::default() };
    /// let err = Source::file_type_from_stat_with(&kernel, &fifo).unwrap_err();
    /// assert_eq!(err.code(), codes::PMEM2_E_INVALID_FILE_TYPE);
    /// assert_eq!(err.to_string(), "file type 010000 not supported");
    /// ```
    pub fn file_type_from_stat_with<S: Syscalls + ?Sized>(
        sys: &S,
        stat: &FileStat,
    ) -> Result<FileType, Error> {
        classify::judge_stat(sys, stat)
    }

    /// What kind of source this is.
    pub fn kind(&self) -> SourceKind {
        match self.kind {
            KIND_ANON => SourceKind::Anonymous,
            KIND_FD => SourceKind::Fd,
            KIND_HANDLE => SourceKind::Handle,
            _ => SourceKind::Unrecognized,
        }
    }

    /// What a query on a source whose type field is [`SourceKind::Unrecognized`] fails with.
    pub(crate) fn unrecognized_type(&self) -> Unrecognized {
        Unrecognized::Type(self.kind)
    }

    /// The file type of an fd source, or that its field holds a value `from_fd` never
    /// writes (a source built or overwritten by hand in C).
    pub(crate) fn recognized_file_type(&self) -> Result<FileType, Unrecognized> {
        FileType::from_raw(self.file_type).ok_or(Unrecognized::FileType(self.file_type))
    }

    /// The descriptor of an fd source (the first 4 bytes of the union).
    pub(crate) fn fd_value(&self) -> i32 {
        let [a, b, c, d, ..] = self.size_or_fd;
        i32::from_ne_bytes([a, b, c, d])
    }

    /// `pmem2_source_get_fd`: the descriptor of an fd source (not duplicated; still owned by
    /// the caller). An anonymous or handle source has none: [`Error::FileDescriptorNotSet`].
    pub fn fd(&self) -> Result<i32, Error> {
        match self.kind() {
            SourceKind::Fd => Ok(self.fd_value()),
            SourceKind::Anonymous | SourceKind::Handle | SourceKind::Unrecognized => {
                Err(Error::FileDescriptorNotSet)
            }
        }
    }

    /// `pmem2_source_get_handle`: the Windows handle of a handle source (not duplicated;
    /// still owned by the caller). Any other source has none: [`Error::FileHandleNotSet`]
    /// (`PMEM2_E_FILE_HANDLE_NOT_SET`).
    pub fn handle(&self) -> Result<RawHandle, Error> {
        match self.kind() {
            SourceKind::Handle => Ok(core::ptr::without_provenance_mut(u64::from_ne_bytes(
                self.size_or_fd,
            ) as usize)),
            SourceKind::Anonymous | SourceKind::Fd | SourceKind::Unrecognized => {
                Err(Error::FileHandleNotSet)
            }
        }
    }

    /// The file type of an fd or handle source; `None` for an anonymous one (and for a
    /// source whose fields were not written by this library).
    pub fn file_type(&self) -> Option<FileType> {
        match self.kind() {
            SourceKind::Fd | SourceKind::Handle => FileType::from_raw(self.file_type),
            SourceKind::Anonymous | SourceKind::Unrecognized => None,
        }
    }

    /// The size given to [`anon`](Self::anon); `None` for an fd or handle source.
    pub fn anon_size(&self) -> Option<usize> {
        match self.kind() {
            SourceKind::Anonymous => Some(u64::from_ne_bytes(self.size_or_fd) as usize),
            SourceKind::Fd | SourceKind::Handle | SourceKind::Unrecognized => None,
        }
    }

    /// The handle of a handle source with the volume serial number and file index recorded
    /// at creation.
    pub(crate) fn handle_parts(&self) -> Option<(RawHandle, u32, u64)> {
        let handle = self.handle().ok()?;
        Some((handle, self.dev as u32, self.ino))
    }

    /// `st_rdev` recorded at creation (the device a Device DAX file stands for); `None` for
    /// an anonymous source.
    pub fn rdev(&self) -> Option<DeviceNumber> {
        self.fd_field(self.rdev).map(DeviceNumber::from_raw)
    }

    /// `st_dev` recorded at creation (the device holding the file); `None` for an anonymous
    /// source.
    pub fn dev(&self) -> Option<DeviceNumber> {
        self.fd_field(self.dev).map(DeviceNumber::from_raw)
    }

    /// `st_ino` recorded at creation; `None` for an anonymous source.
    pub fn ino(&self) -> Option<u64> {
        self.fd_field(self.ino)
    }

    /// `st_ctime` recorded at creation (when the file last changed before it); `None` for an
    /// anonymous source.
    pub fn ctime(&self) -> Option<Timestamp> {
        (self.kind() == SourceKind::Fd).then_some(Timestamp {
            sec: self.ctime_sec,
            nsec: self.ctime_nsec,
        })
    }

    fn fd_field(&self, value: u64) -> Option<u64> {
        (self.kind() == SourceKind::Fd).then_some(value)
    }
}

with_linux_backend! {
    impl Source {
        /// `pmem2_source_from_fd` on the running Linux kernel; see
        /// [`from_fd_with`](Self::from_fd_with) for the checks.
        ///
        /// ```
        /// use pmem2_source::{codes, Source};
        ///
        /// let dev_null = std::fs::File::open("/dev/null").unwrap();
        /// let err = Source::from_fd(std::os::fd::AsRawFd::as_raw_fd(&dev_null)).unwrap_err();
        /// assert_eq!(err.code(), codes::PMEM2_E_INVALID_FILE_TYPE);
        /// assert_eq!(err.to_string(), "character device 1:3 is not Device DAX: its subsystem is \"mem\"");
        /// ```
        pub fn from_fd(fd: i32) -> Result<Source, Error> {
            Self::from_fd_with(&crate::sys::Native, fd)
        }

        /// [`file_type_from_stat_with`](Self::file_type_from_stat_with) on the running
        /// Linux kernel.
        pub fn file_type_from_stat(stat: &FileStat) -> Result<FileType, Error> {
            Self::file_type_from_stat_with(&crate::sys::Native, stat)
        }
    }
}

#[cfg(windows)]
impl Source {
    /// `pmem2_source_from_handle` on Windows; see [`from_handle_with`](Self::from_handle_with)
    /// for the checks.
    pub fn from_handle(handle: RawHandle) -> Result<Source, Error> {
        Self::from_handle_with(&crate::sys::Native, handle)
    }
}

with_native_backend! {
    /// The queries on the running system: `sys::Linux` on Linux, `sys::Windows` on Windows.
    impl Source {
        /// [`size_with`](Self::size_with) on the running system.
        pub fn size(&self) -> Result<u64, Error> {
            self.size_with(&crate::sys::Native)
        }

        /// [`alignment_with`](Self::alignment_with) on the running system.
        pub fn alignment(&self) -> Result<usize, Error> {
            self.alignment_with(&crate::sys::Native)
        }

        /// [`numa_node_with`](Self::numa_node_with) on the running system.
        pub fn numa_node(&self) -> Result<i32, Error> {
            self.numa_node_with(&crate::sys::Native)
        }

        /// [`device_id_with`](Self::device_id_with) on the running system.
        pub fn device_id(&self, out: Option<&mut [u8]>) -> Result<usize, Error> {
            self.device_id_with(&crate::sys::Native, out)
        }

        /// [`device_usc_with`](Self::device_usc_with) on the running system.
        pub fn device_usc(&self) -> Result<u64, Error> {
            self.device_usc_with(&crate::sys::Native)
        }

        /// [`pread_mcsafe_with`](Self::pread_mcsafe_with) on the running system. On Linux a
        /// Device DAX needs a backend with a machine-check-safe copy (`pmem2-source-std`):
        /// here it is `PMEM2_E_NOSUPP`.
        pub fn pread_mcsafe(&self, buf: &mut [u8], offset: u64) -> Result<(), Error> {
            self.pread_mcsafe_with(&crate::sys::Native, buf, offset)
        }

        /// [`pwrite_mcsafe_with`](Self::pwrite_mcsafe_with) on the running system; see
        /// [`pread_mcsafe`](Self::pread_mcsafe).
        pub fn pwrite_mcsafe(&self, buf: &[u8], offset: u64) -> Result<(), Error> {
            self.pwrite_mcsafe_with(&crate::sys::Native, buf, offset)
        }
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Source");
        if let Some((handle, volume, index)) = self.handle_parts() {
            return out
                .field("handle", &handle)
                .field("file_type", &self.file_type())
                .field("volume_serial_number", &volume)
                .field("file_index", &index)
                .finish();
        }
        match (self.kind(), self.fd(), self.file_type()) {
            (SourceKind::Fd, Ok(fd), file_type) => out
                .field("fd", &fd)
                .field("file_type", &file_type)
                .field("rdev", &DeviceNumber::from_raw(self.rdev))
                .field("dev", &DeviceNumber::from_raw(self.dev))
                .field("ino", &self.ino)
                .field("ctime", &self.ctime()),
            (SourceKind::Anonymous, ..) => out.field("anon_size", &self.anon_size()),
            _ => out
                .field("kind", &self.kind)
                .field("file_type", &self.file_type),
        };
        out.finish()
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;

    use super::*;

    #[test]
    fn anon_keeps_any_size() {
        for size in [0, 1, 4096, usize::MAX] {
            let source = Source::anon(size);
            assert_eq!(source.kind(), SourceKind::Anonymous);
            assert_eq!(source.anon_size(), Some(size));
            assert_eq!(source.fd(), Err(Error::FileDescriptorNotSet));
            assert_eq!(source.file_type(), None);
            assert_eq!(
                (source.rdev(), source.dev(), source.ino()),
                (None, None, None)
            );
            assert_eq!(source.ctime(), None);
        }
    }

    #[test]
    fn fd_source_round_trips_every_field() {
        for fd in [0, 3, i32::MAX] {
            let ctime = Timestamp {
                sec: -5,
                nsec: 999_999_999,
            };
            let stat = FileStat {
                mode: 0o020600,
                rdev: 0xfc00,
                dev: 0x5,
                ino: 77,
                size: 0,
                ctime,
            };
            let source = Source::fd_source(fd, FileType::DeviceDax, &stat);
            assert_eq!(source.fd(), Ok(fd));
            assert_eq!(source.file_type(), Some(FileType::DeviceDax));
            assert_eq!(source.rdev(), Some(DeviceNumber::from_raw(0xfc00)));
            assert_eq!(source.dev(), Some(DeviceNumber::from_raw(5)));
            assert_eq!(source.ino(), Some(77));
            assert_eq!(source.ctime(), Some(ctime));
            assert_eq!(source.anon_size(), None);
        }
    }

    /// The stat-only judgement on the running kernel: a regular file and a directory need no
    /// syscall; `/dev/null`'s sysfs link says `mem`.
    #[test]
    #[cfg(target_os = "linux")]
    #[cfg_attr(miri, ignore = "makes real syscalls (inline assembly)")]
    fn file_type_from_stat_on_the_running_kernel() {
        use crate::sys::consts::{S_IFCHR, S_IFDIR, S_IFREG};
        let stat = |mode, rdev| FileStat {
            mode,
            rdev,
            ..FileStat::default()
        };
        assert_eq!(
            Source::file_type_from_stat(&stat(S_IFREG | 0o644, 0)),
            Ok(FileType::Regular)
        );
        assert_eq!(
            Source::file_type_from_stat(&stat(S_IFDIR | 0o755, 0)),
            Err(Error::Directory)
        );
        let null = Source::file_type_from_stat(&stat(S_IFCHR | 0o666, 0x103));
        if std::path::Path::new("/sys/dev/char/1:3/subsystem").exists() {
            assert_eq!(
                null.map_err(|err| err.to_string()),
                Err("character device 1:3 is not Device DAX: its subsystem is \"mem\"".into())
            );
        }
    }

    #[test]
    fn file_types_print_as_words() {
        assert_eq!(FileType::Regular.to_string(), "regular file");
        assert_eq!(FileType::DeviceDax.to_string(), "Device DAX");
    }

    #[test]
    fn debug_shows_the_kind_specific_fields() {
        let stat = FileStat {
            dev: 0x801,
            ino: 12,
            ..FileStat::default()
        };
        let fd = Source::fd_source(4, FileType::Regular, &stat);
        let text = std::format!("{fd:?}");
        assert!(
            text.contains("fd: 4") && text.contains("Regular") && text.contains("8:1"),
            "{text}"
        );
        let anon = std::format!("{:?}", Source::anon(10));
        assert_eq!(anon, "Source { anon_size: Some(10) }");
    }

    /// A source whose type or file type field holds a value no constructor writes (C code
    /// built or overwrote it) gets no answer from any query: an error, after the
    /// descriptor's own error where libpmem2 asks `fstat` first (`size` and the transfers).
    #[test]
    fn fields_no_constructor_writes_get_no_answer() {
        use crate::codes::{
            PMEM2_E_INVALID_FILE_HANDLE, PMEM2_E_INVALID_FILE_TYPE,
            PMEM2_E_SOURCE_TYPE_NOT_SUPPORTED,
        };
        use crate::error::Errno;
        use crate::sys::scripted::ScriptedKernel;

        let kernel = ScriptedKernel::regular_file().with_data(&[7; 64]);
        let made = Source::from_fd_with(&kernel, 3).expect("a regular file");
        let every_query = |src: &Source, sys: &ScriptedKernel| {
            let mut buf = [0u8; 8];
            [
                src.size_with(sys).map(drop),
                src.alignment_with(sys).map(drop),
                src.numa_node_with(sys).map(drop),
                src.device_id_with(sys, None).map(drop),
                src.device_usc_with(sys).map(drop),
                src.pread_mcsafe_with(sys, &mut buf, 0),
                src.pwrite_mcsafe_with(sys, &buf, 0),
            ]
        };

        for raw in [0, 4, 0xdead_beef] {
            let src = Source { kind: raw, ..made };
            assert_eq!(src.kind(), SourceKind::Unrecognized);
            assert_eq!(src.fd(), Err(Error::FileDescriptorNotSet));
            assert_eq!((src.anon_size(), src.file_type()), (None, None));
            for answer in every_query(&src, &kernel) {
                let err = answer.expect_err("an unrecognized type answered");
                assert_eq!(err, Error::UnrecognizedSourceType { raw });
                assert_eq!(err.code(), PMEM2_E_SOURCE_TYPE_NOT_SUPPORTED);
            }
            assert!(std::format!("{src:?}").contains(&std::format!("kind: {raw}")));
        }

        let closed = ScriptedKernel::regular_file().with_fstat(Err(Errno::EBADF));
        for raw in [0, 3, 0x7f7f_7f7f] {
            let src = Source {
                file_type: raw,
                ..made
            };
            assert_eq!((src.kind(), src.fd()), (SourceKind::Fd, Ok(3)));
            for answer in every_query(&src, &kernel) {
                let err = answer.expect_err("an unrecognized file type answered");
                assert_eq!(err, Error::UnrecognizedFileType { raw });
                assert_eq!(err.code(), PMEM2_E_INVALID_FILE_TYPE);
            }
            let [size, .., read, write] = every_query(&src, &closed);
            for answer in [size, read, write] {
                let err = answer.expect_err("a closed descriptor answered");
                assert_eq!(err.code(), PMEM2_E_INVALID_FILE_HANDLE);
                assert_eq!(err.to_string(), "fstat: Bad file descriptor");
            }
        }
    }
}
