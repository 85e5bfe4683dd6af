//! A deterministic fake kernel for tests, Miri and fuzzing (feature `testing`).
//!
//! Each syscall answers from a script: a fixed result or errno per call kind. The kernel also
//! records every call it receives, so tests can check the order and number of syscalls.
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

use core::cell::RefCell;
use core::ffi::CStr;

use super::consts::{O_RDWR, S_IFCHR, S_IFREG};
use super::{FileStat, Syscalls};
use crate::error::Errno;

/// How many bytes a scripted link target may hold (more than the real read buffer, so
/// truncation can be scripted).
pub const MAX_SCRIPTED_LINK: usize = 512;

/// How many calls the kernel remembers; later calls are answered but not recorded.
pub const MAX_RECORDED_CALLS: usize = 16;

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
    /// `readlinkat(AT_FDCWD, path, …)`.
    Readlink {
        /// The path, lossily decoded; cut at 64 bytes.
        path: heapless::String<64>,
        /// The buffer size the caller offered.
        buffer_len: usize,
    },
}

/// The fake kernel. Build one with a constructor, adjust it with the `with_*` methods, and
/// pass `&kernel` wherever a [`Syscalls`] is expected.
#[derive(Debug)]
pub struct ScriptedKernel {
    fcntl: Result<u32, Errno>,
    fstat: Result<FileStat, Errno>,
    readlink: Result<heapless::Vec<u8, MAX_SCRIPTED_LINK>, Errno>,
    calls: RefCell<heapless::Vec<Call, MAX_RECORDED_CALLS>>,
}

impl ScriptedKernel {
    /// Any descriptor is an `O_RDWR` regular file of 4096 bytes, on device 8:1, inode 12;
    /// no sysfs entry exists.
    pub fn regular_file() -> ScriptedKernel {
        ScriptedKernel {
            fcntl: Ok(O_RDWR),
            fstat: Ok(FileStat {
                mode: S_IFREG | 0o644,
                rdev: 0,
                dev: 0x801,
                ino: 12,
                size: 4096,
            }),
            readlink: Err(Errno::ENOENT),
            calls: RefCell::new(heapless::Vec::new()),
        }
    }

    /// Any descriptor is an `O_RDWR` character device `rdev` on devtmpfs (device 0:5); its
    /// sysfs `subsystem` link points at `../../../../bus/dax` (a Device DAX) until changed
    /// with [`with_readlink`](Self::with_readlink).
    pub fn char_device(rdev: u64) -> ScriptedKernel {
        ScriptedKernel {
            fcntl: Ok(O_RDWR),
            fstat: Ok(FileStat {
                mode: S_IFCHR | 0o600,
                rdev,
                dev: 5,
                ino: 99,
                size: 0,
            }),
            readlink: Ok(heapless::Vec::from_slice(b"../../../../bus/dax").unwrap_or_default()),
            calls: RefCell::new(heapless::Vec::new()),
        }
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

    /// Sets only `st_mode` of the `fstat` answer (keeps the rest, or starts from zeroes if
    /// `fstat` was scripted to fail).
    pub fn with_mode(mut self, mode: u32) -> ScriptedKernel {
        let stat = self.fstat.unwrap_or_default();
        self.fstat = Ok(FileStat { mode, ..stat });
        self
    }

    /// Sets the `readlink` answer: the whole link target (up to [`MAX_SCRIPTED_LINK`]
    /// bytes; longer input is cut) or an errno.
    pub fn with_readlink(mut self, answer: Result<&[u8], Errno>) -> ScriptedKernel {
        self.readlink = answer.map(|target| {
            let kept = target.get(..MAX_SCRIPTED_LINK).unwrap_or(target);
            heapless::Vec::from_slice(kept).unwrap_or_default()
        });
        self
    }

    /// The calls received so far, oldest first (at most [`MAX_RECORDED_CALLS`]).
    pub fn calls(&self) -> heapless::Vec<Call, MAX_RECORDED_CALLS> {
        self.calls.borrow().clone()
    }

    fn record(&self, call: Call) {
        // A full log drops the call: the answer matters more than the record.
        let _ = self.calls.borrow_mut().push(call);
    }
}

impl Syscalls for ScriptedKernel {
    fn fcntl_getfl(&self, fd: i32) -> Result<u32, Errno> {
        self.record(Call::FcntlGetfl { fd });
        self.fcntl
    }

    fn fstat(&self, fd: i32) -> Result<FileStat, Errno> {
        self.record(Call::Fstat { fd });
        self.fstat
    }

    fn readlink(&self, path: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
        let mut recorded = heapless::String::new();
        for ch in path
            .to_bytes()
            .utf8_chunks()
            .flat_map(|chunk| chunk.valid().chars())
        {
            if recorded.push(ch).is_err() {
                break;
            }
        }
        self.record(Call::Readlink {
            path: recorded,
            buffer_len: buf.len(),
        });
        let target = self.readlink.as_ref().map_err(|errno| *errno)?;
        // Like the kernel: copy what fits, report how much was copied.
        let copied = target.len().min(buf.len());
        if let (Some(dst), Some(src)) = (buf.get_mut(..copied), target.get(..copied)) {
            dst.copy_from_slice(src);
        }
        Ok(copied)
    }
}
