//! Fuzz target `from_fd_scripted`: an `Arbitrary` script of kernel answers (fcntl flags or
//! errno; fstat mode/rdev/dev/ino/size/ctime or errno, at creation and later; the birth time
//! (statx) or errno; the `subsystem` readlink bytes or errno; how deep below `/sys` the
//! device's directory is; the page size; a Device DAX's sysfs `size`, `align` and
//! `dax_region/align` files, which may be FIFOs) and a sequence of operations — `from_fd`, `from_anon`, `size`,
//! `alignment`, `get_fd`, `delete` — on sources allocated through a randomly failing
//! allocator wrapped in `CountingAlloc`.
//!
//! Every result is compared with a small reference model of SPEC §2–§5 written here (the
//! decision order of `pmem2_source_from_fd`, the Device DAX check, the size and alignment
//! rules, allocation after classification). The model does not call the crate's parsers or
//! helpers: numbers, link targets and device numbers are decoded here. Also checked: the
//! syscalls `from_fd` makes (kind, order, arguments), that every sysfs file opened is closed
//! (`open_descriptors() == 0` after each operation), that a failed allocation is exactly
//! `-ENOMEM`, that a double delete is harmless, and at the end that allocations ==
//! deallocations.
//!
//! With `FUZZ_OUTCOMES=<file>` set, each run appends the outcomes it produced (`from_fd-ok-devdax`,
//! `size-PMEM2_E_INVALID_SIZE_FORMAT`, …) to that file, one a line: `scripts/fuzz-seeds.sh`
//! uses it to pick the committed seeds, the shortest input for each outcome.

#![no_main]

mod models;

use std::cell::Cell;
use std::collections::BTreeSet;
use std::io::Write;
use std::ptr::NonNull;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use pmem2_source::sys::{FileStat, Timestamp};
use pmem2_source::sys::scripted::{
    Call, FileScript, MAX_SCRIPTED_FILE, MAX_SCRIPTED_LINK, ScriptedKernel,
};
use pmem2_source::sysfs::{ATTRIBUTE_CAPACITY, LINK_TARGET_CAPACITY};
use pmem2_source::{
    CountingAlloc, Errno, Error, FileType, Global, Source, SourceAlloc, SourceBox, SourceKind,
    StaticPool, codes,
};

// ---------------------------------------------------------------------------------------
// The script.

/// An errno the kernel may answer with: common ones by name, or any value in 1..=4095.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum ErrnoPick {
    Ebadf,
    Enoent,
    Eacces,
    Einval,
    Eintr,
    Eio,
    Enomem,
    Eoverflow,
    Eloop,
    Enosys,
    Eperm,
    Other(u16),
}

impl ErrnoPick {
    /// The raw number, computed here (x86_64/aarch64/riscv64 generic numbers).
    fn raw(self) -> i32 {
        match self {
            ErrnoPick::Ebadf => 9,
            ErrnoPick::Enoent => 2,
            ErrnoPick::Eacces => 13,
            ErrnoPick::Einval => 22,
            ErrnoPick::Eintr => 4,
            ErrnoPick::Eio => 5,
            ErrnoPick::Enomem => 12,
            ErrnoPick::Eoverflow => 75,
            ErrnoPick::Eloop => 40,
            ErrnoPick::Enosys => 38,
            ErrnoPick::Eperm => 1,
            ErrnoPick::Other(n) => 1 + i32::from(n % 4095),
        }
    }
}

/// `fcntl(F_GETFL)` flags: an access mode with or without `O_PATH`, or any bits.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum FlagsPick {
    Mode { mode: u8, path: bool, other: u16 },
    Raw(u32),
}

const O_ACCMODE: u32 = 0o3;
const O_WRONLY: u32 = 0o1;
const O_PATH: u32 = 0o10_000_000;

impl FlagsPick {
    fn flags(self) -> u32 {
        match self {
            FlagsPick::Mode { mode, path, other } => {
                // `other`: O_APPEND, O_NONBLOCK, O_LARGEFILE, O_CLOEXEC-like bits.
                u32::from(mode & 3) | if path { O_PATH } else { 0 } | (u32::from(other) << 10)
            }
            FlagsPick::Raw(flags) => flags,
        }
    }
}

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFIFO: u32 = 0o010_000;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum ModePick {
    Regular(u16),
    Directory,
    CharDevice(u16),
    Raw(u32),
}

