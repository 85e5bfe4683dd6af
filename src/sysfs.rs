//! The sysfs side of sources: device numbers, `/sys/dev/{char,block}/M:m/…` paths in fixed
//! buffers, the decision over a `subsystem` link target, and reading and parsing attributes
//! (`size`, `align`, `numa_node`, …).
//!
//! No allocation and no panics. Paths are formatted into `heapless::String`s on the stack,
//! the link target is judged from the bytes `readlink` left in a fixed buffer, and attributes
//! are read with open/read/close through [`Syscalls`] into a fixed buffer. The parsers are
//! pure functions (and fuzzing targets).
//!
//! # References
//! - Linux `Documentation/ABI/testing/sysfs-dev` (`/sys/dev/char/<major>:<minor>`)
//! - glibc `sys/sysmacros.h` (`major`, `minor` over a 64-bit `dev_t`)
//! - PMDK `src/libpmem2/pmem2_utils_linux.c` (`pmem2_get_type_from_stat`)

use core::ffi::CStr;
use core::fmt;

use crate::error::Errno;
use crate::sys::Syscalls;
use crate::sys::consts::{S_IFMT, S_IFREG};

/// Size of the buffer a `subsystem` link target is read into. A target that fills it is
/// possibly truncated and is never taken for Device DAX. Real targets are short
/// (`../../../../bus/dax`, `../../../../class/mem`).
pub const LINK_TARGET_CAPACITY: usize = 256;

/// A buffer for one formatted sysfs path and its NUL terminator. The longest path this crate
/// builds is 83 bytes: `/sys/dev/block/4294967295:4294967295/` (37), eight `../` (24),
/// `device/../` (10), `mapping65535` (12); a DIMM attribute path is at most 64. The buffer
/// leaves room to spare.
#[derive(Debug)]
pub struct PathBuffer([u8; 128]);

impl PathBuffer {
    /// An empty buffer, for [`SysfsPath::as_c_str`].
    pub const fn new() -> PathBuffer {
        PathBuffer([0; 128])
    }
}

impl Default for PathBuffer {
    fn default() -> PathBuffer {
        PathBuffer::new()
    }
}

/// Room for an attribute's contents: sysfs numbers and DIMM ids are far shorter. Contents
/// that fill it may have been cut, and are never parsed.
pub const ATTRIBUTE_CAPACITY: usize = 64;

/// A device number (`st_rdev` or `st_dev`), in the 64-bit encoding glibc's `dev_t` uses.
///
/// ```
/// use pmem2_source::DeviceNumber;
///
/// let null = DeviceNumber::from_raw(0x103); // /dev/null is 1:3
/// assert_eq!((null.major(), null.minor()), (1, 3));
/// assert_eq!(null.to_string(), "1:3");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceNumber(u64);

impl DeviceNumber {
    /// Wraps a raw `dev_t` as `fstat` returns it.
    pub const fn from_raw(raw: u64) -> DeviceNumber {
        DeviceNumber(raw)
    }

    /// The raw `dev_t`.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// glibc's `major()`: bits 8–19 and 44–63.
    pub const fn major(self) -> u32 {
        let dev = self.0;
        (((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff)) as u32
    }

    /// glibc's `minor()`: bits 0–7 and 20–43.
    pub const fn minor(self) -> u32 {
        let dev = self.0;
        (((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff)) as u32
    }
}

impl fmt::Debug for DeviceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceNumber({self})")
    }
}

impl fmt::Display for DeviceNumber {
    /// `major:minor`, both unsigned decimal, as sysfs names devices.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major(), self.minor())
    }
}

/// Where a sysfs path starts.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum SysfsRoot {
    /// `/sys/dev/char/M:m`: a character device (Device DAX).
    CharDevice(DeviceNumber),
    /// `/sys/dev/block/M:m`: a block device (the device holding a regular file).
    BlockDevice(DeviceNumber),
    /// `/sys/bus/nd/devices/<name>`: an NVDIMM bus object, e.g. a DIMM (`nmem0`).
    NdDevice(SysfsText),
}

impl fmt::Display for SysfsRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SysfsRoot::CharDevice(device) => write!(f, "/sys/dev/char/{device}"),
            SysfsRoot::BlockDevice(device) => write!(f, "/sys/dev/block/{device}"),
            SysfsRoot::NdDevice(name) => write!(f, "/sys/bus/nd/devices/{name}"),
        }
    }
}

