//! [`pmem2-source`](pmem2_source) for `std` users: a [`Source`] that borrows its file
//! descriptor (on Windows, its file handle), so the compiler enforces what libpmem2 can only
//! document — the descriptor outlives the source — and an [`Error`] that converts into
//! [`std::io::Error`].
//!
//! ```
//! use pmem2_source_std::{FileType, Source};
//!
//! let file = std::fs::File::open("Cargo.toml")?;
//! let source = Source::try_from(&file)?;
//! assert_eq!(source.file_type(), Some(FileType::Regular));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The borrow is real — closing the file while the source lives does not compile:
//!
//! ```compile_fail,E0505
//! use pmem2_source_std::Source;
//!
//! let file = std::fs::File::open("Cargo.toml").unwrap();
//! let source = Source::try_from(&file).unwrap();
//! drop(file);
//! println!("{:?}", source.file_type());
//! ```
//!
//! Errors keep libpmem2's code:
//!
//! ```
//! use pmem2_source_std::{codes, Error, Source};
//!
//! let dir = std::fs::File::open(".")?;
//! let err = Source::try_from(&dir).unwrap_err();
//! assert_eq!(err.code(), codes::PMEM2_E_INVALID_FILE_TYPE);
//!
//! let io: std::io::Error = err.into();
//! assert_eq!(io.kind(), std::io::ErrorKind::IsADirectory);
//! assert_eq!(Error::code_of(&io), Some(codes::PMEM2_E_INVALID_FILE_TYPE));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(unsafe_code)]
#![deny(missing_docs)]

use std::fmt;
use std::fs::File;
use std::io;
use std::marker::PhantomData;
#[cfg(not(windows))]
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
#[cfg(windows)]
use std::os::windows::io::{AsHandle, AsRawHandle, BorrowedHandle};

pub use pmem2_source::{DeviceNumber, Errno, FileType, IoDirection, SourceKind, Win32Error, codes};

#[cfg(not(windows))]
#[allow(unsafe_code)] // sysconf, and the calls into the machine-check-safe copies
mod backend;
#[cfg(not(windows))]
pub use backend::StdSyscalls;
/// The backend for std users on Windows: the core's Win32 backend as it is (it needs nothing
/// from std).
#[cfg(windows)]
pub use pmem2_source::sys::Windows as StdSyscalls;

#[cfg(all(not(windows), any(target_arch = "x86_64", target_arch = "aarch64")))]
#[allow(unsafe_code)] // assembly copy routines and the SIGBUS handler that recovers from them
mod mcsafe;

/// What a source borrows: a descriptor, or on Windows a file handle.
#[cfg(not(windows))]
type Borrowed<'fd> = BorrowedFd<'fd>;
#[cfg(windows)]
type Borrowed<'h> = BorrowedHandle<'h>;

/// A data source that borrows its descriptor (on Windows, its handle) for `'fd` (anonymous
/// sources are `Source<'static>`).
///
/// The core's [`pmem2_source::Source`] is inside; [`as_core`](Self::as_core) reaches it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Source<'fd> {
    inner: pmem2_source::Source,
    borrow: PhantomData<Borrowed<'fd>>,
}

