//! A deterministic fake kernel for tests, Miri and fuzzing (feature `testing`).
//!
//! Each syscall answers from a script: `fcntl`, `fstat` and the `subsystem` readlink have one
//! fixed answer each (a value or an errno); other links and sysfs attributes are scripted per
//! path; the file's data (for `pread`/`pwrite` and mappings) is a small in-memory buffer. The
//! kernel records every call it receives, so tests can check the order and number of
//! syscalls.
//!
//! ```
//! use pmem2_source::sys::scripted::{Call, ScriptedKernel};
//! use pmem2_source::{codes, Errno, Source};
//!
//! let kernel = ScriptedKernel::char_device(0x103).with_readlink(Err(Errno::EACCES));
//! let err = Source::from_fd_with(&kernel, 7).unwrap_err();
//! assert_eq!(err.code(), -13);
//! assert_eq!(kernel.calls().len(), 3);
//! assert_eq!(kernel.calls()[0], Call::FcntlGetfl { fd: 7 });
//! ```

use core::cell::{RefCell, UnsafeCell};
use core::ffi::CStr;
use core::ptr::NonNull;

use super::consts::{O_RDWR, S_IFCHR, S_IFREG};
use super::{FileInformation, FileStat, MappingCopyError, RawHandle, Syscalls, Timestamp};
use crate::error::{Errno, Win32Error};

/// How many bytes a scripted link target may hold (more than the real read buffer, so
/// truncation can be scripted).
pub const MAX_SCRIPTED_LINK: usize = 512;

/// How many calls the kernel remembers; later calls are answered but not recorded.
pub const MAX_RECORDED_CALLS: usize = 128;

/// How many sysfs files and links can be scripted (each).
pub const MAX_SCRIPTED_PATHS: usize = 24;

/// How many bytes a scripted sysfs file may hold (more than the real read buffer).
pub const MAX_SCRIPTED_FILE: usize = 96;

/// Size of the file data behind `pread`, `pwrite` and mappings.
pub const DATA_CAPACITY: usize = 4096;

/// The `st_ctime` of every scripted file: 2023-11-14 22:13:20.5 UTC.
pub const SCRIPTED_CTIME: Timestamp = Timestamp {
    sec: 1_700_000_000,
    nsec: 500_000_000,
};

/// The birth time of every scripted file, one second before [`SCRIPTED_CTIME`].
pub const SCRIPTED_BIRTH: Timestamp = Timestamp {
    sec: 1_699_999_999,
    nsec: 500_000_000,
};

/// Descriptors handed out by `open_read_only` start here.
const FIRST_SYSFS_FD: i32 = 1000;

type Path = heapless::String<128>;

/// One call the scripted kernel received.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Call {
    /// `fcntl(fd, F_GETFL)`.
    FcntlGetfl {
        /// The descriptor asked about.
        fd: i32,
    },
    /// `fstat(fd)`.
    Fstat {
        /// The descriptor asked about.
        fd: i32,
    },
    /// `statx(fd, "", AT_EMPTY_PATH, STATX_BTIME)`.
    BirthTime {
        /// The descriptor asked about.
        fd: i32,
    },
    /// `readlinkat(AT_FDCWD, path, …)`.
    Readlink {
        /// The path, lossily decoded; cut at 128 bytes.
        path: Path,
        /// The buffer size the caller offered.
        buffer_len: usize,
    },
    /// `openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC)`.
    Open {
        /// The path, lossily decoded; cut at 128 bytes.
        path: Path,
    },
    /// `read(fd, …)`.
    Read {
        /// The descriptor.
        fd: i32,
    },
    /// `close(fd)`.
    Close {
        /// The descriptor.
        fd: i32,
    },
    /// `pread(fd, …, len, offset)`.
    Pread {
        /// Bytes asked for.
        len: usize,
        /// Where.
        offset: u64,
    },
    /// `pwrite(fd, …, len, offset)`.
    Pwrite {
        /// Bytes offered.
        len: usize,
        /// Where.
        offset: u64,
    },
    /// The page size was asked for.
    PageSize,
    /// `mmap` of `len` bytes at `offset`.
    Map {
        /// Where.
        offset: u64,
        /// How much.
        len: usize,
        /// `PROT_WRITE` asked for.
        writable: bool,
    },
    /// `munmap` of `len` bytes.
    Unmap {
        /// How much.
        len: usize,
    },
    /// A machine-check-safe copy out of a mapping.
    CopyFromMapping {
        /// How much.
        len: usize,
    },
    /// A machine-check-safe copy into a mapping.
    CopyToMapping {
        /// How much.
        len: usize,
    },
    /// Windows: the allocation granularity was asked for.
    AllocationGranularity,
    /// Windows: `GetFileInformationByHandle(handle)`.
    FileInformation {
        /// The handle's value.
        handle: usize,
    },
    /// Windows: `ReadFile` of `len` bytes at `offset`.
    ReadHandle {
        /// Bytes asked for.
        len: usize,
        /// Where.
        offset: u64,
    },
    /// Windows: `WriteFile` of `len` bytes at `offset`.
    WriteHandle {
        /// Bytes offered.
        len: usize,
        /// Where.
        offset: u64,
    },
}