/// How many directories below `/sys` the directory of character device `device` lies, read
/// from its link: `/sys/dev/char/252:0 -> ../../devices/platform/hmem.0/dax0.0` is 4 below.
///
/// A path that goes up from the device (`…/252:0/../../numa_node`) is resolved by the kernel
/// from the link's target, and `..` of `/sys` is `/`: a search of the device's ancestors must
/// take fewer steps than this, or it opens files outside sysfs. An entry that is not a link (a
/// staged tree's plain directory) or cannot be read is the directory `/sys/dev/char/M:m`
/// itself, 3 below; a target that is absolute or climbs out of `/sys` has nothing known below
/// `/sys`, 0.
///
/// ```
/// use pmem2_source::DeviceNumber;
/// use pmem2_source::sys::scripted::ScriptedKernel;
/// use pmem2_source::sysfs::char_device_depth_below_sys;
///
/// let dax = DeviceNumber::from_raw(0xfc00);
/// let hmem = ScriptedKernel::char_device(0xfc00)
///     .with_link("/sys/dev/char/252:0", Ok(b"../../devices/platform/hmem.0/dax0.0"));
/// assert_eq!(char_device_depth_below_sys(&hmem, dax), 4);
/// let staged = ScriptedKernel::char_device(0xfc00); // a plain directory
/// assert_eq!(char_device_depth_below_sys(&staged, dax), 3);
/// ```
pub fn char_device_depth_below_sys<S: Syscalls + ?Sized>(sys: &S, device: DeviceNumber) -> u8 {
    // The device's `subsystem` path, as `from_fd` writes it, cut before `/subsystem`.
    let mut path = PathBuffer::new();
    let Some(end) = SysfsPath::char_subsystem(device)
        .write_c_str(&mut path)
        .ok()
        .map(|subsystem| subsystem.count_bytes() - "/subsystem".len())
    else {
        return 0;
    };
    let Some(c_path) = path.0.get_mut(..=end).and_then(|bytes| {
        *bytes.last_mut()? = 0;
        CStr::from_bytes_with_nul(bytes).ok()
    }) else {
        return 0;
    };
    let mut target = [0u8; LINK_TARGET_CAPACITY];
    match sys.readlink(c_path, &mut target) {
        Ok(len) if len < LINK_TARGET_CAPACITY => {
            // The link lives in /sys/dev/char, 2 below /sys.
            target
                .get(..len)
                .map_or(0, |target| resolved_depth(2, target))
        }
        Ok(_) => 0,
        Err(_) => 3,
    }
}

/// The depth below `/sys` of the relative link `target` found at depth `start`; 0 for an
/// absolute target or one that goes above `/sys` on the way.
fn resolved_depth(start: u8, target: &[u8]) -> u8 {
    if target.first() == Some(&b'/') {
        return 0;
    }
    let mut depth = start;
    for component in target.split(|&byte| byte == b'/') {
        depth = match component {
            b"" | b"." => depth,
            b".." => match depth.checked_sub(1) {
                Some(up) => up,
                None => return 0,
            },
            _ => depth.saturating_add(1),
        };
    }
    depth
}

/// A sysfs path: a [`SysfsRoot`], `../` steps up from it, a fixed prefix, and an attribute
/// name with an optional number (`mapping3`). Kept in parts, not as text, so error values that
/// carry a path stay small.
///
/// `Display` prints the path; [`as_c_str`](Self::as_c_str) puts it, NUL-terminated, into a
/// fixed buffer for a syscall. `..` after the root is resolved by the kernel in the directory
/// the root's link points to, which is how the ancestors of a device are reached without
/// resolving any link ourselves.
///
/// ```
/// use pmem2_source::DeviceNumber;
/// use pmem2_source::sysfs::{SysfsPath, SysfsRoot};
///
/// let dax = SysfsRoot::CharDevice(DeviceNumber::from_raw(0xfc00));
/// let path = SysfsPath::new(dax, "dax_region/align").up(1);
/// assert_eq!(path.to_string(), "/sys/dev/char/252:0/../dax_region/align");
/// ```
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SysfsPath {
    root: SysfsRoot,
    ups: u8,
    prefix: &'static str,
    attribute: &'static str,
    index: Option<u16>,
}

impl SysfsPath {
    /// `root/attribute` (the attribute may contain `/`).
    pub const fn new(root: SysfsRoot, attribute: &'static str) -> SysfsPath {
        SysfsPath {
            root,
            ups: 0,
            prefix: "",
            attribute,
            index: None,
        }
    }

    /// `/sys/dev/char/M:m/subsystem`, the link whose target names a device's subsystem.
    pub const fn char_subsystem(device: DeviceNumber) -> SysfsPath {
        SysfsPath::new(SysfsRoot::CharDevice(device), "subsystem")
    }

    /// The same attribute `ups` directories further up (`../` × `ups` after the root).
    pub fn up(self, ups: u8) -> SysfsPath {
        SysfsPath { ups, ..self }
    }

    /// The same attribute below `prefix` (e.g. `device/`), after the `../` steps.
    pub fn below(self, prefix: &'static str) -> SysfsPath {
        SysfsPath { prefix, ..self }
    }

    /// The attribute name followed by `index` (`mapping` → `mapping3`).
    pub fn indexed(self, index: u16) -> SysfsPath {
        SysfsPath {
            index: Some(index),
            ..self
        }
    }

    /// Where the path starts.
    pub fn root(&self) -> &SysfsRoot {
        &self.root
    }