#[cfg(not(windows))]
impl<'fd> Source<'fd> {
    /// `pmem2_source_from_fd`: validates and classifies the descriptor.
    ///
    /// ```
    /// use std::os::fd::AsFd;
    /// use pmem2_source_std::{codes, Source};
    ///
    /// let null = std::fs::File::open("/dev/null")?;
    /// let err = Source::from_fd(null.as_fd()).unwrap_err();
    /// assert_eq!(err.code(), codes::PMEM2_E_INVALID_FILE_TYPE);
    /// assert_eq!(err.name(), "PMEM2_E_INVALID_FILE_TYPE");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_fd(fd: BorrowedFd<'fd>) -> Result<Source<'fd>, Error> {
        let inner = pmem2_source::Source::from_fd(fd.as_raw_fd())?;
        Ok(Source {
            inner,
            borrow: PhantomData,
        })
    }

    /// The descriptor of an fd source; [`Error`] with
    /// `PMEM2_E_FILE_DESCRIPTOR_NOT_SET` for an anonymous one.
    ///
    /// ```
    /// use std::os::fd::{AsFd, AsRawFd};
    /// use pmem2_source_std::{codes, Source};
    ///
    /// let file = std::fs::File::open("Cargo.toml")?;
    /// let source = Source::from_fd(file.as_fd())?;
    /// assert_eq!(source.fd()?.as_raw_fd(), file.as_raw_fd());
    /// assert_eq!(Source::anon(1).fd().unwrap_err().code(), codes::PMEM2_E_FILE_DESCRIPTOR_NOT_SET);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fd(&self) -> Result<BorrowedFd<'fd>, Error> {
        let raw = self.inner.fd()?;
        Ok(fd::reborrow(raw, self))
    }
}

#[cfg(not(windows))]
impl Source<'_> {
    /// The file-type decision of [`from_fd`](Source::from_fd), from a file's metadata alone:
    /// what `from_fd` answers for a readable descriptor of that file (same codes, same
    /// messages), without opening it. For a checker that must not open what it would refuse:
    /// a FIFO, a socket, a character device that is not Device DAX. See
    /// [`pmem2_source::Source::file_type_from_stat_with`].
    ///
    /// ```
    /// use pmem2_source_std::{codes, FileType, Source};
    ///
    /// let file = std::fs::metadata("Cargo.toml")?;
    /// assert_eq!(Source::file_type_of(&file)?, FileType::Regular);
    /// let null = std::fs::metadata("/dev/null")?;
    /// let err = Source::file_type_of(&null).unwrap_err();
    /// assert_eq!(err.code(), codes::PMEM2_E_INVALID_FILE_TYPE);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn file_type_of(metadata: &std::fs::Metadata) -> Result<FileType, Error> {
        use std::os::unix::fs::MetadataExt;
        let stat = pmem2_source::sys::FileStat {
            mode: metadata.mode(),
            rdev: metadata.rdev(),
            dev: metadata.dev(),
            ino: metadata.ino(),
            size: metadata.size().try_into().unwrap_or(i64::MAX),
            ctime: pmem2_source::sys::Timestamp {
                sec: metadata.ctime(),
                nsec: u32::try_from(metadata.ctime_nsec()).unwrap_or(0),
            },
        };
        Ok(pmem2_source::Source::file_type_from_stat_with(
            &StdSyscalls,
            &stat,
        )?)
    }
}

#[cfg(windows)]
impl<'h> Source<'h> {
    /// `pmem2_source_from_handle`: validates the file handle (not a directory, not a mutex,
    /// event or other non-file handle).
    ///
    /// ```
    /// use std::os::windows::io::AsHandle;
    /// use pmem2_source_std::{FileType, Source};
    ///
    /// let file = std::fs::File::open("Cargo.toml")?;
    /// let source = Source::from_handle(file.as_handle())?;
    /// assert_eq!(source.file_type(), Some(FileType::Regular));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_handle(handle: BorrowedHandle<'h>) -> Result<Source<'h>, Error> {
        let inner = pmem2_source::Source::from_handle(handle.as_raw_handle())?;
        Ok(Source {
            inner,
            borrow: PhantomData,
        })
    }

    /// `pmem2_source_get_handle`: the handle of a handle source; [`Error`] with
    /// `PMEM2_E_FILE_HANDLE_NOT_SET` for an anonymous one.
    pub fn handle(&self) -> Result<BorrowedHandle<'h>, Error> {
        let raw = self.inner.handle()?;
        Ok(handle::reborrow(raw, self))
    }
}

impl<'fd> Source<'fd> {
    /// What kind of source this is.
    pub fn kind(&self) -> SourceKind {
        self.inner.kind()
    }

    /// The file type of an fd source; `None` for an anonymous one.
    pub fn file_type(&self) -> Option<FileType> {
        self.inner.file_type()
    }