/// What a scripted sysfs file does when opened and read.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum FileScript {
    /// Opens and reads these bytes.
    Contents(heapless::Vec<u8, MAX_SCRIPTED_FILE>),
    /// Fails to open with this errno.
    OpenFails(Errno),
    /// Opens, then every read fails with this errno.
    ReadFails(Errno),
    /// Opens, and `fstat` says it is not a regular file but has this `st_mode` (a FIFO, a
    /// device node put in a staged tree); reads give nothing.
    Special(u32),
}

/// The fake kernel. Build one with a constructor, adjust it with the `with_*` methods, and
/// pass `&kernel` wherever a [`Syscalls`] is expected.
#[derive(Debug)]
pub struct ScriptedKernel {
    fcntl: Result<u32, Errno>,
    fstat: Result<FileStat, Errno>,
    birth_time: Result<Option<Timestamp>, Errno>,
    readlink: Result<heapless::Vec<u8, MAX_SCRIPTED_LINK>, Errno>,
    links: heapless::Vec<
        (Path, Result<heapless::Vec<u8, MAX_SCRIPTED_LINK>, Errno>),
        MAX_SCRIPTED_PATHS,
    >,
    files: heapless::Vec<(Path, FileScript), MAX_SCRIPTED_PATHS>,
    page_size: Result<usize, Errno>,
    io_errno: Option<Errno>,
    max_transfer: usize,
    map_errno: Option<Errno>,
    copy: Result<(), MappingCopyError>,
    file_information: Result<FileInformation, Win32Error>,
    granularity: Option<usize>,
    handle_io_error: Option<Win32Error>,
    data: Data,
    /// Open sysfs descriptors: (fd, index into `files`, read position).
    open: RefCell<heapless::Vec<(i32, usize, usize), MAX_SCRIPTED_PATHS>>,
    next_fd: RefCell<i32>,
    calls: RefCell<heapless::Vec<Call, MAX_RECORDED_CALLS>>,
}

/// The file's bytes. Mappings hand out pointers into it, so it is only ever accessed through
/// raw pointers.
struct Data {
    bytes: UnsafeCell<[u8; DATA_CAPACITY]>,
    len: usize,
}

impl core::fmt::Debug for Data {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Data")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl Data {
    fn base(&self) -> *mut u8 {
        self.bytes.get().cast::<u8>()
    }
}

impl ScriptedKernel {
    fn with_stat(stat: FileStat) -> ScriptedKernel {
        ScriptedKernel {
            fcntl: Ok(O_RDWR),
            fstat: Ok(stat),
            birth_time: Ok(Some(SCRIPTED_BIRTH)),
            readlink: Err(Errno::ENOENT),
            links: heapless::Vec::new(),
            files: heapless::Vec::new(),
            page_size: Ok(4096),
            io_errno: None,
            max_transfer: usize::MAX,
            map_errno: None,
            copy: Ok(()),
            file_information: Err(Win32Error::CALL_NOT_IMPLEMENTED),
            granularity: None,
            handle_io_error: None,
            data: Data {
                bytes: UnsafeCell::new([0; DATA_CAPACITY]),
                len: 0,
            },
            open: RefCell::new(heapless::Vec::new()),
            next_fd: RefCell::new(FIRST_SYSFS_FD),
            calls: RefCell::new(heapless::Vec::new()),
        }
    }

