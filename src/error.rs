//! Errors as values: [`Errno`], the libpmem2 error codes in [`codes`], and [`Error`].
//!
//! The core keeps no global "last error" state. Every failure is an [`Error`] value whose
//! [`code`](Error::code) is exactly the number libpmem2 returns (a `PMEM2_E_*` constant or
//! `-errno`) and whose [`Display`](core::fmt::Display) is the message. The C shim stores that
//! message per thread for `pmem2_errormsg()`.

mod errno_table;
mod win32;

use core::fmt;

use linux_raw_sys::errno as raw;

use crate::sysfs::{DeviceNumber, SysfsFailure, SysfsPath, SysfsText, put_bytes, put_device};

pub use win32::Win32Error;

/// A Linux `errno` value (positive, as the kernel's `-errno` return negated).
///
/// The numbers are the target architecture's, taken from `linux-raw-sys`.
///
/// ```
/// use pmem2_source::Errno;
///
/// let e = Errno::ENOENT;
/// assert_eq!(e.name(), Some("ENOENT"));
/// assert_eq!(e.to_string(), "No such file or directory");
/// assert_eq!(Errno::from_raw(e.raw()), e);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Errno(i32);

// `linux-raw-sys` spells errno values as `u32`; every one of them fits an `i32`.
macro_rules! errno_constants {
    ($($name:ident),* $(,)?) => {
        impl Errno {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                pub const $name: Errno = Errno(raw::$name as i32);
            )*
        }
    };
}

errno_constants!(
    EPERM,
    ENOENT,
    EINTR,
    EIO,
    ENXIO,
    EBADF,
    ENOMEM,
    EACCES,
    EFAULT,
    EBUSY,
    ENODEV,
    ENOTDIR,
    EISDIR,
    EINVAL,
    ENFILE,
    EMFILE,
    ENOSPC,
    EROFS,
    ENAMETOOLONG,
    ENOSYS,
    ELOOP,
    EOVERFLOW,
    EOPNOTSUPP,
);

impl Errno {
    /// Wraps a raw, positive errno number.
    pub const fn from_raw(errno: i32) -> Errno {
        Errno(errno)
    }

    /// The raw, positive errno number.
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// The return code for this errno: `-errno`. A value no kernel gives (0, negative, or
    /// above 4095, e.g. from a faulty custom backend) is `PMEM2_E_UNKNOWN` instead, so that
    /// a failure never looks like success and nothing overflows.
    pub const fn code(self) -> i32 {
        if self.0 >= 1 && self.0 <= 4095 {
            -self.0
        } else {
            codes::PMEM2_E_UNKNOWN
        }
    }

    fn table_entry(self) -> Option<&'static (u32, &'static str, &'static str)> {
        let value = u32::try_from(self.0).ok()?;
        errno_table::ERRNO_TABLE
            .iter()
            .find(|entry| entry.0 == value)
    }

    /// The symbolic name (`"ENOENT"`), or `None` for a number Linux does not define.
    pub fn name(self) -> Option<&'static str> {
        self.table_entry().map(|entry| entry.1)
    }

    /// glibc's `strerror` text (`"No such file or directory"`), or `None` for a number Linux
    /// does not define.
    pub fn description(self) -> Option<&'static str> {
        self.table_entry().map(|entry| entry.2)
    }
}

impl fmt::Display for Errno {
    /// glibc's `strerror` text; an unknown number prints as glibc does: `Unknown error N`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.description() {
            Some(text) => f.write_str(text),
            None => write!(f, "Unknown error {}", self.0),
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "Errno({name})"),
            None => write!(f, "Errno({})", self.0),
        }
    }
}

/// libpmem2's error codes, with the exact values of `libpmem2/base.h` (PMDK 1.12.1).
///
/// Functions return one of these or `-errno`.
pub mod codes {
    macro_rules! pmem2_codes {
        ($($name:ident = $value:literal,)*) => {
            $(
                #[doc = concat!("`", stringify!($name), "` (", stringify!($value), ")")]
                pub const $name: i32 = $value;
            )*

            const ALL: &[(i32, &str)] = &[$(($name, stringify!($name)),)*];
        };
    }

    pmem2_codes! {
        PMEM2_E_UNKNOWN = -100000,
        PMEM2_E_NOSUPP = -100001,
        PMEM2_E_FILE_HANDLE_NOT_SET = -100003,
        PMEM2_E_INVALID_FILE_HANDLE = -100004,
        PMEM2_E_INVALID_FILE_TYPE = -100005,
        PMEM2_E_MAP_RANGE = -100006,
        PMEM2_E_MAPPING_EXISTS = -100007,
        PMEM2_E_GRANULARITY_NOT_SET = -100008,
        PMEM2_E_GRANULARITY_NOT_SUPPORTED = -100009,
        PMEM2_E_OFFSET_OUT_OF_RANGE = -100010,
        PMEM2_E_OFFSET_UNALIGNED = -100011,
        PMEM2_E_INVALID_ALIGNMENT_FORMAT = -100012,
        PMEM2_E_INVALID_ALIGNMENT_VALUE = -100013,
        PMEM2_E_INVALID_SIZE_FORMAT = -100014,
        PMEM2_E_LENGTH_UNALIGNED = -100015,
        PMEM2_E_MAPPING_NOT_FOUND = -100016,
        PMEM2_E_BUFFER_TOO_SMALL = -100017,
        PMEM2_E_SOURCE_EMPTY = -100018,
        PMEM2_E_INVALID_SHARING_VALUE = -100019,
        PMEM2_E_SRC_DEVDAX_PRIVATE = -100020,
        PMEM2_E_INVALID_ADDRESS_REQUEST_TYPE = -100021,
        PMEM2_E_ADDRESS_UNALIGNED = -100022,
        PMEM2_E_ADDRESS_NULL = -100023,
        PMEM2_E_DEEP_FLUSH_RANGE = -100024,
        PMEM2_E_INVALID_REGION_FORMAT = -100025,
        PMEM2_E_DAX_REGION_NOT_FOUND = -100026,
        PMEM2_E_INVALID_DEV_FORMAT = -100027,
        PMEM2_E_CANNOT_READ_BOUNDS = -100028,
        PMEM2_E_NO_BAD_BLOCK_FOUND = -100029,
        PMEM2_E_LENGTH_OUT_OF_RANGE = -100030,
        PMEM2_E_INVALID_PROT_FLAG = -100031,
        PMEM2_E_NO_ACCESS = -100032,
        PMEM2_E_VM_RESERVATION_NOT_EMPTY = -100033,
        PMEM2_E_MAP_EXISTS = -100034,
        PMEM2_E_FILE_DESCRIPTOR_NOT_SET = -100035,
        PMEM2_E_SOURCE_TYPE_NOT_SUPPORTED = -100036,
        PMEM2_E_IO_FAIL = -100037,
    }