    /// The size of an anonymous source; `None` for an fd source.
    pub fn anon_size(&self) -> Option<usize> {
        self.inner.anon_size()
    }

    /// `st_rdev` at creation (`None` for an anonymous source).
    pub fn rdev(&self) -> Option<DeviceNumber> {
        self.inner.rdev()
    }

    /// `st_dev` at creation (`None` for an anonymous source).
    pub fn dev(&self) -> Option<DeviceNumber> {
        self.inner.dev()
    }

    /// `st_ino` at creation (`None` for an anonymous source).
    pub fn ino(&self) -> Option<u64> {
        self.inner.ino()
    }

    /// The core source inside (plain data; it does not carry the borrow).
    pub fn as_core(&self) -> &pmem2_source::Source {
        &self.inner
    }

    /// `pmem2_source_size`: the size in bytes (anonymous: the size given; regular file:
    /// `st_size` now; Device DAX: its sysfs `size`).
    ///
    /// ```
    /// let file = std::fs::File::open("Cargo.toml")?;
    /// let source = pmem2_source_std::Source::try_from(&file)?;
    /// assert_eq!(source.size()?, file.metadata()?.len());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn size(&self) -> Result<u64, Error> {
        Ok(self.inner.size_with(&StdSyscalls)?)
    }

    /// `pmem2_source_alignment`: the page size, or a Device DAX's alignment.
    pub fn alignment(&self) -> Result<usize, Error> {
        Ok(self.inner.alignment_with(&StdSyscalls)?)
    }

    /// `pmem2_source_numa_node`: the NUMA node of the persistent memory behind the source.
    pub fn numa_node(&self) -> Result<i32, Error> {
        Ok(self.inner.numa_node_with(&StdSyscalls)?)
    }

    /// `pmem2_source_device_id`: the ids of the NVDIMMs behind the source, concatenated.
    pub fn device_id(&self) -> Result<String, Error> {
        let needed = self.inner.device_id_with(&StdSyscalls, None)?;
        let mut id = vec![0u8; needed];
        let written = self.inner.device_id_with(&StdSyscalls, Some(&mut id))?;
        id.truncate(written.saturating_sub(1));
        // The ids are checked to be printable ASCII.
        Ok(String::from_utf8_lossy(&id).into_owned())
    }

    /// `pmem2_source_device_usc`: the sum of the unsafe-shutdown counts of its NVDIMMs.
    pub fn device_usc(&self) -> Result<u64, Error> {
        Ok(self.inner.device_usc_with(&StdSyscalls)?)
    }

    /// `pmem2_source_pread_mcsafe`: reads `buf.len()` bytes at `offset`; a bad block is an
    /// error (`PMEM2_E_IO_FAIL`), not a crash.
    pub fn pread_mcsafe(&self, buf: &mut [u8], offset: u64) -> Result<(), Error> {
        Ok(self.inner.pread_mcsafe_with(&StdSyscalls, buf, offset)?)
    }

    /// `pmem2_source_pwrite_mcsafe`: writes `buf` at `offset` (durably, for a Device DAX).
    pub fn pwrite_mcsafe(&self, buf: &[u8], offset: u64) -> Result<(), Error> {
        Ok(self.inner.pwrite_mcsafe_with(&StdSyscalls, buf, offset)?)
    }
}

impl Source<'static> {
    /// `pmem2_source_from_anon`: `size` bytes of anonymous memory (any size).
    ///
    /// ```
    /// let source = pmem2_source_std::Source::anon(4096);
    /// assert_eq!(source.anon_size(), Some(4096));
    /// ```
    pub fn anon(size: usize) -> Source<'static> {
        Source {
            inner: pmem2_source::Source::anon(size),
            borrow: PhantomData,
        }
    }
}

#[cfg(not(windows))]
impl<'fd> TryFrom<BorrowedFd<'fd>> for Source<'fd> {
    type Error = Error;

    fn try_from(fd: BorrowedFd<'fd>) -> Result<Source<'fd>, Error> {
        Source::from_fd(fd)
    }
}