    /// Any descriptor is an `O_RDWR` regular file of 4096 bytes (see
    /// [`with_data`](Self::with_data)), on device 8:1, inode 12, changed last at
    /// [`SCRIPTED_CTIME`] and born at [`SCRIPTED_BIRTH`]; no sysfs entry exists.
    pub fn regular_file() -> ScriptedKernel {
        let stat = FileStat {
            mode: S_IFREG | 0o644,
            rdev: 0,
            dev: 0x801,
            ino: 12,
            size: 4096,
            ctime: SCRIPTED_CTIME,
        };
        let mut kernel = ScriptedKernel::with_stat(stat);
        kernel.data.len = 4096;
        kernel
    }

    /// Any descriptor is an `O_RDWR` character device `rdev` on devtmpfs (device 0:5, inode
    /// 99, times as for [`regular_file`](Self::regular_file)); its sysfs `subsystem` link
    /// points at `../../../../bus/dax` (a Device DAX) until changed with
    /// [`with_readlink`](Self::with_readlink). Its data is 4096 zero bytes.
    pub fn char_device(rdev: u64) -> ScriptedKernel {
        let stat = FileStat {
            mode: S_IFCHR | 0o600,
            rdev,
            dev: 5,
            ino: 99,
            size: 0,
            ctime: SCRIPTED_CTIME,
        };
        let mut kernel = ScriptedKernel::with_stat(stat);
        kernel.readlink = Ok(heapless::Vec::from_slice(b"../../../../bus/dax").unwrap_or_default());
        kernel.data.len = 4096;
        kernel
    }

    /// Windows: any handle is a regular file of 4096 bytes (attribute
    /// `FILE_ATTRIBUTE_ARCHIVE`) on volume `0x1234abcd`, file index 42; the allocation
    /// granularity is 64 KiB. (The Linux calls answer as for
    /// [`regular_file`](Self::regular_file).)
    pub fn windows_file() -> ScriptedKernel {
        let mut kernel = ScriptedKernel::regular_file();
        kernel.file_information = Ok(FileInformation {
            attributes: 0x20,
            volume_serial_number: 0x1234_abcd,
            file_index: 42,
            size: 4096,
        });
        kernel.granularity = Some(65536);
        kernel
    }

    /// Windows: sets the `GetFileInformationByHandle` answer.
    pub fn with_file_information(
        mut self,
        answer: Result<FileInformation, Win32Error>,
    ) -> ScriptedKernel {
        self.file_information = answer;
        self
    }

    /// Windows: sets only the file attributes of the `GetFileInformationByHandle` answer.
    pub fn with_attributes(mut self, attributes: u32) -> ScriptedKernel {
        let info = self.file_information.unwrap_or_default();
        self.file_information = Ok(FileInformation { attributes, ..info });
        self
    }

    /// Sets the allocation granularity answer (otherwise it is the page size's).
    pub fn with_granularity(mut self, granularity: usize) -> ScriptedKernel {
        self.granularity = Some(granularity);
        self
    }

    /// Windows: makes every `ReadFile`/`WriteFile` fail with `error`.
    pub fn with_handle_io_error(mut self, error: Win32Error) -> ScriptedKernel {
        self.handle_io_error = Some(error);
        self
    }

    /// Sets the `fcntl(F_GETFL)` answer.
    pub fn with_fcntl(mut self, answer: Result<u32, Errno>) -> ScriptedKernel {
        self.fcntl = answer;
        self
    }

    /// Sets the `fstat` answer.
    pub fn with_fstat(mut self, answer: Result<FileStat, Errno>) -> ScriptedKernel {
        self.fstat = answer;
        self
    }