    /// The symbolic name of a return code: `PMEM2_E_*` for libpmem2's codes, the errno name
    /// (`ENOENT`) for `-errno`, `None` for anything else (including 0).
    ///
    /// ```
    /// use pmem2_source::codes;
    ///
    /// assert_eq!(codes::name(codes::PMEM2_E_INVALID_FILE_TYPE), Some("PMEM2_E_INVALID_FILE_TYPE"));
    /// assert_eq!(codes::name(-2), Some("ENOENT"));
    /// assert_eq!(codes::name(0), None);
    /// ```
    pub fn name(code: i32) -> Option<&'static str> {
        if let Some(&(_, name)) = ALL.iter().find(|entry| entry.0 == code) {
            return Some(name);
        }
        match code.checked_neg() {
            Some(errno) if errno > 0 => super::Errno::from_raw(errno).name(),
            _ => None,
        }
    }
}

/// Why a call failed: the libpmem2 return code ([`code`](Error::code)) and the message
/// ([`Display`](fmt::Display)).
///
/// ```
/// use pmem2_source::{codes, Error, Errno};
///
/// let err = Error::Fcntl { errno: Errno::EBADF };
/// assert_eq!(err.code(), codes::PMEM2_E_INVALID_FILE_HANDLE);
/// assert_eq!(err.name(), "PMEM2_E_INVALID_FILE_HANDLE");
/// assert_eq!(err.to_string(), "fcntl: Bad file descriptor");
/// ```
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Error {
    /// The descriptor number is negative.
    NegativeFd {
        /// The number passed in.
        fd: i32,
    },
    /// `fcntl(fd, F_GETFL)` failed (`EBADF` for a closed or out-of-range number).
    Fcntl {
        /// What the kernel said.
        errno: Errno,
    },
    /// The descriptor is open `O_WRONLY`; a source must be readable.
    WriteOnly,
    /// The descriptor's access mode is 3 (`O_RDONLY | O_WRONLY | O_RDWR` bits both set), which
    /// Linux grants neither reading nor writing.
    NoAccessMode,
    /// The descriptor was opened with `O_PATH`: it names a file but allows no I/O.
    PathOnly,
    /// `fstat(fd)` failed.
    Fstat {
        /// What the kernel said.
        errno: Errno,
    },
    /// `statx(fd, …, STATX_BTIME)` failed while a query checked the file's identity.
    BirthTime {
        /// What the kernel said.
        errno: Errno,
    },
    /// The descriptor refers to a directory.
    Directory,
    /// The descriptor refers to a FIFO, socket, block device, symlink, or an anonymous inode
    /// (eventfd, epoll, …).
    UnsupportedFileType {
        /// The `st_mode & S_IFMT` bits.
        file_type_bits: u32,
    },
    /// A character device whose sysfs subsystem is not `dax`.
    NotDeviceDax {
        /// The device's `st_rdev`.
        device: DeviceNumber,
        /// The last component of its `subsystem` link target (e.g. `mem` for `/dev/null`).
        subsystem: SysfsText,
    },
    /// `readlink` of the device's sysfs `subsystem` link failed (no such entry, `/sys` not
    /// mounted, no permission, …).
    SysfsUnreadable {
        /// The device's `st_rdev`.
        device: DeviceNumber,
        /// What the kernel said.
        errno: Errno,
    },
    /// The device's sysfs `subsystem` entry exists but is not a symbolic link.
    SysfsNotALink {
        /// The device's `st_rdev`.
        device: DeviceNumber,
    },
    /// The device's sysfs `subsystem` link target filled the whole read buffer, so it may be
    /// truncated; such a device is never treated as Device DAX.
    SysfsLinkTooLong {
        /// The device's `st_rdev`.
        device: DeviceNumber,
    },
    /// The allocator could not provide memory for a source.
    NoMemory,
    /// `get_fd` on a source that has no file descriptor (an anonymous source).
    FileDescriptorNotSet,
    /// The descriptor number now refers to a different file than when the source was created
    /// (`st_dev`/`st_ino` changed: it was closed and the number reused).
    FileChanged {
        /// The descriptor number stored in the source.
        fd: i32,
    },
    /// The descriptor number now refers to a file with the recorded `st_dev` and `st_ino`
    /// that was created after the recorded `st_ctime`: another file, which was given the
    /// inode number of the one the source was made from (ext4 and XFS reuse a freed inode
    /// number at once) after the descriptor number was closed and reused.
    FileReplaced {
        /// The descriptor number stored in the source.
        fd: i32,
    },
    /// `fstat` reported a negative size for a regular file.
    NegativeFileSize {
        /// What `st_size` said.
        size: i64,
    },
    /// The page size could not be found out.
    PageSize {
        /// What the backend said.
        errno: Errno,
    },
    /// A sysfs attribute could not be opened or read.
    Sysfs(SysfsFailure),
    /// A Device DAX `size` attribute is not a decimal number and a newline.
    InvalidSize {
        /// The attribute.
        path: SysfsPath,
        /// What it holds (cut to [`SysfsText::CAPACITY`] bytes).
        text: SysfsText,
    },
    /// A Device DAX `align` (or `dax_region/align`) attribute is not a decimal number and a
    /// newline.
    InvalidAlignment {
        /// The attribute.
        path: SysfsPath,
        /// What it holds.
        text: SysfsText,
    },
    /// An NVDIMM attribute (`numa_node`, `mappings`, `mappingN`, `nfit/id`,
    /// `nfit/dirty_shutdown`) does not have the expected form.
    InvalidDeviceAttribute {
        /// The attribute.
        path: SysfsPath,
        /// What it holds.
        text: SysfsText,
    },
    /// The unsafe shutdown counts of the DIMMs behind the source, each valid, add up to more
    /// than a `u64` holds.
    UnsafeShutdownCountOverflow,
    /// Neither the Device DAX's `align` nor a `dax_region/align` of one of its nearest
    /// ancestors exists.
    AlignmentNotFound {
        /// The device's `st_rdev`.
        device: DeviceNumber,
    },
    /// The alignment is not a power of two (0 included).
    AlignmentNotPowerOfTwo {
        /// The value found.
        alignment: u64,
    },
    /// A query the source cannot answer (libpmem2 returns `PMEM2_E_NOSUPP`).
    NotSupported(Unsupported),
    /// No NVDIMM region backs the source, so it has no NUMA node to report.
    RegionNotFound,
    /// `pread_mcsafe`/`pwrite_mcsafe` on an anonymous source.
    IoSourceType,
    /// The source's type field holds a value no constructor writes
    /// ([`SourceKind::Unrecognized`](crate::SourceKind::Unrecognized)): a `struct
    /// pmem2_source` built or overwritten by hand in C. No query answers for it.
    UnrecognizedSourceType {
        /// The field's value.
        raw: u32,
    },
    /// An fd source's file type field holds a value `from_fd` never writes: a `struct
    /// pmem2_source` built or overwritten by hand in C. No query answers for it (`size`
    /// still reports a descriptor that `fstat` refuses first, as libpmem2 does).
    UnrecognizedFileType {
        /// The field's value.
        raw: u32,
    },
    /// The requested range does not lie within the source.
    OutOfRange {
        /// Read or write.
        direction: IoDirection,
        /// Bytes asked for.
        len: u64,
        /// Where they start.
        offset: u64,
        /// The source size.
        source_size: u64,
    },
    /// The file ended before the whole range was transferred: it shrank meanwhile, or its
    /// contents are shorter than the size it reports (sysfs and procfs files report sizes
    /// such as 4096 or 0 whatever they hold).
    UnexpectedEnd {
        /// Read or write.
        direction: IoDirection,
        /// Where the transfer stopped.
        offset: u64,
        /// The size the file reported when it ended (`fstat` again), if that could be asked.
        size_now: Option<u64>,
    },
    /// `pread`/`pwrite` failed with `EIO`: a bad block, most likely.
    IoFailed {
        /// Read or write.
        direction: IoDirection,
    },
    /// A machine check (`SIGBUS`) while copying to or from a Device DAX mapping.
    MachineCheck {
        /// Read or write.
        direction: IoDirection,
    },
    /// `pread`/`pwrite` failed with another errno.
    Io {
        /// Read or write.
        direction: IoDirection,
        /// What the kernel said.
        errno: Errno,
    },
    /// Mapping or unmapping the Device DAX range failed.
    Mapping {
        /// `"mmap"` or `"munmap"`.
        call: &'static str,
        /// What the kernel said.
        errno: Errno,
    },
    /// The caller's buffer cannot hold the answer (`device_id`).
    BufferTooSmall {
        /// Bytes needed, the terminating NUL included.
        needed: usize,
    },
    /// Windows: the handle is `INVALID_HANDLE_VALUE`.
    InvalidHandleValue,
    /// Windows: a Win32 call about the handle failed (`ERROR_INVALID_HANDLE` for a closed
    /// handle, a mutex, an event or any other handle that is not a file).
    Win32 {
        /// The failed call (`"GetFileInformationByHandle"`, `"ReadFile"`, …).
        call: &'static str,
        /// What `GetLastError()` said.
        error: Win32Error,
    },
    /// Windows: the handle refers to a directory.
    DirectoryHandle,
    /// Windows: the handle value now refers to a different file than when the source was
    /// created (volume serial number or file index changed: it was closed and the value
    /// reused).
    HandleChanged {
        /// The handle value stored in the source.
        handle: usize,
    },
    /// Windows: `get_handle` on a source that has no handle (an anonymous source).
    FileHandleNotSet,
    /// Windows: a C runtime file descriptor that is negative.
    NegativeCrtFd {
        /// The number passed in.
        fd: i32,
    },
    /// Windows: the C runtime has no handle for the descriptor (`_get_osfhandle` failed,
    /// `EBADF` for a closed or never opened descriptor).
    CrtFd {
        /// The descriptor.
        fd: i32,
        /// The C runtime's `errno` (its numbering: `EBADF` is 9 there too).
        errno: Errno,
    },
}

