//! The real Device DAX of the `real_devdax` tests, named by the environment.
//!
//! These tests need a real `/dev/daxX.Y`, which no CI machine has: `tests/devdax-vm/run.sh`
//! boots a Linux guest with an emulated NVDIMM, turns it into a Device DAX and runs the test
//! binaries there with
//!
//! - `PMEM2_DEVDAX`: the device, e.g. `/dev/dax0.0`;
//! - `PMEM2_DEVDAX_SIZE`, `PMEM2_DEVDAX_ALIGN`: the size and alignment the guest's namespace
//!   was created with, in bytes (the tests compare the answers with these, not only with
//!   what sysfs says).
//!
//! Without `PMEM2_DEVDAX` each test says why on stderr and returns. That is a skip even with
//! `CI=true`, unlike every other skip of this suite: CI runs these tests inside the guest,
//! through the script, so on the host there is nothing to fail.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The variables, as `tests/devdax-vm/init.sh` sets them.
pub const DEVICE_VAR: &str = "PMEM2_DEVDAX";
pub const SIZE_VAR: &str = "PMEM2_DEVDAX_SIZE";
pub const ALIGN_VAR: &str = "PMEM2_DEVDAX_ALIGN";

/// Where each test writes on the device, so that they never overlap (nor the persistence
/// record of `shims/c/tests/real_devdax.rs` in the first 64 KiB and the last page, which a
/// second boot reads back). Offsets in MiB; every region is 8 MiB.
pub mod regions {
    /// `shims/c/tests/c/scenarios.c` (its Device DAX part).
    pub const C_SCENARIOS_MIB: u64 = 8;
    /// `shims/std/tests/real_devdax.rs`.
    pub const STD_MIB: u64 = 16;
    /// `shims/c/tests/real_devdax.rs`, the mcsafe I/O of both libraries.
    pub const CAPI_MIB: u64 = 32;
    /// `shims/c/tests/real_devdax.rs`, libpmem2's mapping of our source (beyond the record).
    pub const MAPPING_MIB: u64 = 48;
    /// The size of each region.
    pub const LEN_MIB: u64 = 8;
}

/// The device under test and what it must answer.
#[derive(Debug, Clone)]
pub struct RealDevdax {
    pub path: PathBuf,
    /// `PMEM2_DEVDAX_SIZE`.
    pub size: u64,
    /// `PMEM2_DEVDAX_ALIGN`.
    pub alignment: u64,
    /// `st_rdev` of the device node: (major, minor).
    pub major: u32,
    pub minor: u32,
}

impl RealDevdax {
    /// The device named by `PMEM2_DEVDAX`, or `None` after saying on stderr that `test` is
    /// skipped and why. Panics if the variables are set but wrong (a broken guest, not a
    /// machine without a Device DAX).
    pub fn from_env(test: &str) -> Option<RealDevdax> {
        let Some(path) = std::env::var_os(DEVICE_VAR) else {
            // Straight to the stderr handle: libtest captures eprintln!, and a skip must be
            // visible.
            let _ = writeln!(
                io::stderr().lock(),
                "SKIPPED {test}: no real Device DAX ({DEVICE_VAR} is not set; \
                 tests/devdax-vm/run.sh sets it inside its guest, where CI runs this test)"
            );
            return None;
        };
        let path = PathBuf::from(path);
        let metadata = fs::metadata(&path).unwrap_or_else(|e| panic!("{DEVICE_VAR}={path:?}: {e}"));
        assert!(
            metadata.file_type().is_char_device(),
            "{DEVICE_VAR}={path:?} is not a character device"
        );
        let rdev = metadata.rdev();
        Some(RealDevdax {
            size: number_var(SIZE_VAR),
            alignment: number_var(ALIGN_VAR),
            major: libc::major(rdev),
            minor: libc::minor(rdev),
            path,
        })
    }

    /// `/sys/dev/char/M:m`, resolved: the device's sysfs directory, e.g.
    /// `/sys/devices/.../ndbus0/region0/dax0.0/dax0.0`.
    pub fn sysfs_dir(&self) -> PathBuf {
        let link = format!("/sys/dev/char/{}:{}", self.major, self.minor);
        fs::canonicalize(&link).unwrap_or_else(|e| panic!("canonicalize {link}: {e}"))
    }