impl ModePick {
    fn mode(self) -> u32 {
        match self {
            ModePick::Regular(perm) => S_IFREG | u32::from(perm & 0o7777),
            ModePick::Directory => S_IFDIR | 0o755,
            ModePick::CharDevice(perm) => S_IFCHR | u32::from(perm & 0o7777),
            ModePick::Raw(mode) => mode,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum RdevPick {
    /// 252:0, a typical Device DAX.
    Dax,
    /// 1:3, `/dev/null`.
    Null,
    Raw(u64),
}

impl RdevPick {
    fn rdev(self) -> u64 {
        match self {
            RdevPick::Dax => 0xfc00,
            RdevPick::Null => 0x103,
            RdevPick::Raw(rdev) => rdev,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct StatPick {
    mode: ModePick,
    rdev: RdevPick,
    dev: u8,
    ino: u8,
    size: i64,
    /// `st_ctime`, in whole seconds (few values, so that equal times are common).
    ctime: u8,
}

/// A time in whole seconds.
fn seconds(sec: u8) -> Timestamp {
    Timestamp {
        sec: i64::from(sec),
        nsec: 0,
    }
}

impl StatPick {
    fn stat(self) -> FileStat {
        FileStat {
            mode: self.mode.mode(),
            rdev: self.rdev.rdev(),
            dev: u64::from(self.dev),
            ino: u64::from(self.ino),
            size: self.size,
            ctime: seconds(self.ctime),
        }
    }
}

/// What `fstat` says when a query asks again, relative to what it said at creation.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum LaterStat {
    Same,
    NewSize(i64),
    OtherInode(u8),
    OtherDevice(u8),
    /// Same device and inode, another `st_ctime`: the file changed, or another file has its
    /// inode number (the birth time tells).
    Touched(u8),
    Fails(ErrnoPick),
    Replaced(StatPick),
}

/// The `subsystem` link target.
#[derive(Arbitrary, Debug, Clone)]
enum LinkPick {
    BusDax,
    ClassMem,
    /// `pad` filler bytes, then `tail`: reaches the buffer's edge.
    Padded {
        pad: u16,
        tail: Vec<u8>,
    },
    Bytes(Vec<u8>),
}

impl LinkPick {
    fn bytes(&self) -> Vec<u8> {
        let mut bytes = match self {
            LinkPick::BusDax => b"../../../../bus/dax".to_vec(),
            LinkPick::ClassMem => b"../../../../class/mem".to_vec(),
            LinkPick::Padded { pad, tail } => {
                let mut bytes = vec![b'x'; usize::from(*pad % 600)];
                bytes.extend_from_slice(tail);
                bytes
            }
            LinkPick::Bytes(bytes) => bytes.clone(),
        };
        bytes.truncate(MAX_SCRIPTED_LINK);
        bytes
    }
}

/// A scripted sysfs file.
#[derive(Arbitrary, Debug, Clone)]
enum FilePick {
    Absent,
    /// `"{n}\n"`.
    Number(u64),
    /// `"{1 << shift}\n"`.
    PowerOfTwo(u8),
    Contents(Vec<u8>),
    OpenFails(ErrnoPick),
    ReadFails(ErrnoPick),
    Fifo,
}

/// What the model sees of a file: absent, fails to open/read, not a regular file, or these
/// bytes.
enum FileModel {
    Absent,
    OpenFails(i32),
    ReadFails(i32),
    Fifo,
    Contents(Vec<u8>),
}

impl FilePick {
    fn model(&self) -> FileModel {
        match self {
            FilePick::Absent => FileModel::Absent,
            FilePick::Number(n) => FileModel::Contents(format!("{n}\n").into_bytes()),
            FilePick::PowerOfTwo(shift) => {
                FileModel::Contents(format!("{}\n", 1u64 << (shift % 64)).into_bytes())
            }
            FilePick::Contents(bytes) => {
                FileModel::Contents(bytes[..bytes.len().min(MAX_SCRIPTED_FILE)].to_vec())
            }
            FilePick::OpenFails(e) => FileModel::OpenFails(e.raw()),
            FilePick::ReadFails(e) => FileModel::ReadFails(e.raw()),
            FilePick::Fifo => FileModel::Fifo,
        }
    }

    fn script(&self) -> Option<FileScript> {
        Some(match self.model() {
            FileModel::Absent => return None,
            FileModel::OpenFails(e) => FileScript::OpenFails(Errno::from_raw(e)),
            FileModel::ReadFails(e) => FileScript::ReadFails(Errno::from_raw(e)),
            FileModel::Fifo => FileScript::Special(S_IFIFO | 0o644),
            FileModel::Contents(bytes) => {
                FileScript::Contents(heapless::Vec::from_slice(&bytes).expect("fits"))
            }
        })
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum PagePick {
    Page4k,
    Huge2m,
    Raw(usize),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum FdPick {
    Small(u8),
    Negative(u32),
    Raw(i32),
}

impl FdPick {
    fn fd(self) -> i32 {
        match self {
            FdPick::Small(fd) => i32::from(fd),
            FdPick::Negative(n) => -1 - (n % (1 << 31)) as i32,
            FdPick::Raw(fd) => fd,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Op {
    FromFd(FdPick),
    Anon(usize),
    Size { slot: u8, later: bool },
    Alignment { slot: u8 },
    GetFd { slot: u8 },
    Delete { slot: u8 },
}

#[derive(Arbitrary, Debug)]
struct Script {
    fcntl: Result<FlagsPick, ErrnoPick>,
    stat: Result<StatPick, ErrnoPick>,
    later_stat: LaterStat,
    /// The birth time (statx) in whole seconds, or the errno.
    birth: Result<Option<u8>, ErrnoPick>,
    readlink: Result<LinkPick, ErrnoPick>,
    /// `/sys/dev/char/M:m` links this many directories below `/sys` (`n % 13`; 12: a link
    /// that climbs out of `/sys`); `None`: not a link.
    device_depth: Option<u8>,
    page_size: Result<PagePick, ErrnoPick>,
    size_file: FilePick,
    align_file: FilePick,
    /// `dax_region/align` files `1 + ups % 10` directories up (9 and 10 are beyond the
    /// crate's search and must be ignored; the first entry for a path wins).
    region_aligns: Vec<(u8, FilePick)>,
    /// Inner allocator: a pool of 4 slots (exhaustion is `-ENOMEM` too) or the global heap.
    pool: bool,
    /// Bit `n % 64` set: allocation attempt `n` fails.
    alloc_failures: u64,
    ops: Vec<Op>,
}

// ---------------------------------------------------------------------------------------
// The kernel built from a script.

/// glibc's `major()` and `minor()` (`sys/sysmacros.h`).
fn major_minor(rdev: u64) -> (u64, u64) {
    let major = ((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0x0000_0fff);
    let minor = ((rdev >> 12) & 0xffff_ff00) | (rdev & 0x0000_00ff);
    (major, minor)
}

fn char_dir(rdev: u64) -> String {
    let (major, minor) = major_minor(rdev);
    format!("/sys/dev/char/{major}:{minor}")
}

fn region_align_path(rdev: u64, ups: u8) -> String {
    format!(
        "{}/{}dax_region/align",
        char_dir(rdev),
        "../".repeat(ups.into())
    )
}

impl Script {
    fn fcntl_answer(&self) -> Result<u32, i32> {
        self.fcntl.map(FlagsPick::flags).map_err(ErrnoPick::raw)
    }

    fn creation_stat(&self) -> Result<FileStat, i32> {
        self.stat.map(StatPick::stat).map_err(ErrnoPick::raw)
    }

    fn later_stat(&self) -> Result<FileStat, i32> {
        let created = self.creation_stat();
        match self.later_stat {
            LaterStat::Same => created,
            LaterStat::NewSize(size) => created.map(|stat| FileStat { size, ..stat }),
            LaterStat::OtherInode(ino) => created.map(|stat| FileStat {
                ino: u64::from(ino),
                ..stat
            }),
            LaterStat::OtherDevice(dev) => created.map(|stat| FileStat {
                dev: u64::from(dev),
                ..stat
            }),
            LaterStat::Touched(ctime) => created.map(|stat| FileStat {
                ctime: seconds(ctime),
                ..stat
            }),
            LaterStat::Fails(errno) => Err(errno.raw()),
            LaterStat::Replaced(stat) => Ok(stat.stat()),
        }
    }

    fn birth_answer(&self) -> Result<Option<u8>, i32> {
        self.birth.map_err(ErrnoPick::raw)
    }

    /// The target of the device's `/sys/dev/char/M:m` link, if it is one.
    fn device_link(&self) -> Option<String> {
        let depth = self.device_depth? % 13;
        Some(if depth == 12 {
            "../../../escaped/dax0.0".to_owned()
        } else {
            format!("../..{}", "/d".repeat(depth.into()))
        })
    }

    /// How many directories below `/sys` the device's directory is: from the link, counted
    /// here; a plain directory `/sys/dev/char/M:m` is 3 below.
    fn depth_below_sys(&self) -> u8 {
        match self.device_depth {
            None => 3,
            Some(depth) if depth % 13 == 12 => 0,
            Some(depth) => depth % 13,
        }
    }

    fn link_answer(&self) -> Result<Vec<u8>, i32> {
        self.readlink
            .as_ref()
            .map(LinkPick::bytes)
            .map_err(|e| e.raw())
    }

    fn page_answer(&self) -> Result<usize, i32> {
        self.page_size
            .map(|page| match page {
                PagePick::Page4k => 4096,
                PagePick::Huge2m => 2 << 20,
                PagePick::Raw(size) => size,
            })
            .map_err(ErrnoPick::raw)
    }

    /// The device whose sysfs files are scripted: the one a source made from this script
    /// records.
    fn rdev(&self) -> u64 {
        self.creation_stat().map_or(0, |stat| stat.rdev)
    }

    /// The scripted files, path and script, in the order they are registered (the kernel
    /// answers from the first entry for a path, and so does the model).
    fn files(&self) -> Vec<(String, &FilePick)> {
        let rdev = self.rdev();
        let mut files = vec![
            (format!("{}/size", char_dir(rdev)), &self.size_file),
            (format!("{}/align", char_dir(rdev)), &self.align_file),
        ];
        for (ups, file) in self.region_aligns.iter().take(16) {
            files.push((region_align_path(rdev, 1 + ups % 10), file));
        }
        files
    }

    /// The file at `path` as the model sees it: the first scripted entry, or absent.
    fn file(&self, path: &str) -> FileModel {
        self.files()
            .into_iter()
            .find(|(file, pick)| file == path && !matches!(pick, FilePick::Absent))
            .map_or(FileModel::Absent, |(_, pick)| pick.model())
    }

    /// A fresh kernel answering from this script; `later` selects the later fstat answer.
    fn kernel(&self, later: bool) -> ScriptedKernel {
        let errno = Errno::from_raw;
        let stat = if later {
            self.later_stat()
        } else {
            self.creation_stat()
        };
        let link = self.link_answer();
        let mut kernel = ScriptedKernel::regular_file()
            .with_fcntl(self.fcntl_answer().map_err(errno))
            .with_fstat(stat.map_err(errno))
            .with_birth_time(
                self.birth_answer()
                    .map(|birth| birth.map(seconds))
                    .map_err(errno),
            )
            .with_readlink(link.as_deref().map_err(|&e| errno(e)))
            .with_page_size(self.page_answer().map_err(errno));
        if let Some(target) = self.device_link() {
            kernel = kernel.with_link(&char_dir(self.rdev()), Ok(target.as_bytes()));
        }
        for (path, pick) in self.files() {
            if let Some(script) = pick.script() {
                kernel = kernel.with_file_script(&path, script);
            }
        }
        kernel
    }
}

// ---------------------------------------------------------------------------------------
// The reference model (SPEC §2–§5).

const EBADF: i32 = 9;
const ENOENT: i32 = 2;
const ENOMEM: i32 = 12;
const EINVAL: i32 = 22;
const ENOSYS: i32 = 38;
const EPERM: i32 = 1;

/// What a successfully created fd source holds.
#[derive(Clone, Copy, Debug, PartialEq)]
struct FdFacts {
    fd: i32,
    file_type: FileType,
    rdev: u64,
    dev: u64,
    ino: u64,
    ctime: Timestamp,
}

/// What the model knows about a live source.
#[derive(Clone, Copy, Debug)]
enum Model {
    Anon(usize),
    Fd(FdFacts),
}

/// A syscall errno as the code SPEC §2 gives it: EBADF is `PMEM2_E_INVALID_FILE_HANDLE`.
fn fd_errno_code(errno: i32) -> i32 {
    if errno == EBADF {
        codes::PMEM2_E_INVALID_FILE_HANDLE
    } else {
        -errno
    }
}

/// An unsigned sysfs number as `size` and `align` are read: the documented limit added to the
/// model, a file of `ATTRIBUTE_CAPACITY` bytes or more fills the read buffer and is rejected.
fn sysfs_number(text: &[u8]) -> Option<u64> {
    if text.len() >= ATTRIBUTE_CAPACITY {
        return None;
    }
    models::unsigned_number(text)
}

/// The syscalls `from_fd` is expected to make, the step that decides, and the result.
struct FromFdModel {
    calls: Vec<Call>,
    step: &'static str,
    result: Result<FdFacts, i32>,
}

/// SPEC §2–§3, in order.
fn model_from_fd(script: &Script, fd: i32) -> FromFdModel {
    let mut calls = Vec::new();
    let decided = (|| {
        if fd < 0 {
            return Err(("negative-fd", codes::PMEM2_E_INVALID_FILE_HANDLE));
        }
        calls.push(Call::FcntlGetfl { fd });
        let flags = script
            .fcntl_answer()
            .map_err(|errno| ("fcntl", fd_errno_code(errno)))?;
        let mode = flags & O_ACCMODE;
        if mode == O_WRONLY || mode == 3 || flags & O_PATH != 0 {
            return Err(("access-mode", codes::PMEM2_E_INVALID_FILE_HANDLE));
        }
        calls.push(Call::Fstat { fd });
        let stat = script
            .creation_stat()
            .map_err(|errno| ("fstat", fd_errno_code(errno)))?;
        let (step, file_type) = match stat.mode & S_IFMT {
            S_IFREG => ("regular", FileType::Regular),
            S_IFDIR => return Err(("directory", codes::PMEM2_E_INVALID_FILE_TYPE)),
            S_IFCHR => {
                let path = format!("{}/subsystem", char_dir(stat.rdev));
                calls.push(Call::Readlink {
                    path: heapless::String::try_from(path.as_str()).expect("short path"),
                    buffer_len: LINK_TARGET_CAPACITY,
                });
                let target = script.link_answer().map_err(|errno| match errno {
                    // `subsystem` is not a link: its own last component is not `dax`.
                    EINVAL => ("not-a-link", codes::PMEM2_E_INVALID_FILE_TYPE),
                    errno => ("readlink", -errno),
                })?;
                // The kernel copies what fits; a full buffer may be cut and is never DAX.
                if target.len() >= LINK_TARGET_CAPACITY {
                    return Err(("link-fills-buffer", codes::PMEM2_E_INVALID_FILE_TYPE));
                }
                if models::last_component(&target) != b"dax" {
                    return Err(("not-dax", codes::PMEM2_E_INVALID_FILE_TYPE));
                }
                ("devdax", FileType::DeviceDax)
            }
            _ => return Err(("other-type", codes::PMEM2_E_INVALID_FILE_TYPE)),
        };
        let facts = FdFacts {
            fd,
            file_type,
            rdev: stat.rdev,
            dev: stat.dev,
            ino: stat.ino,
            ctime: stat.ctime,
        };
        Ok((step, facts))
    })();
    let (step, result) = match decided {
        Ok((step, facts)) => (step, Ok(facts)),
        Err((step, code)) => (step, Err(code)),
    };
    FromFdModel {
        calls,
        step,
        result,
    }
}

/// Reads a sysfs file as the model: `Ok(None)` if it does not exist (ENOENT on open) and
/// `optional`, its bytes, or the `-errno` code.
fn model_read(script: &Script, path: &str, optional: bool) -> Result<Option<Vec<u8>>, i32> {
    match script.file(path) {
        FileModel::Absent if optional => Ok(None),
        FileModel::Absent => Err(-ENOENT),
        FileModel::OpenFails(ENOENT) if optional => Ok(None),
        FileModel::OpenFails(errno) | FileModel::ReadFails(errno) => Err(-errno),
        FileModel::Fifo => Err(-EINVAL),
        FileModel::Contents(bytes) => Ok(Some(bytes)),
    }
}

/// SPEC §5 `pmem2_source_size`, and the sysfs files it opens, in order.
fn model_size(script: &Script, source: Model, later: bool) -> (Vec<String>, Result<u64, i32>) {
    let facts = match source {
        Model::Anon(size) => return (Vec::new(), Ok(size as u64)),
        Model::Fd(facts) => facts,
    };
    let stat = if later {
        script.later_stat()
    } else {
        script.creation_stat()
    };
    let stat = match stat {
        Ok(stat) => stat,
        Err(errno) => return (Vec::new(), Err(fd_errno_code(errno))),
    };
    if (stat.dev, stat.ino) != (facts.dev, facts.ino) {
        return (Vec::new(), Err(codes::PMEM2_E_INVALID_FILE_HANDLE));
    }
    // The same inode number with another st_ctime: a file born after the recorded st_ctime
    // is another one; no birth time (ENOSYS, EPERM, none recorded) is taken as the same.
    if stat.ctime != facts.ctime {
        match script.birth_answer() {
            Ok(Some(birth)) if seconds(birth) > facts.ctime => {
                return (Vec::new(), Err(codes::PMEM2_E_INVALID_FILE_HANDLE));
            }
            Ok(_) | Err(ENOSYS | EPERM) => {}
            Err(errno) => return (Vec::new(), Err(fd_errno_code(errno))),
        }
    }
    match facts.file_type {
        FileType::Regular => (
            Vec::new(),
            u64::try_from(stat.size).map_err(|_| codes::PMEM2_E_INVALID_FILE_HANDLE),
        ),
        FileType::DeviceDax => {
            let path = format!("{}/size", char_dir(facts.rdev));
            let result = model_read(script, &path, false).and_then(|bytes| {
                sysfs_number(&bytes.unwrap_or_default()).ok_or(codes::PMEM2_E_INVALID_SIZE_FORMAT)
            });
            (vec![path], result)
        }
    }
}

/// SPEC §5 `pmem2_source_alignment`, and the sysfs files it opens, in order.
fn model_alignment(script: &Script, source: Model) -> (Vec<String>, Result<usize, i32>) {
    let power_of_two = |value: u64| {
        if value.is_power_of_two() {
            usize::try_from(value).map_err(|_| codes::PMEM2_E_INVALID_ALIGNMENT_VALUE)
        } else {
            Err(codes::PMEM2_E_INVALID_ALIGNMENT_VALUE)
        }
    };
    let rdev = match source {
        Model::Fd(FdFacts {
            file_type: FileType::DeviceDax,
            rdev,
            ..
        }) => rdev,
        _ => {
            let result = script
                .page_answer()
                .map_err(|errno| -errno)
                .and_then(|page| power_of_two(page as u64));
            return (Vec::new(), result);
        }
    };
    // The device's own `align`, then `dax_region/align` 1..=8 directories up, but never at
    // `/sys` or above it.
    let highest = script.depth_below_sys().saturating_sub(1).min(8);
    let candidates = std::iter::once(format!("{}/align", char_dir(rdev)))
        .chain((1..=highest).map(|ups| region_align_path(rdev, ups)));
    let mut opened = Vec::new();
    for path in candidates {
        opened.push(path.clone());
        match model_read(script, &path, true) {
            Err(code) => return (opened, Err(code)),
            Ok(None) => continue,
            Ok(Some(bytes)) => {
                let result = sysfs_number(&bytes)
                    .ok_or(codes::PMEM2_E_INVALID_ALIGNMENT_FORMAT)
                    .and_then(power_of_two);
                return (opened, result);
            }
        }
    }
    (opened, Err(-ENOENT))
}

// ---------------------------------------------------------------------------------------
// The randomly failing allocator.

/// Fails allocation attempt `n` when bit `n % 64` of `failures` is set; otherwise allocates
/// from a pool of 4 slots or the global heap.
struct FuzzAlloc {
    failures: u64,
    attempts: Cell<u32>,
    pool: Option<StaticPool<4>>,
}

// SAFETY: memory comes from `StaticPool` or `Global` (both `SourceAlloc`s) and goes back to
// the same one; failing an allocation hands out nothing.
unsafe impl SourceAlloc for FuzzAlloc {
    fn allocate(&self) -> Option<NonNull<Source>> {
        let attempt = self.attempts.get();
        self.attempts.set(attempt + 1);
        if self.failures >> (attempt % 64) & 1 == 1 {
            return None;
        }
        match &self.pool {
            Some(pool) => pool.allocate(),
            None => Global.allocate(),
        }
    }

    unsafe fn deallocate(&self, ptr: NonNull<Source>) {
        match &self.pool {
            // SAFETY: `ptr` came from this pool's `allocate` (caller's guarantee).
            Some(pool) => unsafe { pool.deallocate(ptr) },
            // SAFETY: `ptr` came from `Global::allocate` (caller's guarantee).
            None => unsafe { Global.deallocate(ptr) },
        }
    }
}

// ---------------------------------------------------------------------------------------
// Running a script.

/// A source made by the script (`None` once deleted) and what the model knows about it.
type Slot<'a> = (Option<SourceBox<&'a CountingAlloc<FuzzAlloc>>>, Model);

/// An outcome's name: `ok`, the `PMEM2_E_*` name, `ENOENT` and `ENOMEM` (which the SPEC gives
/// specific meanings), or `errno` for any other `-errno` (so that seeds are not picked per
/// errno number).
fn tag_result<T>(result: &Result<T, i32>) -> String {
    match *result {
        Ok(_) => "ok".to_owned(),
        Err(code) if code == -ENOENT || code == -ENOMEM || code <= -100_000 => {
            codes::name(code).map_or_else(|| format!("code{code}"), str::to_owned)
        }
        Err(_) => "errno".to_owned(),
    }
}

fn tag<T>(op: &str, result: &Result<T, i32>, detail: &str) -> String {
    format!("{op}{detail}-{}", tag_result(result))
}

/// An error's code, after checking that it has a message.
fn checked_code(err: &Error) -> i32 {
    assert!(!err.to_string().is_empty(), "{err:?} has no message");
    err.code()
}

fn run(script: &Script, outcomes: &mut BTreeSet<String>) {
    let counting = CountingAlloc::new(FuzzAlloc {
        failures: script.alloc_failures,
        attempts: Cell::new(0),
        pool: script.pool.then(StaticPool::new),
    });
    let (mut allocations, mut failures, mut live) = (0usize, 0usize, 0usize);
    let mut attempts = 0u32;
    let mut slots: Vec<Slot<'_>> = Vec::new();
    // A slot index from the script: any slot, deleted ones included (they are skipped).
    let pick = |slots: &Vec<Slot<'_>>, slot: u8| -> Option<usize> {
        (!slots.is_empty()).then(|| usize::from(slot) % slots.len())
    };
    // Allocation, as the model sees it: attempt n fails by the script's bit n, or because
    // the pool is full.
    let mut model_allocate = |live: usize| {
        let attempt = attempts;
        attempts += 1;
        script.alloc_failures >> (attempt % 64) & 1 == 0 && !(script.pool && live == 4)
    };

    for op in script.ops.iter().take(32) {
        match *op {
            Op::FromFd(fd) => {
                let fd = fd.fd();
                let kernel = script.kernel(false);
                let FromFdModel {
                    calls,
                    step,
                    result,
                } = model_from_fd(script, fd);
                let got = SourceBox::from_fd_in(&kernel, fd, &counting);
                assert_eq!(kernel.calls().as_slice(), calls, "from_fd({fd})");
                assert_eq!(kernel.open_descriptors(), 0);
                let mut allocation_failed = false;
                let expected = result.and_then(|facts| {
                    if model_allocate(live) {
                        allocations += 1;
                        live += 1;
                        Ok(facts)
                    } else {
                        failures += 1;
                        allocation_failed = true;
                        Err(-ENOMEM)
                    }
                });
                let step = if allocation_failed { "alloc" } else { step };
                outcomes.insert(format!("from_fd-{step}-{}", tag_result(&expected)));
                match (got, expected) {
                    (Ok(source), Ok(facts)) => {
                        assert_eq!(source.kind(), SourceKind::Fd);
                        assert_eq!(source.fd(), Ok(facts.fd));
                        assert_eq!(source.file_type(), Some(facts.file_type));
                        assert_eq!(source.rdev().map(|d| d.raw()), Some(facts.rdev));
                        assert_eq!(source.dev().map(|d| d.raw()), Some(facts.dev));
                        assert_eq!(source.ino(), Some(facts.ino));
                        assert_eq!(source.anon_size(), None);
                        slots.push((Some(source), Model::Fd(facts)));
                    }
                    (Err(err), Err(code)) => {
                        assert_eq!(checked_code(&err), code, "from_fd({fd}): {err:?}");
                        if allocation_failed {
                            assert_eq!(err, Error::NoMemory, "a failed allocation is -ENOMEM");
                        }
                    }
                    (got, expected) => panic!("from_fd({fd}): got {got:?}, expected {expected:?}"),
                }
            }
            Op::Anon(size) => {
                let got = SourceBox::anon_in(size, &counting);
                let expected = if model_allocate(live) {
                    allocations += 1;
                    live += 1;
                    Ok(())
                } else {
                    failures += 1;
                    Err(-ENOMEM)
                };
                outcomes.insert(tag("anon", &expected, ""));
                match (got, expected) {
                    (Ok(source), Ok(())) => {
                        assert_eq!(source.kind(), SourceKind::Anonymous);
                        assert_eq!(source.anon_size(), Some(size));
                        assert_eq!(source.file_type(), None);
                        slots.push((Some(source), Model::Anon(size)));
                    }
                    (Err(err), Err(code)) => {
                        assert_eq!(err, Error::NoMemory);
                        assert_eq!(checked_code(&err), code);
                    }
                    (got, expected) => panic!("anon({size}): got {got:?}, expected {expected:?}"),
                }
            }
            Op::Size { slot, later } => {
                let Some(index) = pick(&slots, slot) else {
                    continue;
                };
                let (Some(source), model) = &slots[index] else {
                    continue;
                };
                let kernel = script.kernel(later);
                let got = source.size_with(&kernel).map_err(|e| checked_code(&e));
                let (opened, expected) = model_size(script, *model, later);
                assert_eq!(got, expected, "size of {model:?} (later: {later})");
                assert_eq!(opened_paths(&kernel), opened, "size of {model:?}");
                assert_eq!(kernel.open_descriptors(), 0, "size leaked a sysfs fd");
                outcomes.insert(tag("size", &expected, kind_detail(*model)));
            }
            Op::Alignment { slot } => {
                let Some(index) = pick(&slots, slot) else {
                    continue;
                };
                let (Some(source), model) = &slots[index] else {
                    continue;
                };
                let kernel = script.kernel(false);
                let got = source.alignment_with(&kernel).map_err(|e| checked_code(&e));
                let (opened, expected) = model_alignment(script, *model);
                assert_eq!(got, expected, "alignment of {model:?}");
                assert_eq!(opened_paths(&kernel), opened, "alignment of {model:?}");
                assert_eq!(kernel.open_descriptors(), 0, "alignment leaked a sysfs fd");
                let detail = match &opened[..] {
                    [] => kind_detail(*model),
                    [_] => "-own",
                    _ => "-region",
                };
                outcomes.insert(tag("alignment", &expected, detail));
            }
            Op::GetFd { slot } => {
                let Some(index) = pick(&slots, slot) else {
                    continue;
                };
                let (Some(source), model) = &slots[index] else {
                    continue;
                };
                let got = source.fd().map_err(|e| checked_code(&e));
                let expected = match model {
                    Model::Fd(facts) => Ok(facts.fd),
                    Model::Anon(_) => Err(codes::PMEM2_E_FILE_DESCRIPTOR_NOT_SET),
                };
                assert_eq!(got, expected, "get_fd of {model:?}");
                outcomes.insert(tag("get_fd", &expected, kind_detail(*model)));
            }
            Op::Delete { slot } => {
                let Some(index) = pick(&slots, slot) else {
                    continue;
                };
                let (boxed, _) = &mut slots[index];
                let was_live = boxed.is_some();
                SourceBox::delete(boxed);
                SourceBox::delete(boxed);
                assert!(boxed.is_none());
                if was_live {
                    live -= 1;
                }
                assert_eq!(counting.live(), live, "after delete");
                outcomes.insert("delete".to_owned());
            }
        }
        assert_eq!(counting.allocations(), allocations);
        assert_eq!(counting.failures(), failures);
        assert_eq!(counting.live(), live);
    }
    drop(slots);
    assert_eq!(counting.allocations(), counting.deallocations(), "leak");
    if let Some(pool) = &counting.inner().pool {
        assert_eq!(pool.in_use(), 0, "pool slots still in use");
    }
}

fn kind_detail(model: Model) -> &'static str {
    match model {
        Model::Anon(_) => "-anon",
        Model::Fd(FdFacts {
            file_type: FileType::Regular,
            ..
        }) => "-regular",
        Model::Fd(_) => "-devdax",
    }
}

/// The paths of the sysfs files the kernel was asked to open, in order.
fn opened_paths(kernel: &ScriptedKernel) -> Vec<String> {
    kernel
        .calls()
        .iter()
        .filter_map(|call| match call {
            Call::Open { path } => Some(path.as_str().to_owned()),
            _ => None,
        })
        .collect()
}

/// Where to append the outcomes of each run (`FUZZ_OUTCOMES`), if anywhere.
fn outcomes_file() -> Option<&'static str> {
    static PATH: OnceLock<Option<String>> = OnceLock::new();
    PATH.get_or_init(|| std::env::var("FUZZ_OUTCOMES").ok())
        .as_deref()
}

fuzz_target!(|script: Script| {
    let mut outcomes = BTreeSet::new();
    run(&script, &mut outcomes);
    if let Some(path) = outcomes_file() {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("open FUZZ_OUTCOMES");
        for outcome in &outcomes {
            writeln!(file, "{outcome}").expect("write FUZZ_OUTCOMES");
        }
    }
});