    /// Writes the path with its NUL terminator into `buf` (a fixed buffer, normally on the
    /// caller's stack) and returns it as a C string for a syscall.
    ///
    /// Fails with `ENAMETOOLONG` if it does not fit, which no path this crate builds can cause
    /// (the unit tests format the longest one).
    ///
    /// The bytes are those `Display` prints, copied in piece by piece rather than through
    /// `core::fmt`, which cost about five times the rest of a character device's `from_fd`,
    /// syscalls aside (benches/compare).
    pub fn as_c_str<'b>(&self, buf: &'b mut PathBuffer) -> Result<&'b CStr, Errno> {
        self.write_c_str(buf)
    }

    /// [`as_c_str`](Self::as_c_str), inlined where the path is known but for its device
    /// number (a character device's `subsystem` link, read by every `from_fd` of one): the
    /// constant pieces fold into stores of known bytes.
    #[inline(always)]
    pub(crate) fn write_c_str<'b>(&self, buf: &'b mut PathBuffer) -> Result<&'b CStr, Errno> {
        let out = &mut buf.0;
        let mut at = match &self.root {
            SysfsRoot::CharDevice(device) => {
                let at = put_bytes(out, 0, b"/sys/dev/char/");
                put_device(out, at, *device)
            }
            SysfsRoot::BlockDevice(device) => {
                let at = put_bytes(out, 0, b"/sys/dev/block/");
                put_device(out, at, *device)
            }
            SysfsRoot::NdDevice(name) => {
                let at = put_bytes(out, 0, b"/sys/bus/nd/devices/");
                name.put_escaped(out, at)
            }
        };
        at = put_bytes(out, at, b"/");
        for _ in 0..self.ups {
            at = put_bytes(out, at, b"../");
        }
        at = put_bytes(out, at, self.prefix.as_bytes());
        at = put_bytes(out, at, self.attribute.as_bytes());
        if let Some(index) = self.index {
            at = put_decimal(out, at, u32::from(index));
        }
        at = put_bytes(out, at, b"\0");
        // A piece that did not fit was not written, and `at` is then past the end.
        out.get(..at)
            .and_then(|bytes| CStr::from_bytes_with_nul(bytes).ok())
            .ok_or(Errno::ENAMETOOLONG)
    }
}

/// Copies `bytes` into `buf` at `at`; returns where they end. (`buf` always has room here:
/// a miss is caught by the final length check of the caller.)
pub(crate) fn put_bytes(buf: &mut [u8], at: usize, bytes: &[u8]) -> usize {
    let end = at + bytes.len();
    if let Some(slot) = buf.get_mut(at..end) {
        slot.copy_from_slice(bytes);
    }
    end
}

/// Writes `value` in decimal into `buf` at `at`; returns where the digits end.
pub(crate) fn put_decimal(buf: &mut [u8], at: usize, value: u32) -> usize {
    // The length by comparisons (`checked_ilog10` ran about 25 instructions more per number,
    // callgrind), then one range check for all the digits, written last first.
    let digits = match value {
        0..=9 => 1,
        10..=99 => 2,
        100..=999 => 3,
        1_000..=9_999 => 4,
        10_000..=99_999 => 5,
        100_000..=999_999 => 6,
        1_000_000..=9_999_999 => 7,
        10_000_000..=99_999_999 => 8,
        100_000_000..=999_999_999 => 9,
        _ => 10,
    };
    let end = at + digits;
    if let Some(slots) = buf.get_mut(at..end) {
        let mut rest = value;
        for slot in slots.iter_mut().rev() {
            *slot = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
    }
    end
}

/// Writes `major:minor` into `buf` at `at`, as [`DeviceNumber`]'s `Display` prints it;
/// returns where it ends.
#[inline]
pub(crate) fn put_device(buf: &mut [u8], at: usize, device: DeviceNumber) -> usize {
    let at = put_decimal(buf, at, device.major());
    let at = put_bytes(buf, at, b":");
    put_decimal(buf, at, device.minor())
}

impl fmt::Display for SysfsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/", self.root)?;
        for _ in 0..self.ups {
            f.write_str("../")?;
        }
        write!(f, "{}{}", self.prefix, self.attribute)?;
        if let Some(index) = self.index {
            write!(f, "{index}")?;
        }
        Ok(())
    }
}

/// Which step of reading a sysfs attribute failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SysfsOperation {
    /// Opening it (`ENOENT`: no such attribute).
    Open,
    /// `fstat` of the opened attribute.
    Fstat,
    /// The opened file is not a regular file, as every sysfs attribute is (a FIFO, a device
    /// or a socket put in a staged tree); it is not read. The failure's errno is `EINVAL`.
    NotRegularFile {
        /// Its `st_mode & S_IFMT` bits.
        file_type_bits: u32,
    },
    /// Reading it.
    Read,
    /// Reading the link (for `subsystem`).
    Readlink,
}

impl fmt::Display for SysfsOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SysfsOperation::Open | SysfsOperation::NotRegularFile { .. } => "open",
            SysfsOperation::Fstat => "fstat",
            SysfsOperation::Read => "read",
            SysfsOperation::Readlink => "readlink",
        })
    }
}

/// A failed read of a sysfs attribute: which path, which step, what the kernel said.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SysfsFailure {
    /// The attribute.
    pub path: SysfsPath,
    /// The step that failed.
    pub operation: SysfsOperation,
    /// What the kernel said.
    pub errno: Errno,
}

impl fmt::Display for SysfsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.operation {
            SysfsOperation::NotRegularFile { file_type_bits } => write!(
                f,
                "open \"{}\": not a regular file (file type 0{file_type_bits:o}), as every \
                 sysfs attribute is",
                self.path
            ),
            operation => write!(f, "{operation} \"{}\": {}", self.path, self.errno),
        }
    }
}