    /// An attribute of the device's own sysfs directory, without its newline.
    pub fn attribute(&self, name: &str) -> String {
        read_trimmed(&self.sysfs_dir().join(name))
    }

    /// The NVDIMM region the device is in: the nearest ancestor of its sysfs directory with
    /// a `mappings` attribute (`None` if there is none).
    pub fn region_dir(&self) -> Option<PathBuf> {
        self.sysfs_dir()
            .ancestors()
            .find(|dir| dir.join("mappings").is_file())
            .map(Path::to_path_buf)
    }

    /// The DIMMs of the region, in `mappingN` order (`nmem0`, …), as the kernel lists them.
    pub fn dimms(&self) -> Vec<String> {
        let Some(region) = self.region_dir() else {
            return Vec::new();
        };
        let count: usize = read_trimmed(&region.join("mappings"))
            .parse()
            .expect("mappings is a number");
        (0..count)
            .map(|n| {
                let mapping = read_trimmed(&region.join(format!("mapping{n}")));
                mapping
                    .split(',')
                    .next()
                    .expect("mappingN starts with the DIMM")
                    .to_string()
            })
            .collect()
    }

    /// `nfit/<name>` of every DIMM of the region, or `None` if some DIMM has none.
    pub fn dimm_attributes(&self, name: &str) -> Option<Vec<String>> {
        self.dimms()
            .iter()
            .map(|dimm| {
                let path = Path::new("/sys/bus/nd/devices")
                    .join(dimm)
                    .join("nfit")
                    .join(name);
                path.is_file().then(|| read_trimmed(&path))
            })
            .collect()
    }
}

fn number_var(name: &str) -> u64 {
    let value: OsString = std::env::var_os(name)
        .unwrap_or_else(|| panic!("{DEVICE_VAR} is set, so {name} must be too"));
    value
        .to_str()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("{name}={value:?} is not a number of bytes"))
}

/// A sysfs attribute without its trailing newline.
pub fn read_trimmed(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .trim_end_matches('\n')
        .to_string()
}

/// A line for the guest's report (`REPORT <what>: <value>`), which `run.sh` prints after
/// each boot; straight to the stderr handle, so libtest does not capture it.
pub fn report(what: &str, value: impl std::fmt::Display) {
    let _ = writeln!(io::stderr().lock(), "REPORT {what}: {value}");
}

/// `len` bytes of a pattern that differs per `seed` and per offset (no two 251-byte runs
/// alike), so a misplaced or stale copy shows.
pub fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i % 251) as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

/// A shared mapping of `len` bytes of the device at `offset` (a multiple of the alignment),
/// read back independently of the code under test: the bytes are copied out and the mapping
/// is gone before this returns.
pub fn read_through_mmap(device: &RealDevdax, offset: u64, len: usize) -> Vec<u8> {
    use std::os::fd::AsRawFd;
    assert_eq!(offset % device.alignment, 0, "mmap offset must be aligned");
    let map_len = (len as u64).div_ceil(device.alignment) * device.alignment;
    let map_len = usize::try_from(map_len).expect("length");
    let file = fs::File::open(&device.path).expect("open the device read-only");
    // SAFETY: a new shared read-only mapping of the device; nothing else is at the address
    // the kernel picks.
    let address = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            map_len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            i64::try_from(offset).expect("offset"),
        )
    };
    assert_ne!(
        address,
        libc::MAP_FAILED,
        "mmap {} at {offset}: {}",
        device.path.display(),
        io::Error::last_os_error()
    );
    // SAFETY: the mapping is readable for `map_len >= len` bytes and lives until munmap.
    let bytes = unsafe { std::slice::from_raw_parts(address.cast::<u8>(), len) }.to_vec();
    // SAFETY: the mapping made above, no longer referenced (the bytes were copied).
    let ret = unsafe { libc::munmap(address, map_len) };
    assert_eq!(ret, 0, "munmap: {}", io::Error::last_os_error());
    bytes
}