/// Which queries a source cannot answer, each with libpmem2's wording where it has one.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Unsupported {
    /// `numa_node` of an anonymous source.
    AnonymousNumaNode,
    /// `device_id` of an anonymous source.
    AnonymousDeviceId,
    /// `device_usc` of an anonymous source.
    AnonymousUsc,
    /// `device_id` where no NVDIMM (with an `nfit/id`) backs the source.
    NoDeviceId,
    /// `device_usc` where no NVDIMM (with an `nfit/dirty_shutdown`) backs the source.
    NoUsc,
    /// Device DAX I/O with a backend that cannot copy through a mapping with machine-check
    /// recovery.
    MachineCheckSafeCopy,
    /// `numa_node` of a Windows handle source.
    HandleNumaNode,
    /// `device_id` of a Windows handle source.
    HandleDeviceId,
    /// `device_usc` of a Windows handle source.
    HandleUsc,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unsupported::AnonymousNumaNode => "Anonymous sources are not bound to numa nodes.",
            Unsupported::AnonymousDeviceId => "Anonymous source does not have device id",
            Unsupported::AnonymousUsc => "Anonymous source does not support unsafe shutdown count",
            Unsupported::NoDeviceId => {
                "device id is not available for this source: no NVDIMM with an nfit/id backs it"
            }
            Unsupported::NoUsc => "Unsafe shutdown count is not supported for this source",
            Unsupported::MachineCheckSafeCopy => {
                "machine-check-safe Device DAX I/O needs a copy that survives SIGBUS, which this \
                 syscall backend does not provide (the no_std core installs no signal handler; \
                 pmem2-source-std and the C ABI do)"
            }
            Unsupported::HandleNumaNode => {
                "numa node of a file handle is not supported: Windows reports no NUMA node for \
                 a file (libpmem2 has no Windows implementation either)"
            }
            Unsupported::HandleDeviceId => {
                "device id of a file handle is not supported by pmem2-source on Windows (it \
                 does not query the volume's storage device)"
            }
            Unsupported::HandleUsc => {
                "unsafe shutdown count of a file handle is not supported by pmem2-source on \
                 Windows (it does not query the volume's storage device)"
            }
        })
    }
}

