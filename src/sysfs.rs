//! The sysfs side of Device-DAX detection: device numbers, `/sys/dev/char/M:m/…` paths in
//! fixed buffers, and the decision over a `subsystem` link target.
//!
//! Everything here is pure: no syscalls, no allocation, no panics. The paths are formatted
//! into a `heapless::String` on the stack, and the link target is judged from the bytes
//! `readlink` left in a fixed buffer.
//!
//! # References
//! - Linux `Documentation/ABI/testing/sysfs-dev` (`/sys/dev/char/<major>:<minor>`)
//! - glibc `sys/sysmacros.h` (`major`, `minor` over a 64-bit `dev_t`)
//! - PMDK `src/libpmem2/pmem2_utils_linux.c` (`pmem2_get_type_from_stat`)

use core::ffi::CStr;
use core::fmt::{self, Write};

use crate::error::Errno;

/// Size of the buffer a `subsystem` link target is read into. A target that fills it is
/// possibly truncated and is never taken for Device DAX. Real targets are short
/// (`../../../../bus/dax`, `../../../../class/mem`).
pub const LINK_TARGET_CAPACITY: usize = 256;

/// A buffer for one formatted sysfs path and its NUL terminator. The longest path we build is
/// `/sys/dev/char/4294967295:4294967295/subsystem`: 45 bytes plus the NUL.
pub type PathBuffer = heapless::String<64>;

/// The sysfs directory of character devices.
const CHAR_DEVICE_DIR: &str = "/sys/dev/char";

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

/// The path of one attribute of a character device in sysfs:
/// `/sys/dev/char/<major>:<minor>/<attribute>`.
///
/// `Display` prints the path; [`as_c_str`](Self::as_c_str) puts it, NUL-terminated, into a
/// fixed buffer for a syscall.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CharDevicePath {
    device: DeviceNumber,
    attribute: &'static str,
}

impl CharDevicePath {
    /// `/sys/dev/char/M:m/subsystem`, the link whose target names the device's subsystem.
    pub const fn subsystem(device: DeviceNumber) -> CharDevicePath {
        CharDevicePath {
            device,
            attribute: "subsystem",
        }
    }

    /// Writes the path with its NUL terminator into `buf` (a fixed buffer, normally on the
    /// caller's stack) and returns it as a C string for a syscall.
    ///
    /// Fails with `ENAMETOOLONG` if it does not fit, which no attribute this crate uses can
    /// cause (the unit tests format the longest possible device number).
    pub fn as_c_str<'b>(&self, buf: &'b mut PathBuffer) -> Result<&'b CStr, Errno> {
        buf.clear();
        write!(buf, "{self}\0").map_err(|_| Errno::ENAMETOOLONG)?;
        CStr::from_bytes_with_nul(buf.as_bytes()).map_err(|_| Errno::ENAMETOOLONG)
    }
}

impl fmt::Display for CharDevicePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{CHAR_DEVICE_DIR}/{}/{}", self.device, self.attribute)
    }
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

/// A subsystem name kept inside an error value: at most [`SubsystemName::CAPACITY`] bytes of
/// the last component of a link target; `Display` escapes anything that is not printable
/// ASCII and marks a cut with `...`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SubsystemName {
    bytes: heapless::Vec<u8, { SubsystemName::CAPACITY }>,
    truncated: bool,
}

impl SubsystemName {
    /// How many bytes of the name are kept.
    pub const CAPACITY: usize = 32;

    /// Keeps the first [`CAPACITY`](Self::CAPACITY) bytes of `name`.
    pub fn new(name: &[u8]) -> SubsystemName {
        let kept = name.get(..Self::CAPACITY).unwrap_or(name);
        SubsystemName {
            bytes: heapless::Vec::from_slice(kept).unwrap_or_default(),
            truncated: kept.len() < name.len(),
        }
    }

    /// The kept bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Display for SubsystemName {
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
    fn longest_path_fits_the_buffer() {
        let path = CharDevicePath::subsystem(DeviceNumber::from_raw(u64::MAX));
        let mut buf = PathBuffer::new();
        let c = path.as_c_str(&mut buf).expect("fits");
        assert_eq!(c, c"/sys/dev/char/4294967295:4294967295/subsystem");
        assert_eq!(c.to_bytes_with_nul().len(), 46);
        assert_eq!(
            path.to_string(),
            "/sys/dev/char/4294967295:4294967295/subsystem"
        );
    }

    #[test]
    fn null_device_path() {
        let path = CharDevicePath::subsystem(DeviceNumber::from_raw(libc::makedev(1, 3)));
        assert_eq!(path.to_string(), "/sys/dev/char/1:3/subsystem");
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
    fn subsystem_names_are_escaped_and_bounded() {
        assert_eq!(SubsystemName::new(b"mem").to_string(), "mem");
        assert_eq!(
            SubsystemName::new(b"a\"b\n\xff").to_string(),
            "a\\\"b\\n\\xff"
        );
        let long = [b'x'; 40];
        let name = SubsystemName::new(&long);
        assert_eq!(name.as_bytes().len(), SubsystemName::CAPACITY);
        assert!(name.to_string().ends_with("xx..."));
    }
}
