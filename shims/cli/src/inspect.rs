//! Judging a path, opening it if it can be a source, creating a source from it, and asking
//! the source what it is.

use std::io;
use std::path::Path;

use pmem2_source_std::{DeviceNumber, Errno, Error, FileType, Source, codes};

use crate::located::{LocateError, Located, ReopenError};

/// How a path is opened: read-only by default, read-write with `--write`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    ReadOnly,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::ReadWrite => "read-write",
            Access::ReadOnly => "read-only",
        }
    }
}

/// What happened to one path.
#[derive(Debug)]
pub enum Outcome {
    /// A call failed before a source could be created: its errno, and the message (`open:
    /// No such file or directory`).
    Failed { errno: Errno, message: String },
    /// The file was judged (from its `stat`, or by creating the source) not to be a source.
    Rejected(Error),
    /// A source was created; its queries may still have failed.
    Created(Box<Report>),
}

impl Outcome {
    /// `call` failed with `errno`: `CALL: STRERROR`.
    pub fn failed(call: &str, errno: Errno) -> Outcome {
        Outcome::Failed {
            errno,
            message: format!("{call}: {errno}"),
        }
    }

    /// A source was created and every query answered (an unknown NUMA node is an answer).
    pub fn usable(&self) -> bool {
        match self {
            Outcome::Created(report) => report.all_answered(),
            Outcome::Failed { .. } | Outcome::Rejected(_) => false,
        }
    }
}

fn errno_of(err: &io::Error) -> Errno {
    Errno::from_raw(err.raw_os_error().unwrap_or(libc::EINVAL))
}

/// What a created source says about itself.
#[derive(Debug)]
pub struct Report {
    pub file_type: Option<FileType>,
    /// The device holding a regular file (`st_dev`), or the Device DAX itself (`st_rdev`).
    pub device: Option<DeviceNumber>,
    pub inode: Option<u64>,
    pub access: Access,
    pub size: Result<u64, Error>,
    pub alignment: Result<usize, Error>,
    /// `Ok(None)`: the source is on no NVDIMM region, so it has no NUMA node to report.
    pub numa_node: Result<Option<i32>, Error>,
}

impl Report {
    fn new(source: &Source<'_>, access: Access) -> Report {
        let file_type = source.file_type();
        let device = match file_type {
            Some(FileType::DeviceDax) => source.rdev(),
            _ => source.dev(),
        };
        let numa_node = match source.numa_node() {
            Ok(node) => Ok(Some(node)),
            Err(err) if NUMA_UNKNOWN.contains(&err.code()) => Ok(None),
            Err(err) => Err(err),
        };
        Report {
            file_type,
            device,
            inode: source.ino(),
            access,
            size: source.size(),
            alignment: source.alignment(),
            numa_node,
        }
    }

    pub fn all_answered(&self) -> bool {
        self.size.is_ok() && self.alignment.is_ok() && self.numa_node.is_ok()
    }
}

/// `pmem2_source_numa_node`'s answers for "no NUMA node to report": not on an NVDIMM region,
/// or a kind of source without one.
const NUMA_UNKNOWN: [i32; 2] = [codes::PMEM2_E_DAX_REGION_NOT_FOUND, codes::PMEM2_E_NOSUPP];

/// Judges `path` without opening it, then opens it (`access`) only if it is a regular file
/// or a Device DAX, creates a source from that descriptor as `pmem2_source_from_fd` would,
/// and queries it.
///
/// What is refused — a directory, a FIFO, a socket, a block device, a character device that
/// sysfs says is not Device DAX — gets `pmem2_source_from_fd`'s code and message without
/// being opened (see [`crate::located`] for why and how).
pub fn inspect(path: &Path, access: Access) -> Outcome {
    let located = match Located::new(path) {
        Ok(located) => located,
        Err(LocateError::Open(err)) => return Outcome::failed("open", errno_of(&err)),
        Err(LocateError::Fstat(err)) => return Outcome::failed("fstat", errno_of(&err)),
    };
    if let Err(err) = Source::file_type_of(located.metadata()) {
        return Outcome::Rejected(err);
    }
    let open = match access {
        Access::ReadOnly => "open read-only",
        Access::ReadWrite => "open read-write",
    };
    let file = match located.reopen(access == Access::ReadWrite) {
        Ok(file) => file,
        Err(ReopenError::Open(err)) => return Outcome::failed(open, errno_of(&err)),
        Err(ReopenError::NoProc(err)) => {
            let errno = errno_of(&err);
            let message = format!(
                "{open}: /proc/self/fd: {errno} (without procfs the file judged cannot be \
                 reopened, and the path is not opened a second time)"
            );
            return Outcome::Failed { errno, message };
        }
        Err(ReopenError::Changed) => {
            return Outcome::Failed {
                errno: Errno::from_raw(libc::EAGAIN),
                message: format!("{open}: the file opened is not the file judged"),
            };
        }
    };
    match Source::try_from(&file) {
        Ok(source) => Outcome::Created(Box::new(Report::new(&source, access))),
        Err(err) => Outcome::Rejected(err),
    }
}