/// The direction of a `pread_mcsafe`/`pwrite_mcsafe` transfer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum IoDirection {
    /// `pread_mcsafe`.
    Read,
    /// `pwrite_mcsafe`.
    Write,
}

impl fmt::Display for IoDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoDirection::Read => "read",
            IoDirection::Write => "write",
        })
    }
}

impl Error {
    /// The number libpmem2 returns for this failure: a `PMEM2_E_*` value from [`codes`], or
    /// `-errno`.
    pub fn code(&self) -> i32 {
        use codes::*;
        match self {
            Error::NegativeFd { .. } | Error::WriteOnly | Error::NoAccessMode | Error::PathOnly => {
                PMEM2_E_INVALID_FILE_HANDLE
            }
            Error::Fcntl { errno } | Error::Fstat { errno } | Error::BirthTime { errno } => {
                if *errno == Errno::EBADF {
                    PMEM2_E_INVALID_FILE_HANDLE
                } else {
                    errno.code()
                }
            }
            Error::Directory
            | Error::UnsupportedFileType { .. }
            | Error::NotDeviceDax { .. }
            | Error::SysfsNotALink { .. }
            | Error::SysfsLinkTooLong { .. } => PMEM2_E_INVALID_FILE_TYPE,
            Error::SysfsUnreadable { errno, .. } => errno.code(),
            Error::NoMemory => Errno::ENOMEM.code(),
            Error::FileDescriptorNotSet => PMEM2_E_FILE_DESCRIPTOR_NOT_SET,
            Error::FileChanged { .. }
            | Error::FileReplaced { .. }
            | Error::NegativeFileSize { .. } => PMEM2_E_INVALID_FILE_HANDLE,
            Error::PageSize { errno }
            | Error::Sysfs(SysfsFailure { errno, .. })
            | Error::Io { errno, .. }
            | Error::Mapping { errno, .. } => errno.code(),
            Error::InvalidSize { .. } => PMEM2_E_INVALID_SIZE_FORMAT,
            Error::InvalidAlignment { .. } => PMEM2_E_INVALID_ALIGNMENT_FORMAT,
            Error::InvalidDeviceAttribute { .. } | Error::UnsafeShutdownCountOverflow => {
                PMEM2_E_INVALID_DEV_FORMAT
            }
            Error::AlignmentNotFound { .. } => Errno::ENOENT.code(),
            Error::AlignmentNotPowerOfTwo { .. } => PMEM2_E_INVALID_ALIGNMENT_VALUE,
            Error::NotSupported(_) => PMEM2_E_NOSUPP,
            Error::RegionNotFound => PMEM2_E_DAX_REGION_NOT_FOUND,
            Error::IoSourceType | Error::UnrecognizedSourceType { .. } => {
                PMEM2_E_SOURCE_TYPE_NOT_SUPPORTED
            }
            Error::UnrecognizedFileType { .. } => PMEM2_E_INVALID_FILE_TYPE,
            Error::OutOfRange { .. } | Error::UnexpectedEnd { .. } => PMEM2_E_LENGTH_OUT_OF_RANGE,
            Error::IoFailed { .. } | Error::MachineCheck { .. } => PMEM2_E_IO_FAIL,
            Error::BufferTooSmall { .. } => PMEM2_E_BUFFER_TOO_SMALL,
            Error::InvalidHandleValue
            | Error::HandleChanged { .. }
            | Error::NegativeCrtFd { .. }
            | Error::Win32 {
                error: Win32Error::INVALID_HANDLE,
                ..
            } => PMEM2_E_INVALID_FILE_HANDLE,
            Error::Win32 { error, .. } => error.errno().map_or(PMEM2_E_UNKNOWN, |errno| -errno),
            Error::DirectoryHandle => PMEM2_E_INVALID_FILE_TYPE,
            Error::FileHandleNotSet => PMEM2_E_FILE_HANDLE_NOT_SET,
            Error::CrtFd { errno, .. } => {
                if *errno == Errno::EBADF {
                    PMEM2_E_INVALID_FILE_HANDLE
                } else {
                    -errno.raw()
                }
            }
        }
    }

