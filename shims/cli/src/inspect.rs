//! Opening a path, creating a source from it, and asking the source what it is.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use pmem2_source_std::{DeviceNumber, Errno, Error, FileType, Source, codes};

/// How a path was opened.
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
    /// `open` failed both read-write and read-only (the errno of the read-only try).
    OpenFailed { errno: Errno },
    /// The source could not be created.
    Rejected(Error),
    /// A source was created; its queries may still have failed.
    Created(Box<Report>),
}

impl Outcome {
    /// A source was created and every query answered (an unknown NUMA node is an answer).
    pub fn usable(&self) -> bool {
        match self {
            Outcome::Created(report) => report.all_answered(),
            Outcome::OpenFailed { .. } | Outcome::Rejected(_) => false,
        }
    }
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

fn open(path: &Path) -> io::Result<(File, Access)> {
    let mut options = OpenOptions::new();
    // Never block on a FIFO, never become the controlling terminal of a tty.
    options
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    match options.clone().write(true).open(path) {
        Ok(file) => Ok((file, Access::ReadWrite)),
        Err(_) => options.open(path).map(|file| (file, Access::ReadOnly)),
    }
}

/// Opens `path`, creates a source from the descriptor as `pmem2_source_from_fd` would, and
/// queries it.
pub fn inspect(path: &Path) -> Outcome {
    let (file, access) = match open(path) {
        Ok(opened) => opened,
        Err(err) => {
            let errno = Errno::from_raw(err.raw_os_error().unwrap_or(libc::EINVAL));
            return Outcome::OpenFailed { errno };
        }
    };
    match Source::try_from(&file) {
        Ok(source) => Outcome::Created(Box::new(Report::new(&source, access))),
        Err(err) => Outcome::Rejected(err),
    }
}