#[cfg(windows)]
impl<'h> TryFrom<BorrowedHandle<'h>> for Source<'h> {
    type Error = Error;

    fn try_from(handle: BorrowedHandle<'h>) -> Result<Source<'h>, Error> {
        Source::from_handle(handle)
    }
}

impl<'fd> TryFrom<&'fd File> for Source<'fd> {
    type Error = Error;

    /// `pmem2_source_from_fd` of the file's descriptor; on Windows `pmem2_source_from_handle`
    /// of its handle.
    fn try_from(file: &'fd File) -> Result<Source<'fd>, Error> {
        #[cfg(not(windows))]
        return Source::from_fd(file.as_fd());
        #[cfg(windows)]
        return Source::from_handle(file.as_handle());
    }
}

impl fmt::Debug for Source<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

#[cfg(not(windows))]
#[allow(unsafe_code)]
mod fd {
    //! # Safety
    //! The one place that turns the raw number stored in a source back into a `BorrowedFd`.

    use std::os::fd::BorrowedFd;

    use super::Source;

    /// Re-borrows the descriptor that `source` was created from.
    pub(super) fn reborrow<'fd>(raw: i32, _source: &Source<'fd>) -> BorrowedFd<'fd> {
        // SAFETY: `raw` is the number of the `BorrowedFd<'fd>` the source was created from
        // (`Source::from_fd` is the only way to make an fd source here), and that borrow keeps
        // the descriptor open for all of `'fd`. It is not -1, which from_fd rejects.
        unsafe { BorrowedFd::borrow_raw(raw) }
    }
}

#[cfg(windows)]
#[allow(unsafe_code)]
mod handle {
    //! # Safety
    //! The one place that turns the raw handle stored in a source back into a
    //! `BorrowedHandle`.

    use std::os::windows::io::{BorrowedHandle, RawHandle};

    use super::Source;

    /// Re-borrows the handle that `source` was created from.
    pub(super) fn reborrow<'h>(raw: RawHandle, _source: &Source<'h>) -> BorrowedHandle<'h> {
        // SAFETY: `raw` is the value of the `BorrowedHandle<'h>` the source was created from
        // (`Source::from_handle` is the only way to make a handle source here), and that
        // borrow keeps the handle open for all of `'h`.
        unsafe { BorrowedHandle::borrow_raw(raw) }
    }
}

/// A failed call: libpmem2's [`code`](Error::code) and message, convertible into
/// [`io::Error`].
#[derive(Clone, PartialEq, Eq)]
pub struct Error(pmem2_source::Error);

impl Error {
    /// libpmem2's return code: a `PMEM2_E_*` value from [`codes`] or `-errno`.
    pub fn code(&self) -> i32 {
        self.0.code()
    }

    /// The symbolic name of [`code`](Self::code) (`"PMEM2_E_INVALID_FILE_TYPE"`, `"ENOENT"`).
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// The core error value, to match on the exact cause.
    pub fn as_core(&self) -> &pmem2_source::Error {
        &self.0
    }

    /// The libpmem2 code of an [`io::Error`] made from an [`Error`]; `None` for any other
    /// `io::Error`.
    pub fn code_of(err: &io::Error) -> Option<i32> {
        err.get_ref()?.downcast_ref::<Error>().map(Error::code)
    }