    /// The symbolic name of [`code`](Error::code): `"PMEM2_E_INVALID_FILE_TYPE"`, `"ENOENT"`,
    /// or `"unknown error"` for an errno Linux does not define.
    pub fn name(&self) -> &'static str {
        // A Win32 error's errno is in the Windows C runtime's numbering, not Linux's.
        if let Error::Win32 { error, .. } = self
            && let (Some(name), false) = (error.errno_name(), *error == Win32Error::INVALID_HANDLE)
        {
            return name;
        }
        codes::name(self.code()).unwrap_or("unknown error")
    }

    /// Writes the message into `out`, without `core::fmt`, when it is one of those of the
    /// common failures of `from_fd` (a closed, write-only or `O_PATH` descriptor, a
    /// directory, a character device that is not Device DAX); returns its length in bytes,
    /// or `None` for the other errors (whose message `Display` writes) and when `out` is too
    /// small. The bytes are exactly those `Display` writes: this is how the C ABI stores the
    /// message of every such failure cheaply, and what a `no_std` caller can write to a
    /// descriptor without a formatter.
    ///
    /// ```
    /// use pmem2_source::Error;
    ///
    /// let mut buf = [0u8; 128];
    /// let len = Error::Directory.write_message(&mut buf).expect("a message of from_fd");
    /// assert_eq!(&buf[..len], Error::Directory.to_string().as_bytes());
    /// ```
    pub fn write_message(&self, out: &mut [u8]) -> Option<usize> {
        let end = if let Some(pieces) = self.fixed_message() {
            pieces
                .iter()
                .fold(0, |at, piece| put_bytes(out, at, piece.as_bytes()))
        } else if let Error::NotDeviceDax { device, subsystem } = self {
            let mut at = put_bytes(out, 0, NOT_DEVICE_DAX_HEAD.as_bytes());
            at = put_device(out, at, *device);
            at = put_bytes(out, at, NOT_DEVICE_DAX_MIDDLE.as_bytes());
            at = subsystem.put_escaped(out, at);
            put_bytes(out, at, NOT_DEVICE_DAX_TAIL.as_bytes())
        } else {
            return None;
        };
        // The pieces are written only where they fit: past the end, nothing was written.
        (end <= out.len()).then_some(end)
    }

    /// The message, when it is fixed text: two static pieces to write one after the other
    /// (a sentence and `""`, or `"fcntl: "` and the errno's text), or `None` when the message
    /// has numbers or names in it. `Display` writes exactly these pieces.
    fn fixed_message(&self) -> Option<[&'static str; 2]> {
        Some(match self {
            Error::Fcntl { errno } => ["fcntl: ", errno.description()?],
            Error::Fstat { errno } => ["fstat: ", errno.description()?],
            Error::BirthTime { errno } => ["statx: ", errno.description()?],
            Error::WriteOnly => ["fd must be open with O_RDONLY or O_RDWR", ""],
            Error::NoAccessMode => [
                "fd must be open with O_RDONLY or O_RDWR; its access mode is 3, \
                 which permits neither reading nor writing",
                "",
            ],
            Error::PathOnly => [
                "fd must be open with O_RDONLY or O_RDWR; it was opened with O_PATH, \
                 which permits no I/O",
                "",
            ],
            Error::Directory => ["cannot set fd to directory in pmem2_source_from_fd", ""],
            _ => return None,
        })
    }
}