    /// Sets only `st_ctime` of the `fstat` answer (keeps the rest, or starts from zeroes if
    /// `fstat` was scripted to fail).
    pub fn with_ctime(mut self, ctime: Timestamp) -> ScriptedKernel {
        let stat = self.fstat.unwrap_or_default();
        self.fstat = Ok(FileStat { ctime, ..stat });
        self
    }

    /// Sets the birth-time (`statx`) answer.
    pub fn with_birth_time(mut self, answer: Result<Option<Timestamp>, Errno>) -> ScriptedKernel {
        self.birth_time = answer;
        self
    }

    /// Sets only `st_mode` of the `fstat` answer (keeps the rest, or starts from zeroes if
    /// `fstat` was scripted to fail).
    pub fn with_mode(mut self, mode: u32) -> ScriptedKernel {
        let stat = self.fstat.unwrap_or_default();
        self.fstat = Ok(FileStat { mode, ..stat });
        self
    }

    /// Sets the answer of a `readlink` of any `…/subsystem` path not scripted with
    /// [`with_link`](Self::with_link) (in practice, the device's `subsystem` link): the whole
    /// link target (up to [`MAX_SCRIPTED_LINK`] bytes; longer input is cut) or an errno. Other
    /// paths not scripted are not links (`EINVAL`).
    pub fn with_readlink(mut self, answer: Result<&[u8], Errno>) -> ScriptedKernel {
        self.readlink = answer.map(link_target);
        self
    }

    /// Scripts the `readlink` answer for one `path`.
    pub fn with_link(mut self, path: &str, answer: Result<&[u8], Errno>) -> ScriptedKernel {
        let _ = self
            .links
            .push((path_of(path.as_bytes()), answer.map(link_target)));
        self
    }

    /// Scripts a sysfs file at `path` that opens and reads `contents` (cut to
    /// [`MAX_SCRIPTED_FILE`] bytes).
    pub fn with_file(self, path: &str, contents: &[u8]) -> ScriptedKernel {
        let kept = contents.get(..MAX_SCRIPTED_FILE).unwrap_or(contents);
        let contents = heapless::Vec::from_slice(kept).unwrap_or_default();
        self.with_file_script(path, FileScript::Contents(contents))
    }

    /// Scripts what opening and reading `path` does.
    pub fn with_file_script(mut self, path: &str, script: FileScript) -> ScriptedKernel {
        let _ = self.files.push((path_of(path.as_bytes()), script));
        self
    }

    /// Sets the page size answer.
    pub fn with_page_size(mut self, answer: Result<usize, Errno>) -> ScriptedKernel {
        self.page_size = answer;
        self
    }

    /// Replaces the file's data (at most [`DATA_CAPACITY`] bytes) and, for a regular file,
    /// sets `st_size` to its length.
    pub fn with_data(mut self, data: &[u8]) -> ScriptedKernel {
        let kept = data.get(..DATA_CAPACITY).unwrap_or(data);
        // SAFETY: no mapping or other pointer into the buffer exists while building.
        unsafe { core::ptr::copy_nonoverlapping(kept.as_ptr(), self.data.base(), kept.len()) };
        self.data.len = kept.len();
        if let Ok(stat) = &mut self.fstat
            && stat.mode & super::consts::S_IFMT == S_IFREG
        {
            stat.size = kept.len() as i64;
        }
        if let Ok(info) = &mut self.file_information {
            info.size = kept.len() as u64;
        }
        self
    }

    /// Makes every `pread`/`pwrite` fail with `errno`.
    pub fn with_io_errno(mut self, errno: Errno) -> ScriptedKernel {
        self.io_errno = Some(errno);
        self
    }

    /// Makes `pread`/`pwrite` transfer at most `max` bytes per call (short transfers).
    pub fn with_max_transfer(mut self, max: usize) -> ScriptedKernel {
        self.max_transfer = max.max(1);
        self
    }

    /// Makes `mmap` fail with `errno`.
    pub fn with_map_errno(mut self, errno: Errno) -> ScriptedKernel {
        self.map_errno = Some(errno);
        self
    }

    /// Sets the outcome of machine-check-safe copies (`Ok` copies for real).
    pub fn with_copy(mut self, outcome: Result<(), MappingCopyError>) -> ScriptedKernel {
        self.copy = outcome;
        self
    }