    /// The [`io::ErrorKind`] closest to this failure.
    pub fn io_kind(&self) -> io::ErrorKind {
        use pmem2_source::Error as E;
        match &self.0 {
            E::Directory | E::DirectoryHandle => io::ErrorKind::IsADirectory,
            E::Win32 { error, .. } => win32_kind(*error),
            E::FileHandleNotSet => io::ErrorKind::Unsupported,
            E::NoMemory => io::ErrorKind::OutOfMemory,
            E::UnsupportedFileType { .. }
            | E::NotDeviceDax { .. }
            | E::SysfsNotALink { .. }
            | E::SysfsLinkTooLong { .. }
            | E::FileDescriptorNotSet
            | E::NotSupported(_)
            | E::IoSourceType
            | E::RegionNotFound => io::ErrorKind::Unsupported,
            E::InvalidSize { .. }
            | E::InvalidAlignment { .. }
            | E::InvalidDeviceAttribute { .. }
            | E::AlignmentNotPowerOfTwo { .. } => io::ErrorKind::InvalidData,
            E::UnexpectedEnd { .. } => io::ErrorKind::UnexpectedEof,
            // A bad block: the kernel's own word for it is EIO.
            E::IoFailed { .. } | E::MachineCheck { .. } => io::ErrorKind::Other,
            // An OS error number here is an errno; Windows' are Win32 codes.
            _ => match self.code().checked_neg() {
                #[cfg(not(windows))]
                Some(errno @ 1..=4095) => io::Error::from_raw_os_error(errno).kind(),
                #[cfg(windows)]
                Some(1..=4095) => io::ErrorKind::Other,
                _ => io::ErrorKind::InvalidInput,
            },
        }
    }
}

/// The [`io::ErrorKind`] of a Win32 error, by its meaning (the same on every host).
fn win32_kind(error: Win32Error) -> io::ErrorKind {
    match error {
        Win32Error::FILE_NOT_FOUND | Win32Error::PATH_NOT_FOUND => io::ErrorKind::NotFound,
        Win32Error::ACCESS_DENIED | Win32Error::INVALID_ACCESS | Win32Error::LOCK_FAILED => {
            io::ErrorKind::PermissionDenied
        }
        Win32Error::NOT_ENOUGH_MEMORY | Win32Error::OUTOFMEMORY => io::ErrorKind::OutOfMemory,
        Win32Error::NOT_SUPPORTED | Win32Error::CALL_NOT_IMPLEMENTED => io::ErrorKind::Unsupported,
        Win32Error::INVALID_HANDLE | Win32Error::INVALID_PARAMETER => io::ErrorKind::InvalidInput,
        _ => io::ErrorKind::Other,
    }
}

impl From<pmem2_source::Error> for Error {
    fn from(err: pmem2_source::Error) -> Error {
        Error(err)
    }
}

impl From<Error> for io::Error {
    /// Keeps the [`Error`] inside: [`Error::code_of`] gets the libpmem2 code back.
    fn from(err: Error) -> io::Error {
        io::Error::new(err.io_kind(), err)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({} {}: {:?})", self.name(), self.code(), self.0)
    }
}

impl std::error::Error for Error {}