/// [`Error::NotDeviceDax`]'s message: these, with the device number after the head and the
/// subsystem's name after the middle.
const NOT_DEVICE_DAX_HEAD: &str = "character device ";
const NOT_DEVICE_DAX_MIDDLE: &str = " is not Device DAX: its subsystem is \"";
const NOT_DEVICE_DAX_TAIL: &str = "\"";

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(pieces) = self.fixed_message() {
            return pieces.iter().try_for_each(|piece| f.write_str(piece));
        }
        match self {
            Error::NegativeFd { fd } => {
                write!(
                    f,
                    "invalid file descriptor value {fd} (descriptors are never negative)"
                )
            }
            // With an errno glibc has no text for (`fixed_message` covers the others).
            Error::Fcntl { errno } => write!(f, "fcntl: {errno}"),
            Error::Fstat { errno } => write!(f, "fstat: {errno}"),
            Error::BirthTime { errno } => write!(f, "statx: {errno}"),
            // Written above, from `fixed_message`.
            Error::WriteOnly | Error::NoAccessMode | Error::PathOnly | Error::Directory => Ok(()),
            Error::UnsupportedFileType { file_type_bits } => {
                write!(f, "file type 0{file_type_bits:o} not supported")
            }
            Error::NotDeviceDax { device, subsystem } => {
                f.write_str(NOT_DEVICE_DAX_HEAD)?;
                fmt::Display::fmt(device, f)?;
                f.write_str(NOT_DEVICE_DAX_MIDDLE)?;
                fmt::Display::fmt(subsystem, f)?;
                f.write_str(NOT_DEVICE_DAX_TAIL)
            }
            Error::SysfsUnreadable { device, errno } => {
                write!(
                    f,
                    "readlink \"{}\": {errno}",
                    SysfsPath::char_subsystem(*device)
                )
            }
            Error::SysfsNotALink { device } => write!(
                f,
                "\"{}\" is not a symbolic link, so character device {device} is not Device DAX",
                SysfsPath::char_subsystem(*device)
            ),
            Error::SysfsLinkTooLong { device } => write!(
                f,
                "the target of \"{}\" does not fit in {} bytes, so character device {device} \
                 is not Device DAX",
                SysfsPath::char_subsystem(*device),
                crate::sysfs::LINK_TARGET_CAPACITY - 1
            ),
            Error::NoMemory => f.write_str("cannot allocate a pmem2_source: out of memory"),
            Error::FileDescriptorNotSet => {
                f.write_str("File descriptor is not set, source type does not support fd")
            }
            Error::FileChanged { fd } => write!(
                f,
                "fd {fd} now refers to a different file than when the source was created \
                 (its device or inode changed: the descriptor was closed and its number reused)"
            ),
            Error::FileReplaced { fd } => write!(
                f,
                "fd {fd} now refers to a different file than when the source was created (a \
                 file with the same device and inode number, created after the source was: the \
                 descriptor was closed and its number reused, and the inode number too)"
            ),
            Error::NegativeFileSize { size } => {
                write!(f, "kernel says size of regular file is negative ({size})")
            }
            Error::PageSize { errno } => write!(f, "cannot find out the page size: {errno}"),
            Error::Sysfs(failure) => write!(f, "{failure}"),
            Error::InvalidSize { path, text } => write!(
                f,
                "invalid size in \"{path}\": \"{text}\" is not a decimal number and a newline"
            ),
            Error::InvalidAlignment { path, text } => write!(
                f,
                "invalid alignment in \"{path}\": \"{text}\" is not a decimal number and a newline"
            ),
            Error::UnsafeShutdownCountOverflow => write!(
                f,
                "the unsafe shutdown counts of the DIMMs behind the source add up to more than \
                 {}",
                u64::MAX
            ),
            Error::InvalidDeviceAttribute { path, text } => {
                write!(f, "unexpected contents of \"{path}\": \"{text}\"")
            }
            Error::AlignmentNotFound { device } => write!(
                f,
                "cannot read the alignment of Device DAX {device}: neither \
                 /sys/dev/char/{device}/align nor a dax_region/align in one of its {} nearest \
                 ancestor directories below /sys exists",
                crate::query::MAX_ANCESTORS
            ),
            Error::AlignmentNotPowerOfTwo { alignment } => {
                write!(f, "alignment ({alignment}) has to be a power of two")
            }
            Error::NotSupported(what) => write!(f, "{what}"),
            Error::RegionNotFound => f.write_str("unknown region"),
            Error::IoSourceType => f.write_str(
                "operation doesn't support provided source type, only sources created from \
                 file descriptor or file handle are supported",
            ),
            Error::UnrecognizedSourceType { raw } => write!(
                f,
                "the source's type is {raw}, which no pmem2_source_from_* function writes (a \
                 source not created by this library, or overwritten): nothing is answered for it"
            ),
            Error::UnrecognizedFileType { raw } => write!(
                f,
                "the source's file type is {raw}, which pmem2_source_from_fd never writes (a \
                 source not created by this library, or overwritten): nothing is answered for it"
            ),
            Error::OutOfRange {
                direction,
                len,
                offset,
                source_size,
            } => {
                match source_size.checked_sub(*offset) {
                    // libpmem2's wording, which calls what remains after the offset "the file
                    // length".
                    Some(remaining) => write!(
                        f,
                        "size of {direction} {len} from offset {offset} goes beyond the file \
                         length {remaining}"
                    ),
                    None => write!(
                        f,
                        "offset {offset} of {direction} is beyond the end of the source \
                         ({source_size} bytes)"
                    ),
                }
            }
            Error::UnexpectedEnd {
                direction,
                offset,
                size_now,
            } => {
                write!(
                    f,
                    "the file ended at offset {offset} during the {direction}"
                )?;
                match size_now {
                    Some(size) if size > offset => write!(
                        f,
                        ", although its size is {size} bytes: its contents are shorter than its \
                         size (as in sysfs and procfs)"
                    ),
                    Some(size) => write!(f, ": it shrank to {size} bytes meanwhile"),
                    None => f.write_str(
                        " (it shrank meanwhile, or its contents are shorter than its size)",
                    ),
                }
            }
            Error::IoFailed { direction } => write!(
                f,
                "physical I/O error occurred on {direction} operation, possible bad block"
            ),
            Error::MachineCheck { .. } => {
                f.write_str("physical I/O error occurred, possible bad block")
            }
            Error::Io { direction, errno } => {
                let call = match direction {
                    IoDirection::Read => "pread",
                    IoDirection::Write => "pwrite",
                };
                write!(f, "{call}: {errno}")
            }
            Error::Mapping { call, errno } => write!(f, "{call}: {errno}"),
            Error::BufferTooSmall { needed } => {
                write!(
                    f,
                    "the buffer is too small: the device id needs {needed} bytes"
                )
            }
            Error::InvalidHandleValue => f.write_str("Invalid file handle has been passed"),
            Error::Win32 { call, error } => write!(f, "{call}: {error}"),
            Error::DirectoryHandle => {
                f.write_str("using directory doesn't make any sense in context of pmem2")
            }
            Error::HandleChanged { handle } => write!(
                f,
                "handle {handle:#x} now refers to a different file than when the source was \
                 created (its volume or file index changed: the handle was closed and its \
                 value reused)"
            ),
            Error::FileHandleNotSet => {
                f.write_str("File handle is not set, source type does not support file handles")
            }
            Error::NegativeCrtFd { fd } => write!(f, "Invalid file descriptor value {fd}"),
            Error::CrtFd { fd, errno } => write!(f, "_get_osfhandle({fd}): {errno}"),
        }
    }
}