    /// The file's data now (after writes).
    pub fn data(&self) -> heapless::Vec<u8, DATA_CAPACITY> {
        // SAFETY: reading the buffer; no mapping from this kernel is live outside a call.
        let bytes = unsafe { core::slice::from_raw_parts(self.data.base(), self.data.len) };
        heapless::Vec::from_slice(bytes).unwrap_or_default()
    }

    /// The calls received so far, oldest first (at most [`MAX_RECORDED_CALLS`]).
    pub fn calls(&self) -> heapless::Vec<Call, MAX_RECORDED_CALLS> {
        self.calls.borrow().clone()
    }

    /// How many sysfs descriptors are open (opened and not closed): 0 after every call of
    /// the crate, or it leaked one.
    pub fn open_descriptors(&self) -> usize {
        self.open.borrow().len()
    }

    fn record(&self, call: Call) {
        // A full log drops the call: the answer matters more than the record.
        let _ = self.calls.borrow_mut().push(call);
    }

    /// Copies the data at `offset` into `buf` (clipped, see [`clip`](Self::clip)).
    fn read_data(&self, buf: &mut [u8], offset: u64) -> usize {
        let (start, n) = self.clip(offset, buf.len());
        let from = self.data.base().wrapping_add(start);
        // SAFETY: `start + n <= data.len <= DATA_CAPACITY`, and `buf` is a separate slice.
        unsafe { core::ptr::copy_nonoverlapping(from, buf.as_mut_ptr(), n) };
        n
    }

    /// Copies `buf` into the data at `offset` (clipped).
    fn write_data(&self, buf: &[u8], offset: u64) -> usize {
        let (start, n) = self.clip(offset, buf.len());
        let to = self.data.base().wrapping_add(start);
        // SAFETY: as in `read_data`, in the other direction.
        unsafe { core::ptr::copy_nonoverlapping(buf.as_ptr(), to, n) };
        n
    }

    /// The part of the data `[offset, offset + len)` clipped to its length, as (start, len).
    fn clip(&self, offset: u64, len: usize) -> (usize, usize) {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.data.len);
        (start, len.min(self.data.len - start).min(self.max_transfer))
    }
}

fn link_target(target: &[u8]) -> heapless::Vec<u8, MAX_SCRIPTED_LINK> {
    let kept = target.get(..MAX_SCRIPTED_LINK).unwrap_or(target);
    heapless::Vec::from_slice(kept).unwrap_or_default()
}

fn path_of(bytes: &[u8]) -> Path {
    let mut path = Path::new();
    for ch in bytes.utf8_chunks().flat_map(|chunk| chunk.valid().chars()) {
        if path.push(ch).is_err() {
            break;
        }
    }
    path
}

impl Syscalls for ScriptedKernel {
    fn fcntl_getfl(&self, fd: i32) -> Result<u32, Errno> {
        self.record(Call::FcntlGetfl { fd });
        self.fcntl
    }

    /// The scripted answer, or for a descriptor of an open sysfs file, a regular file of
    /// 4096 bytes (what sysfs reports) unless it is scripted as [`FileScript::Special`].
    fn fstat(&self, fd: i32) -> Result<FileStat, Errno> {
        self.record(Call::Fstat { fd });
        let open = self.open.borrow();
        let Some((_, index, _)) = open.iter().find(|(open_fd, _, _)| *open_fd == fd) else {
            return self.fstat;
        };
        let mode = match self.files.get(*index) {
            Some((_, FileScript::Special(mode))) => *mode,
            _ => S_IFREG | 0o444,
        };
        Ok(FileStat {
            mode,
            size: 4096,
            ..FileStat::default()
        })
    }

    fn birth_time(&self, fd: i32) -> Result<Option<Timestamp>, Errno> {
        self.record(Call::BirthTime { fd });
        self.birth_time
    }