/// Reads the attribute at `path` into `buf` with open, fstat, read (until the end of the
/// file or a full buffer) and close, and returns what was read. A file longer than the buffer
/// comes back cut, filling it: callers must not parse a full buffer (a cut number can still
/// look valid, e.g. zero-padded digits cut right after a newline).
///
/// Nothing here can block or read without end, whatever a staged or hostile tree puts at
/// `path`: the backend opens without blocking ([`Syscalls::open_read_only`]), anything but a
/// regular file is refused before it is read, and at most `buf.len()` bytes are read.
pub fn read_attribute<'b, S: Syscalls + ?Sized>(
    sys: &S,
    path: &SysfsPath,
    buf: &'b mut [u8; ATTRIBUTE_CAPACITY],
) -> Result<&'b [u8], SysfsFailure> {
    let failure = |operation, errno| SysfsFailure {
        path: path.clone(),
        operation,
        errno,
    };
    let mut path_buffer = PathBuffer::new();
    let c_path = path
        .as_c_str(&mut path_buffer)
        .map_err(|errno| failure(SysfsOperation::Open, errno))?;
    let fd = sys
        .open_read_only(c_path)
        .map_err(|errno| failure(SysfsOperation::Open, errno))?;
    let outcome = match sys.fstat(fd) {
        Ok(stat) if stat.mode & S_IFMT == S_IFREG => {
            read_to_end(sys, fd, buf).map_err(|errno| failure(SysfsOperation::Read, errno))
        }
        Ok(stat) => Err(failure(
            SysfsOperation::NotRegularFile {
                file_type_bits: stat.mode & S_IFMT,
            },
            Errno::EINVAL,
        )),
        Err(errno) => Err(failure(SysfsOperation::Fstat, errno)),
    };
    // Nothing to do about a failed close of a read-only sysfs file.
    let _ = sys.close(fd);
    outcome
}

/// Reads `fd` into `buf` until the end of the file or a full buffer; retries an interrupted
/// read a bounded number of times.
fn read_to_end<'b, S: Syscalls + ?Sized>(
    sys: &S,
    fd: i32,
    buf: &'b mut [u8; ATTRIBUTE_CAPACITY],
) -> Result<&'b [u8], Errno> {
    let mut filled = 0;
    let mut interrupted = 0;
    let outcome = loop {
        let Some(rest) = buf.get_mut(filled..).filter(|rest| !rest.is_empty()) else {
            break Ok(());
        };
        match sys.read(fd, rest) {
            Ok(0) => break Ok(()),
            // A backend claiming more than it was given is treated as having filled it.
            Ok(n) => filled = filled.saturating_add(n).min(ATTRIBUTE_CAPACITY),
            Err(Errno::EINTR) if interrupted < crate::io::MAX_INTERRUPTIONS => interrupted += 1,
            Err(errno) => break Err(errno),
        }
    };
    outcome?;
    Ok(buf.get(..filled).unwrap_or_default())
}

/// A decimal number followed by exactly one newline (`"262144000\n"`), as sysfs prints an
/// unsigned attribute. No sign, no spaces, no leading `+`, no overflow.
///
/// ```
/// use pmem2_source::sysfs::parse_decimal;
///
/// assert_eq!(parse_decimal(b"2097152\n"), Some(2097152));
/// assert_eq!(parse_decimal(b"2097152"), None);     // no newline
/// assert_eq!(parse_decimal(b"12abc\n"), None);
/// assert_eq!(parse_decimal(b"-1\n"), None);
/// assert_eq!(parse_decimal(b"18446744073709551616\n"), None); // 2^64
/// ```
pub fn parse_decimal(text: &[u8]) -> Option<u64> {
    let digits = text.strip_suffix(b"\n")?;
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |value, &byte| {
        let digit = match byte {
            b'0'..=b'9' => u64::from(byte - b'0'),
            _ => return None,
        };
        value.checked_mul(10)?.checked_add(digit)
    })
}

/// Like [`parse_decimal`], with an optional leading `-` (`numa_node` is `-1` when the
/// device has no NUMA affinity).
///
/// ```
/// use pmem2_source::sysfs::parse_signed_decimal;
///
/// assert_eq!(parse_signed_decimal(b"-1\n"), Some(-1));
/// assert_eq!(parse_signed_decimal(b"3\n"), Some(3));
/// assert_eq!(parse_signed_decimal(b"--1\n"), None);
/// ```
pub fn parse_signed_decimal(text: &[u8]) -> Option<i64> {
    match text.strip_prefix(b"-") {
        Some(magnitude) => {
            let value = parse_decimal(magnitude)?;
            0i64.checked_sub_unsigned(value)
        }
        None => i64::try_from(parse_decimal(text)?).ok(),
    }
}

/// One line of printable ASCII (no spaces) and its newline, as in a DIMM's `nfit/id`
/// (`"8089-a2-1740-00000539\n"`); returns the line without the newline.
pub fn parse_word_line(text: &[u8]) -> Option<&[u8]> {
    let word = text.strip_suffix(b"\n")?;
    (!word.is_empty() && word.iter().all(u8::is_ascii_graphic)).then_some(word)
}

/// The DIMM named by a region's `mappingN` attribute (`"nmem0,0,268435456,0\n"`: DIMM, offset,
/// length, position): the text before the first comma, which must be a plausible sysfs name
/// (letters, digits, `.`, `_`, `-`) of at most [`SysfsText::CAPACITY`] bytes, and not `.` or
/// `..`, which would name `/sys/bus/nd/devices` itself or its parent rather than a DIMM.
pub fn parse_mapping_dimm(text: &[u8]) -> Option<&[u8]> {
    let line = parse_word_line(text)?;
    let name = line.split(|&byte| byte == b',').next()?;
    let plausible = |byte: &u8| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-');
    let fits = name.len() <= SysfsText::CAPACITY;
    let a_directory_itself = matches!(name, b"." | b"..");
    (!name.is_empty()
        && fits
        && !a_directory_itself
        && name.len() < line.len()
        && name.iter().all(plausible))
    .then_some(name)
}