impl core::error::Error for Error {}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;

    use super::*;

    /// The messages with numbers and names in them, for extreme values of those, and with
    /// the formatter's flags ignored.
    #[test]
    fn messages_spell_out_numbers_and_names() {
        for fd in [
            i32::MIN,
            i32::MIN + 1,
            -100,
            -10,
            -9,
            -1,
            0,
            1,
            9,
            10,
            i32::MAX,
        ] {
            let err = Error::NegativeFd { fd };
            let want =
                std::format!("invalid file descriptor value {fd} (descriptors are never negative)");
            assert_eq!(err.to_string(), want);
            assert_eq!(std::format!("{err:>200}"), want);
        }
        for bits in [
            0,
            0o10000,
            0o20000,
            0o60000,
            0o120000,
            0o140000,
            0o170000,
            u32::MAX,
        ] {
            let err = Error::UnsupportedFileType {
                file_type_bits: bits,
            };
            assert_eq!(
                err.to_string(),
                std::format!("file type 0{bits:o} not supported")
            );
        }
        for raw in [0, 1, 9, 22, 4095, 4096, 12345, i32::MAX] {
            let errno = Errno::from_raw(raw);
            assert_eq!(
                Error::Fcntl { errno }.to_string(),
                std::format!("fcntl: {errno}")
            );
            assert_eq!(
                Error::Fstat { errno }.to_string(),
                std::format!("fstat: {errno}")
            );
        }
        for (raw, name) in [
            (0x103, &b"mem"[..]),
            (u64::MAX, b"a\"b"),
            (0xfc00, &[0xff; 40]),
            // The longest name kept, plain, with the longest device number.
            (u64::MAX, &[b'z'; SysfsText::CAPACITY]),
            // Plain but cut: "..." follows.
            (0x103, &[b'n'; 30]),
            (0, b""),
        ] {
            let device = DeviceNumber::from_raw(raw);
            let subsystem = SysfsText::new(name);
            let want = std::format!(
                "character device {device} is not Device DAX: its subsystem is \"{subsystem}\""
            );
            let err = Error::NotDeviceDax { device, subsystem };
            assert_eq!(err.to_string(), want);
            assert_eq!(std::format!("{err:<300}"), want);
        }
    }

    /// `write_message` writes exactly what `Display` writes, for the failures of `from_fd` it
    /// covers, into a buffer just large enough and into no smaller one; and declines the
    /// others.
    #[test]
    fn written_messages_are_the_displayed_ones() {
        let known = Errno::EBADF;
        let unknown = Errno::from_raw(4000);
        let mem = SysfsText::new(b"mem");
        let written = [
            Error::Fcntl { errno: known },
            Error::Fstat { errno: known },
            Error::WriteOnly,
            Error::NoAccessMode,
            Error::PathOnly,
            Error::Directory,
            Error::NotDeviceDax {
                device: DeviceNumber::from_raw(0x103),
                subsystem: mem.clone(),
            },
            Error::NotDeviceDax {
                device: DeviceNumber::from_raw(u64::MAX),
                subsystem: SysfsText::new(&[b'z'; SysfsText::CAPACITY]),
            },
            Error::NotDeviceDax {
                device: DeviceNumber::from_raw(0),
                subsystem: SysfsText::new(b""),
            },
            // Names that `Display` escapes or marks as cut.
            Error::NotDeviceDax {
                device: DeviceNumber::from_raw(0x103),
                subsystem: SysfsText::new(b"a\"b\xff\x01"),
            },
            Error::NotDeviceDax {
                device: DeviceNumber::from_raw(0x103),
                subsystem: SysfsText::new(&[b'n'; 2 * SysfsText::CAPACITY]),
            },
        ];
        for err in &written {
            let want = err.to_string();
            assert_eq!(std::format!("{err:>300}"), want, "flags ignored");
            let mut exact = std::vec![0xffu8; want.len()];
            assert_eq!(err.write_message(&mut exact), Some(want.len()), "{err:?}");
            assert_eq!(exact, want.as_bytes());
            let mut short = std::vec![0u8; want.len() - 1];
            assert_eq!(err.write_message(&mut short), None, "{err:?}");
        }
        assert_eq!(
            Error::Fcntl { errno: known }.to_string(),
            "fcntl: Bad file descriptor"
        );
        let formatted = [
            Error::Fcntl { errno: unknown },
            Error::Fstat { errno: unknown },
            Error::BirthTime { errno: unknown },
            Error::NegativeFd { fd: -1 },
            Error::UnsupportedFileType {
                file_type_bits: 0o10000,
            },
            Error::SysfsNotALink {
                device: DeviceNumber::from_raw(0x103),
            },
        ];
        let mut buf = [0u8; 1024];
        for err in &formatted {
            assert_eq!(err.write_message(&mut buf), None, "{err:?}");
        }
        assert_eq!(
            Error::Fcntl { errno: unknown }.to_string(),
            "fcntl: Unknown error 4000"
        );
    }

    #[cfg(not(windows))] // compares with glibc's values
    #[test]
    #[cfg_attr(
        miri,
        ignore = "Miri's strerror_r is not glibc's: it appends \"(os error N)\""
    )]
    fn errno_texts_match_libc() {
        for &(value, _, text) in errno_table::ERRNO_TABLE {
            // std formats an OS error as "<strerror text> (os error N)".
            let libc_text = std::io::Error::from_raw_os_error(value as i32).to_string();
            let suffix = std::format!(" (os error {value})");
            assert_eq!(libc_text.strip_suffix(&suffix), Some(text), "errno {value}");
        }
    }

    #[cfg(not(windows))] // compares with glibc's values
    #[test]
    fn errno_names_match_libc_values() {
        let expected = [
            ("EPERM", libc::EPERM),
            ("ENOENT", libc::ENOENT),
            ("EBADF", libc::EBADF),
            ("EACCES", libc::EACCES),
            ("EINVAL", libc::EINVAL),
            ("ENOMEM", libc::ENOMEM),
            ("ENAMETOOLONG", libc::ENAMETOOLONG),
            ("EHWPOISON", libc::EHWPOISON),
        ];
        for (name, value) in expected {
            assert_eq!(Errno::from_raw(value).name(), Some(name));
        }
        assert_eq!(Errno::EBADF.raw(), libc::EBADF);
        assert_eq!(Errno::ENOMEM.raw(), libc::ENOMEM);
    }

    /// Fuzzing review: a backend errno of 0 made a failure return 0, and `i32::MIN`
    /// overflowed when negated.
    #[test]
    fn regression_errno_outside_the_kernel_range() {
        for raw in [0, -1, i32::MIN, 4096, i32::MAX] {
            let err = Error::Fstat {
                errno: Errno::from_raw(raw),
            };
            assert_eq!(err.code(), codes::PMEM2_E_UNKNOWN, "errno {raw}");
        }
        assert_eq!(
            Error::Fstat {
                errno: Errno::from_raw(4095)
            }
            .code(),
            -4095
        );
    }

    #[test]
    fn unknown_errno_prints_like_glibc() {
        assert_eq!(Errno::from_raw(4242).to_string(), "Unknown error 4242");
        assert_eq!(Errno::from_raw(-1).to_string(), "Unknown error -1");
        assert_eq!(std::format!("{:?}", Errno::from_raw(4242)), "Errno(4242)");
        assert_eq!(std::format!("{:?}", Errno::EIO), "Errno(EIO)");
    }

    #[test]
    fn code_names_cover_pmem2_and_errno() {
        assert_eq!(codes::name(-100000), Some("PMEM2_E_UNKNOWN"));
        assert_eq!(codes::name(-100037), Some("PMEM2_E_IO_FAIL"));
        assert_eq!(codes::name(-100002), None, "libpmem2 has no -100002");
        assert_eq!(codes::name(-12), Some("ENOMEM"));
        assert_eq!(codes::name(i32::MIN), None);
        assert_eq!(codes::name(5), None);
    }

    #[test]
    fn errno_codes_map_ebadf_to_invalid_handle_only() {
        assert_eq!(
            Error::Fstat {
                errno: Errno::EBADF
            }
            .code(),
            codes::PMEM2_E_INVALID_FILE_HANDLE
        );
        assert_eq!(Error::Fstat { errno: Errno::EIO }.code(), -libc::EIO);
        assert_eq!(
            Error::Fcntl {
                errno: Errno::EINTR
            }
            .code(),
            -libc::EINTR
        );
        assert_eq!(Error::NoMemory.code(), -libc::ENOMEM);
        assert_eq!(Error::NoMemory.name(), "ENOMEM");
        // An errno Linux does not define, within the kernel's range: no name.
        let undefined = Error::Fcntl {
            errno: Errno::from_raw(4000),
        };
        assert_eq!(
            (undefined.code(), undefined.name()),
            (-4000, "unknown error")
        );
        // Outside the kernel's range: not an errno at all.
        let impossible = Error::Fcntl {
            errno: Errno::from_raw(4242),
        };
        assert_eq!(impossible.name(), "PMEM2_E_UNKNOWN");
    }

    /// `from_fd` returns `Result<Source, Error>` by value on its hot path: keep the error
    /// (which carries sysfs paths and text for its messages) within a few cache lines.
    #[test]
    fn errors_stay_small() {
        let size = core::mem::size_of::<Error>();
        assert!(size <= 112, "Error is {size} bytes");
        let result = core::mem::size_of::<Result<crate::Source, Error>>();
        assert!(result <= 120, "Result<Source, Error> is {result} bytes");
    }

    #[test]
    fn file_type_bits_print_in_printf_octal() {
        let message = |bits| {
            Error::UnsupportedFileType {
                file_type_bits: bits,
            }
            .to_string()
        };
        assert_eq!(message(0o010000), "file type 010000 not supported");
        assert_eq!(message(0o140000), "file type 0140000 not supported");
        assert_eq!(message(0), "file type 00 not supported");
    }
}