    fn readlink(&self, path: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
        let path = path_of(path.to_bytes());
        self.record(Call::Readlink {
            path: path.clone(),
            buffer_len: buf.len(),
        });
        let scripted = self
            .links
            .iter()
            .find(|(link, _)| *link == path)
            .map(|(_, answer)| answer);
        // Unscripted paths other than a `subsystem` link are plain directories or files.
        let target = match scripted {
            Some(answer) => answer,
            None if path.ends_with("/subsystem") => &self.readlink,
            None => return Err(Errno::EINVAL),
        }
        .as_ref()
        .map_err(|errno| *errno)?;
        // Like the kernel: copy what fits, report how much was copied.
        let copied = target.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..copied), target.get(..copied)) {
            dst.copy_from_slice(src);
        }
        Ok(copied)
    }

    fn open_read_only(&self, path: &CStr) -> Result<i32, Errno> {
        let path = path_of(path.to_bytes());
        self.record(Call::Open { path: path.clone() });
        let index = self
            .files
            .iter()
            .position(|(file, _)| *file == path)
            .ok_or(Errno::ENOENT)?;
        if let Some((_, FileScript::OpenFails(errno))) = self.files.get(index) {
            return Err(*errno);
        }
        let mut next = self.next_fd.borrow_mut();
        let fd = *next;
        self.open
            .borrow_mut()
            .push((fd, index, 0))
            .map_err(|_| Errno::EMFILE)?;
        *next += 1;
        Ok(fd)
    }

    fn read(&self, fd: i32, buf: &mut [u8]) -> Result<usize, Errno> {
        self.record(Call::Read { fd });
        let mut open = self.open.borrow_mut();
        let (_, index, position) = open
            .iter_mut()
            .find(|(open_fd, _, _)| *open_fd == fd)
            .ok_or(Errno::EBADF)?;
        match self.files.get(*index).map(|(_, script)| script) {
            Some(FileScript::Contents(contents)) => {
                let rest = contents.get(*position..).unwrap_or_default();
                let n = rest.len().min(buf.len());
                if let (Some(dst), Some(src)) = (buf.get_mut(..n), rest.get(..n)) {
                    dst.copy_from_slice(src);
                }
                *position += n;
                Ok(n)
            }
            Some(FileScript::ReadFails(errno)) => Err(*errno),
            Some(FileScript::Special(_)) => Ok(0),
            Some(FileScript::OpenFails(_)) | None => Err(Errno::EBADF),
        }
    }

    fn close(&self, fd: i32) -> Result<(), Errno> {
        self.record(Call::Close { fd });
        let mut open = self.open.borrow_mut();
        let index = open
            .iter()
            .position(|(open_fd, _, _)| *open_fd == fd)
            .ok_or(Errno::EBADF)?;
        open.swap_remove(index);
        Ok(())
    }

    fn pread(&self, _fd: i32, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
        self.record(Call::Pread {
            len: buf.len(),
            offset,
        });
        if let Some(errno) = self.io_errno {
            return Err(errno);
        }
        Ok(self.read_data(buf, offset))
    }

    fn pwrite(&self, _fd: i32, buf: &[u8], offset: u64) -> Result<usize, Errno> {
        self.record(Call::Pwrite {
            len: buf.len(),
            offset,
        });
        if let Some(errno) = self.io_errno {
            return Err(errno);
        }
        Ok(self.write_data(buf, offset))
    }

    fn allocation_granularity(&self) -> Result<usize, Errno> {
        match self.granularity {
            Some(granularity) => {
                self.record(Call::AllocationGranularity);
                Ok(granularity)
            }
            None => self.page_size(),
        }
    }

    fn file_information(&self, handle: RawHandle) -> Result<FileInformation, Win32Error> {
        self.record(Call::FileInformation {
            handle: handle.addr(),
        });
        self.file_information
    }

    fn read_handle_at(
        &self,
        _handle: RawHandle,
        buf: &mut [u8],
        offset: u64,
    ) -> Result<usize, Win32Error> {
        self.record(Call::ReadHandle {
            len: buf.len(),
            offset,
        });
        match self.handle_io_error {
            Some(error) => Err(error),
            None => Ok(self.read_data(buf, offset)),
        }
    }

    fn write_handle_at(
        &self,
        _handle: RawHandle,
        buf: &[u8],
        offset: u64,
    ) -> Result<usize, Win32Error> {
        self.record(Call::WriteHandle {
            len: buf.len(),
            offset,
        });
        match self.handle_io_error {
            Some(error) => Err(error),
            None => Ok(self.write_data(buf, offset)),
        }
    }

    fn page_size(&self) -> Result<usize, Errno> {
        self.record(Call::PageSize);
        self.page_size
    }

    fn map_shared(
        &self,
        _fd: i32,
        offset: u64,
        len: usize,
        writable: bool,
    ) -> Result<NonNull<u8>, Errno> {
        self.record(Call::Map {
            offset,
            len,
            writable,
        });
        if let Some(errno) = self.map_errno {
            return Err(errno);
        }
        // The whole range must lie within the data (a real device would SIGBUS past its end).
        let start = usize::try_from(offset).map_err(|_| Errno::EINVAL)?;
        if start.checked_add(len).is_none_or(|end| end > self.data.len) {
            return Err(Errno::EINVAL);
        }
        NonNull::new(self.data.base().wrapping_add(start)).ok_or(Errno::EFAULT)
    }

    unsafe fn unmap(&self, _addr: NonNull<u8>, len: usize) -> Result<(), Errno> {
        self.record(Call::Unmap { len });
        Ok(())
    }

    unsafe fn copy_from_mapping(
        &self,
        dst: &mut [u8],
        src: NonNull<u8>,
    ) -> Result<(), MappingCopyError> {
        self.record(Call::CopyFromMapping { len: dst.len() });
        self.copy?;
        // SAFETY: `src` is valid for `dst.len()` bytes of a mapping into our data (the
        // caller's guarantee), and `dst` is a separate slice.
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), dst.as_mut_ptr(), dst.len()) };
        Ok(())
    }

    unsafe fn copy_to_mapping(&self, dst: NonNull<u8>, src: &[u8]) -> Result<(), MappingCopyError> {
        self.record(Call::CopyToMapping { len: src.len() });
        self.copy?;
        // SAFETY: as in `copy_from_mapping`, in the other direction.
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), dst.as_ptr(), src.len()) };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    #[test]
    fn debug_shows_the_script_but_not_the_data() {
        let kernel = ScriptedKernel::regular_file().with_data(b"secret");
        let text = std::format!("{kernel:?}");
        assert!(text.contains("Data { len: 6, .. }"), "{text}");
        assert!(
            !text.contains("115, 101, 99"),
            "no bytes of the data: {text}"
        );
    }

    #[test]
    fn recorded_paths_are_cut_at_128_bytes() {
        let long = std::format!("/sys/{}", "x".repeat(200));
        let c_path = std::ffi::CString::new(long.clone()).expect("no NUL");
        let kernel = ScriptedKernel::char_device(0x103).with_link(&long, Ok(b"../bus/dax"));
        let mut buf = [0u8; 16];
        // The scripted link's path was cut the same way, so it still matches.
        assert_eq!(kernel.readlink(&c_path, &mut buf), Ok(10));
        let cut = Path::try_from(&long[..128]).expect("128 bytes fit");
        let recorded = Call::Readlink {
            path: cut,
            buffer_len: 16,
        };
        assert_eq!(kernel.calls().as_slice(), [recorded]);
    }

    #[test]
    fn mappings_must_lie_within_the_data() {
        let kernel = ScriptedKernel::char_device(0xfc00).with_data(&[7; 100]);
        let map = kernel
            .map_shared(3, 96, 4, false)
            .expect("the last 4 bytes");
        // SAFETY: the mapping is 4 readable bytes of the kernel's data, unmapped below.
        assert_eq!(unsafe { map.as_ptr().wrapping_add(3).read() }, 7);
        // SAFETY: the mapping is not used after this.
        assert_eq!(unsafe { kernel.unmap(map, 4) }, Ok(()));
        assert_eq!(kernel.map_shared(3, 96, 5, false), Err(Errno::EINVAL));
        assert_eq!(kernel.map_shared(3, 101, 0, false), Err(Errno::EINVAL));
        assert_eq!(
            kernel.map_shared(3, 0, usize::MAX, true),
            Err(Errno::EINVAL)
        );
    }
}