/// What a `subsystem` link target says about the device.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SubsystemLink<'a> {
    /// The last component of the target is exactly `dax`.
    DeviceDax,
    /// Any other subsystem; holds the last component of the target (may be empty).
    Other(&'a [u8]),
    /// The target filled the whole buffer and may be truncated.
    PossiblyTruncated,
}

/// Judges the bytes `readlink` put into a buffer of `capacity` bytes.
///
/// ```
/// use pmem2_source::sysfs::{classify_link_target, SubsystemLink, LINK_TARGET_CAPACITY};
///
/// let cap = LINK_TARGET_CAPACITY;
/// assert_eq!(classify_link_target(b"../../../../bus/dax", cap), SubsystemLink::DeviceDax);
/// assert_eq!(classify_link_target(b"../../../../class/mem", cap), SubsystemLink::Other(b"mem"));
/// assert_eq!(classify_link_target(b"../../bus/dax", 13), SubsystemLink::PossiblyTruncated);
/// ```
pub fn classify_link_target(target: &[u8], capacity: usize) -> SubsystemLink<'_> {
    if target.len() >= capacity {
        return SubsystemLink::PossiblyTruncated;
    }
    match last_component(target) {
        b"dax" => SubsystemLink::DeviceDax,
        other => SubsystemLink::Other(other),
    }
}

/// The last component of `path`: the bytes after the last `/`, once trailing `/` and `/.`
/// (which name the same directory) are dropped, as `realpath` would resolve them.
///
/// No other normalisation and no resolution: `bus/dax/..` ends in `..`, and a component that
/// is itself a link is judged by its own name. Real sysfs links are plain relative paths such
/// as `../../../../bus/dax`.
///
/// ```
/// use pmem2_source::sysfs::last_component;
///
/// assert_eq!(last_component(b"../../bus/dax"), b"dax");
/// assert_eq!(last_component(b"../../bus/dax/./"), b"dax");
/// assert_eq!(last_component(b"dax"), b"dax");
/// assert_eq!(last_component(b"bus/dax/.."), b"..");
/// ```
pub fn last_component(path: &[u8]) -> &[u8] {
    let mut path = path;
    while let [rest @ .., b'/'] | [rest @ .., b'/', b'.'] = path {
        path = rest;
    }
    match path.iter().rposition(|&byte| byte == b'/') {
        Some(slash) => path.get(slash + 1..).unwrap_or_default(),
        None => path,
    }
}

/// A short piece of sysfs text kept inside an error value or a path (a subsystem name, a
/// malformed attribute, a DIMM name): at most [`SysfsText::CAPACITY`] bytes; `Display`
/// escapes anything that is not printable ASCII and marks a cut with `...`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SysfsText {
    bytes: heapless::Vec<u8, { SysfsText::CAPACITY }, u8>,
    truncated: bool,
}

impl SysfsText {
    /// How many bytes of the name are kept.
    pub const CAPACITY: usize = 24;

    /// Keeps the first [`CAPACITY`](Self::CAPACITY) bytes of `name`.
    pub fn new(name: &[u8]) -> SysfsText {
        let kept = name.get(..Self::CAPACITY).unwrap_or(name);
        SysfsText {
            bytes: heapless::Vec::from_slice(kept).unwrap_or_default(),
            truncated: kept.len() < name.len(),
        }
    }

    /// The kept bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl SysfsText {
    /// Writes the text into `buf` at `at` as `Display` prints it (escaped, `...` after a
    /// cut); returns where it ends.
    pub(crate) fn put_escaped(&self, buf: &mut [u8], at: usize) -> usize {
        let plain =
            |byte: &u8| matches!(byte, b' '..=b'~') && !matches!(byte, b'\\' | b'\'' | b'"');
        let at = if self.bytes.iter().all(plain) {
            // What `escape_ascii` leaves as it is (real names: `mem`, `nmem0`), in one copy.
            put_bytes(buf, at, &self.bytes)
        } else {
            self.bytes
                .escape_ascii()
                .fold(at, |at, byte| put_bytes(buf, at, &[byte]))
        };
        if self.truncated {
            put_bytes(buf, at, b"...")
        } else {
            at
        }
    }
}