#[cfg(all(test, not(windows)))]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn io_kinds() {
        let kind = |err: pmem2_source::Error| Error::from(err).io_kind();
        use pmem2_source::Error as E;
        assert_eq!(kind(E::WriteOnly), io::ErrorKind::InvalidInput);
        assert_eq!(
            kind(E::Fcntl {
                errno: Errno::EBADF
            }),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            kind(E::Fstat {
                errno: Errno::EACCES
            }),
            io::ErrorKind::PermissionDenied
        );
        assert_eq!(
            kind(E::SysfsUnreadable {
                device: DeviceNumber::from_raw(0x8800),
                errno: Errno::ENOENT
            }),
            io::ErrorKind::NotFound
        );
        assert_eq!(kind(E::Directory), io::ErrorKind::IsADirectory);
        assert_eq!(kind(E::NoMemory), io::ErrorKind::OutOfMemory);
        assert_eq!(kind(E::FileDescriptorNotSet), io::ErrorKind::Unsupported);
        assert_eq!(
            kind(E::AlignmentNotPowerOfTwo { alignment: 3 }),
            io::ErrorKind::InvalidData
        );
        assert_eq!(kind(E::RegionNotFound), io::ErrorKind::Unsupported);
        assert_eq!(
            kind(E::MachineCheck {
                direction: IoDirection::Read
            }),
            io::ErrorKind::Other
        );
        assert_eq!(
            kind(E::UnexpectedEnd {
                direction: IoDirection::Write,
                offset: 7,
                size_now: None,
            }),
            io::ErrorKind::UnexpectedEof
        );
        assert_eq!(
            kind(E::OutOfRange {
                direction: IoDirection::Read,
                len: 2,
                offset: 9,
                source_size: 10
            }),
            io::ErrorKind::InvalidInput
        );
    }

    /// The Windows errors (made here by hand; on Windows by the Win32 backend).
    #[test]
    fn io_kinds_of_windows_errors() {
        use pmem2_source::Error as E;
        let kind = |err: E| Error::from(err).io_kind();
        let win32 = |raw| E::Win32 {
            call: "GetFileInformationByHandle",
            error: Win32Error::from_raw(raw),
        };
        for (raw, expected) in [
            (2, io::ErrorKind::NotFound),
            (3, io::ErrorKind::NotFound),
            (5, io::ErrorKind::PermissionDenied),
            (12, io::ErrorKind::PermissionDenied),
            (167, io::ErrorKind::PermissionDenied),
            (8, io::ErrorKind::OutOfMemory),
            (14, io::ErrorKind::OutOfMemory),
            (50, io::ErrorKind::Unsupported),
            (120, io::ErrorKind::Unsupported),
            (6, io::ErrorKind::InvalidInput),
            (87, io::ErrorKind::InvalidInput),
            (1117, io::ErrorKind::Other),
        ] {
            assert_eq!(kind(win32(raw)), expected, "Win32 error {raw}");
        }
        assert_eq!(kind(E::DirectoryHandle), io::ErrorKind::IsADirectory);
        assert_eq!(kind(E::FileHandleNotSet), io::ErrorKind::Unsupported);
        assert_eq!(kind(E::InvalidHandleValue), io::ErrorKind::InvalidInput);
        assert_eq!(
            kind(E::NegativeCrtFd { fd: -1 }),
            io::ErrorKind::InvalidInput
        );
    }

    #[test]
    fn io_error_keeps_code_and_message() {
        let null = File::open("/dev/null").expect("open /dev/null");
        let err = Source::from_fd(null.as_fd()).expect_err("not DAX");
        let message = err.to_string();
        let io: io::Error = err.into();
        assert_eq!(Error::code_of(&io), Some(codes::PMEM2_E_INVALID_FILE_TYPE));
        assert_eq!(io.to_string(), message);
        assert_eq!(io.kind(), io::ErrorKind::Unsupported);
        assert_eq!(Error::code_of(&io::Error::from_raw_os_error(2)), None);
    }

    /// Judged from metadata as `from_fd` judges the open file.
    #[test]
    fn file_type_of_metadata_is_from_fd() {
        for path in ["Cargo.toml", "/dev/null", "/dev/zero", "."] {
            let file = File::open(path).expect("open");
            let from_fd = Source::from_fd(file.as_fd()).map(|source| source.file_type());
            let judged = Source::file_type_of(&file.metadata().expect("fstat"));
            assert_eq!(judged.map(Some), from_fd, "{path}");
        }
    }

    #[test]
    fn source_borrows_and_reports() {
        let file = File::open("Cargo.toml").expect("open");
        let source = Source::try_from(&file).expect("regular");
        assert_eq!(source.kind(), SourceKind::Fd);
        assert_eq!(source.fd().expect("fd").as_raw_fd(), file.as_raw_fd());
        assert_eq!(source.as_core().fd(), Ok(file.as_raw_fd()));
        assert!(source.dev().is_some() && source.ino().is_some());
        let write_only = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .expect("open /dev/null write-only");
        let err = Source::try_from(write_only.as_fd()).expect_err("O_WRONLY");
        assert_eq!(err.code(), codes::PMEM2_E_INVALID_FILE_HANDLE);
        assert_eq!(err.to_string(), "fd must be open with O_RDONLY or O_RDWR");
        assert!(format!("{err:?}").starts_with("Error(PMEM2_E_INVALID_FILE_HANDLE -100004"));
    }
}