impl fmt::Display for SysfsText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.bytes.escape_ascii())?;
        if self.truncated {
            f.write_str("...")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::string::ToString;

    use super::*;

    #[cfg(not(windows))] // compares with glibc's values
    #[test]
    fn major_minor_match_glibc() {
        let samples = [
            0u64,
            0x103,
            0xfc00,
            0xdead_beef_cafe_f00d,
            u64::MAX,
            1 << 20,
            1 << 44,
        ];
        for raw in samples {
            let dev = DeviceNumber::from_raw(raw);
            assert_eq!(dev.major(), libc::major(raw), "major of {raw:#x}");
            assert_eq!(dev.minor(), libc::minor(raw), "minor of {raw:#x}");
            assert_eq!(libc::makedev(dev.major(), dev.minor()), raw);
        }
    }

    #[test]
    fn longest_paths_fit_the_buffer() {
        let huge = DeviceNumber::from_raw(u64::MAX);
        let mut buf = PathBuffer::new();
        let path = SysfsPath::char_subsystem(huge);
        assert_eq!(
            path.as_c_str(&mut buf),
            Ok(c"/sys/dev/char/4294967295:4294967295/subsystem")
        );
        let longest = SysfsPath::new(SysfsRoot::BlockDevice(huge), "mapping")
            .up(8)
            .below("device/../")
            .indexed(u16::MAX);
        assert_eq!(
            longest.as_c_str(&mut buf).map(|c| c.to_bytes().len()),
            Ok(83)
        );
        let dimm = SysfsRoot::NdDevice(SysfsText::new(&[b'n'; SysfsText::CAPACITY]));
        let path = SysfsPath::new(dimm, "nfit/dirty_shutdown");
        assert!(path.as_c_str(&mut buf).is_ok());
        // Far more steps up than the crate ever takes do not fit, and say so.
        let absurd = SysfsPath::new(SysfsRoot::CharDevice(huge), "x").up(40);
        assert_eq!(absurd.as_c_str(&mut buf), Err(Errno::ENAMETOOLONG));
    }

    /// `as_c_str` writes without `core::fmt`: the same bytes as `Display`, for every kind of
    /// root (names that need escaping and cut ones too), number of steps up, prefix and
    /// index, and the extreme device numbers; into one buffer, reused.
    #[test]
    fn c_paths_are_the_displayed_paths() {
        let devices = [
            0,
            0x103,
            0xfc00,
            1 << 20,
            1 << 44,
            0xdead_beef_cafe_f00d,
            u64::MAX,
        ]
        .map(DeviceNumber::from_raw);
        let mut roots: std::vec::Vec<SysfsRoot> = devices
            .iter()
            .flat_map(|&d| [SysfsRoot::CharDevice(d), SysfsRoot::BlockDevice(d)])
            .collect();
        roots.push(SysfsRoot::NdDevice(SysfsText::new(b"nmem0")));
        roots.push(SysfsRoot::NdDevice(SysfsText::new(b"odd\"\x01name")));
        roots.push(SysfsRoot::NdDevice(SysfsText::new(&[b'n'; 30])));
        let mut buf = PathBuffer::new();
        let mut checked = 0;
        for root in &roots {
            for ups in [0, 1, 2, 8] {
                for prefix in ["", "device/", "device/../"] {
                    for index in [None, Some(0), Some(7), Some(10), Some(999), Some(u16::MAX)] {
                        let mut path = SysfsPath::new(root.clone(), "subsystem")
                            .up(ups)
                            .below(prefix);
                        if let Some(index) = index {
                            path = path.indexed(index);
                        }
                        let displayed = std::format!("{path}");
                        let written = path.as_c_str(&mut buf).expect("fits");
                        assert_eq!(written.to_str(), Ok(displayed.as_str()));
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, roots.len() * 4 * 3 * 6);
    }

    /// `put_decimal` counts digits by comparisons: each side of every length boundary, and
    /// the extremes, are written as `core::fmt` prints them, in place, after what is there.
    #[test]
    fn decimals_of_every_length() {
        let mut values = std::vec![0u32, 1, u32::MAX, u32::MAX - 1];
        let mut power = 1u32;
        while let Some(next) = power.checked_mul(10) {
            values.extend([next - 1, next, next + 1]);
            power = next;
        }
        for value in values {
            let mut buf = [b'#'; 16];
            let end = put_decimal(&mut buf, 3, value);
            let expected = std::format!("###{value}");
            assert_eq!(&buf[..end], expected.as_bytes(), "{value}");
            assert!(
                buf[end..].iter().all(|&b| b == b'#'),
                "{value}: wrote past the end"
            );
        }
        // No room: nothing written, the end still reported (callers check it).
        let mut short = [b'#'; 4];
        assert_eq!(put_decimal(&mut short, 1, 12_345), 6);
        assert_eq!(&short, b"####");
    }

    /// Device numbers and names print as `core::fmt` would, ignoring the formatter's flags.
    #[test]
    fn device_numbers_and_names_print_plainly() {
        let mut values = std::vec![0u64, 1, 7, 8, 9, 10, 99, 100, 0o777, 4095, 4096];
        values.extend([u64::from(u32::MAX), u64::MAX, u64::MAX - 1, 1 << 63]);
        values.extend(
            (0..64)
                .map(|bit| 1u64 << bit)
                .chain((0..64).map(|bit| (1u64 << bit) - 1)),
        );
        for value in values {
            let device = DeviceNumber::from_raw(value);
            assert_eq!(
                device.to_string(),
                std::format!("{}:{}", device.major(), device.minor())
            );
            assert_eq!(std::format!("{device:>40}"), device.to_string());
        }
        for byte in 0..=u8::MAX {
            for name in [&[byte][..], &[b'a', byte, b'z'], &[byte; 30]] {
                let text = SysfsText::new(name);
                let kept = &name[..name.len().min(SysfsText::CAPACITY)];
                let dots = if kept.len() < name.len() { "..." } else { "" };
                let want = std::format!("{}{dots}", kept.escape_ascii());
                assert_eq!(text.to_string(), want, "{name:?}");
                assert_eq!(std::format!("{text:>80}"), want);
            }
        }
        assert_eq!(SysfsText::new(b"mem").to_string(), "mem");
        assert_eq!(
            SysfsText::new("dax\u{e9}".as_bytes()).to_string(),
            "dax\\xc3\\xa9"
        );
    }

    #[cfg(not(windows))] // compares with glibc's values
    #[test]
    fn paths_print_like_sysfs() {
        let null = DeviceNumber::from_raw(libc::makedev(1, 3));
        assert_eq!(
            SysfsPath::char_subsystem(null).to_string(),
            "/sys/dev/char/1:3/subsystem"
        );
        let path = SysfsPath::new(SysfsRoot::BlockDevice(null), "numa_node")
            .up(2)
            .below("device/");
        assert_eq!(
            path.to_string(),
            "/sys/dev/block/1:3/../../device/numa_node"
        );
        let path = SysfsPath::new(SysfsRoot::CharDevice(null), "mapping").indexed(12);
        assert_eq!(path.to_string(), "/sys/dev/char/1:3/mapping12");
        let dimm = SysfsRoot::NdDevice(SysfsText::new(b"nmem0"));
        assert_eq!(
            SysfsPath::new(dimm, "nfit/id").to_string(),
            "/sys/bus/nd/devices/nmem0/nfit/id"
        );
    }

    #[test]
    fn decimal_numbers() {
        let cases: [(&[u8], Option<u64>); 14] = [
            (b"0\n", Some(0)),
            (b"4096\n", Some(4096)),
            (b"007\n", Some(7)),
            (b"18446744073709551615\n", Some(u64::MAX)),
            (b"18446744073709551616\n", None),
            (b"99999999999999999999\n", None),
            (b"", None),
            (b"\n", None),
            (b"12", None),
            (b"12\n\n", None),
            (b"12abc\n", None),
            (b" 12\n", None),
            (b"+12\n", None),
            (b"-12\n", None),
        ];
        for (text, expected) in cases {
            assert_eq!(
                parse_decimal(text),
                expected,
                "{:?}",
                text.escape_ascii().to_string()
            );
        }
        assert_eq!(parse_signed_decimal(b"-1\n"), Some(-1));
        assert_eq!(
            parse_signed_decimal(b"-9223372036854775808\n"),
            Some(i64::MIN)
        );
        assert_eq!(parse_signed_decimal(b"-9223372036854775809\n"), None);
        assert_eq!(parse_signed_decimal(b"9223372036854775808\n"), None);
        assert_eq!(parse_signed_decimal(b"-\n"), None);
        assert_eq!(parse_signed_decimal(b"--1\n"), None);
    }

    #[test]
    fn words_and_mappings() {
        assert_eq!(
            parse_word_line(b"8089-a2-1740-00000539\n"),
            Some(&b"8089-a2-1740-00000539"[..])
        );
        assert_eq!(parse_word_line(b"a b\n"), None);
        assert_eq!(parse_word_line(b"\n"), None);
        assert_eq!(parse_word_line(b"abc"), None);
        assert_eq!(
            parse_mapping_dimm(b"nmem0,0,268435456,0\n"),
            Some(&b"nmem0"[..])
        );
        assert_eq!(parse_mapping_dimm(b"nmem12,0,1,0\n"), Some(&b"nmem12"[..]));
        assert_eq!(parse_mapping_dimm(b"nmem0\n"), None, "no fields");
        assert_eq!(parse_mapping_dimm(b",0,1,0\n"), None);
        assert_eq!(
            parse_mapping_dimm(b"../x,0,1,0\n"),
            None,
            "not a plain name"
        );
        assert_eq!(
            parse_mapping_dimm(b".,0,1,0\n"),
            None,
            "the directory itself"
        );
        assert_eq!(parse_mapping_dimm(b"..,0,1,0\n"), None, "its parent");
        assert_eq!(
            parse_mapping_dimm(b"...,0,1,0\n"),
            Some(&b"..."[..]),
            "a name"
        );
        assert_eq!(parse_mapping_dimm(b".nmem0,0,1,0\n"), Some(&b".nmem0"[..]));
    }

    /// Whatever a staged tree puts where an attribute should be, nothing blocks and nothing
    /// but a regular file is read: the file is checked with `fstat` after a non-blocking open.
    #[test]
    fn only_regular_files_are_read_as_attributes() {
        use crate::sys::consts::{S_IFCHR, S_IFIFO, S_IFSOCK};
        use crate::sys::scripted::{Call, FileScript, ScriptedKernel};
        let path = SysfsPath::new(SysfsRoot::CharDevice(DeviceNumber::from_raw(1)), "size");
        for (mode, shown) in [
            (S_IFIFO, "010000"),
            (S_IFCHR, "020000"),
            (S_IFSOCK, "0140000"),
        ] {
            let kernel = ScriptedKernel::char_device(1)
                .with_file_script("/sys/dev/char/0:1/size", FileScript::Special(mode | 0o644));
            let mut buf = [0; ATTRIBUTE_CAPACITY];
            let failure = read_attribute(&kernel, &path, &mut buf).expect_err("not regular");
            assert_eq!(
                (failure.operation, failure.errno),
                (
                    SysfsOperation::NotRegularFile {
                        file_type_bits: mode
                    },
                    Errno::EINVAL
                )
            );
            assert_eq!(
                failure.to_string(),
                std::format!(
                    "open \"/sys/dev/char/0:1/size\": not a regular file (file type {shown}), \
                     as every sysfs attribute is"
                )
            );
            assert!(
                !kernel
                    .calls()
                    .iter()
                    .any(|call| matches!(call, Call::Read { .. })),
                "not read"
            );
            assert_eq!(kernel.open_descriptors(), 0, "closed");
        }
        let kernel = ScriptedKernel::char_device(1).with_file("/sys/dev/char/0:1/size", b"7\n");
        let mut buf = [0; ATTRIBUTE_CAPACITY];
        assert_eq!(read_attribute(&kernel, &path, &mut buf), Ok(&b"7\n"[..]));
    }

    #[test]
    fn link_targets() {
        use SubsystemLink::{DeviceDax, Other, PossiblyTruncated};
        let cap = LINK_TARGET_CAPACITY;
        let cases: [(&[u8], usize, SubsystemLink<'_>); 17] = [
            (b"../../../bus/dax", cap, DeviceDax),
            (b"../../class/dax", cap, DeviceDax),
            (b"dax", cap, DeviceDax),
            (b"/dax", cap, DeviceDax),
            (b"", cap, Other(b"")),
            (b"bus/dax/", cap, DeviceDax),
            (b"bus/dax/.", cap, DeviceDax),
            (b"bus/dax//./", cap, DeviceDax),
            (b"bus/dax/..", cap, Other(b"..")),
            (b"/", cap, Other(b"")),
            (b".", cap, Other(b".")),
            (b"bus/daxx", cap, Other(b"daxx")),
            (b"bus/DAX", cap, Other(b"DAX")),
            (b"dax/mem", cap, Other(b"mem")),
            // Exactly full: possibly cut short, whatever it says.
            (b"bus/dax", 7, PossiblyTruncated),
            (b"bus/dax", 8, DeviceDax),
            (b"", 0, PossiblyTruncated),
        ];
        for (target, capacity, expected) in cases {
            assert_eq!(
                classify_link_target(target, capacity),
                expected,
                "{:?} in {capacity} bytes",
                target.escape_ascii().to_string()
            );
        }
    }

    #[test]
    fn paths_know_their_root() {
        let dimm = SysfsRoot::NdDevice(SysfsText::new(b"nmem1"));
        let path = SysfsPath::new(dimm.clone(), "nfit/id").up(1);
        assert_eq!(path.root(), &dimm);
        let operations = [
            SysfsOperation::Open,
            SysfsOperation::Fstat,
            SysfsOperation::NotRegularFile { file_type_bits: 0 },
            SysfsOperation::Read,
            SysfsOperation::Readlink,
        ];
        let names = operations.map(|operation| operation.to_string());
        assert_eq!(names, ["open", "fstat", "open", "read", "readlink"]);
    }

    #[test]
    fn long_attributes_are_cut_to_the_buffer() {
        use crate::sys::scripted::ScriptedKernel;
        let path = SysfsPath::new(SysfsRoot::CharDevice(DeviceNumber::from_raw(1)), "size");
        let long = [b'7'; 80];
        let kernel = ScriptedKernel::char_device(1).with_file("/sys/dev/char/0:1/size", &long);
        let mut buf = [0; ATTRIBUTE_CAPACITY];
        let read = read_attribute(&kernel, &path, &mut buf).expect("readable");
        assert_eq!(read, &long[..ATTRIBUTE_CAPACITY]);
        assert_eq!(parse_decimal(read), None, "a cut number is no number");
        assert_eq!(kernel.open_descriptors(), 0);
    }

    #[test]
    fn interrupted_reads_are_retried_a_bounded_number_of_times() {
        use crate::sys::scripted::{Call, FileScript, ScriptedKernel};
        let path = SysfsPath::new(SysfsRoot::CharDevice(DeviceNumber::from_raw(1)), "size");
        let kernel = ScriptedKernel::char_device(1).with_file_script(
            "/sys/dev/char/0:1/size",
            FileScript::ReadFails(Errno::EINTR),
        );
        let mut buf = [0; ATTRIBUTE_CAPACITY];
        let failure = read_attribute(&kernel, &path, &mut buf).expect_err("always interrupted");
        assert_eq!(
            (failure.operation, failure.errno),
            (SysfsOperation::Read, Errno::EINTR)
        );
        assert_eq!(
            failure.to_string(),
            "read \"/sys/dev/char/0:1/size\": Interrupted system call"
        );
        let reads = kernel
            .calls()
            .iter()
            .filter(|call| matches!(call, Call::Read { .. }))
            .count();
        assert_eq!(reads as u32, crate::io::MAX_INTERRUPTIONS + 1);
        assert_eq!(kernel.open_descriptors(), 0);
    }

    #[test]
    fn subsystem_names_are_escaped_and_bounded() {
        assert_eq!(SysfsText::new(b"mem").to_string(), "mem");
        assert_eq!(SysfsText::new(b"a\"b\n\xff").to_string(), "a\\\"b\\n\\xff");
        let long = [b'x'; 40];
        let name = SysfsText::new(&long);
        assert_eq!(name.as_bytes().len(), SysfsText::CAPACITY);
        assert!(name.to_string().ends_with("xx..."));
    }
}
