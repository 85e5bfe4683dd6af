//! The sysfs entry of a fake Device DAX: `/sys/dev/char/1:3` (the device number of
//! `/dev/null`) laid out like a Device DAX's, in a tmpfs the bench mounts over `/sys/dev/char`
//! in a private mount namespace (`tests/common/fake_sysfs.rs` does the mounting). A real
//! `/dev/null` descriptor then classifies as Device DAX, with real syscalls throughout.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::Path;

/// The link the core reads, exactly as it formats it for `/dev/null` (1:3).
pub const SUBSYSTEM: &std::ffi::CStr = c"/sys/dev/char/1:3/subsystem";
/// The attributes `size` and `alignment` read.
pub const SIZE: &std::ffi::CStr = c"/sys/dev/char/1:3/size";
pub const ALIGN: &std::ffi::CStr = c"/sys/dev/char/1:3/align";

/// The staged values.
pub const SIZE_BYTES: u64 = 262_144_000;
pub const ALIGN_BYTES: usize = 2 << 20;

/// Lays out, under `root` (the tmpfs mounted on `/sys/dev/char`): `1:3/subsystem ->
/// ../bus/dax` (which resolves inside the tmpfs, so libpmem2's `realpath` succeeds too),
/// `1:3/size`, `1:3/align` and `1:3/numa_node`.
pub fn stage(root: &Path) -> io::Result<()> {
    fs::create_dir_all(root.join("bus/dax"))?;
    fs::create_dir(root.join("1:3"))?;
    symlink("../bus/dax", root.join("1:3/subsystem"))?;
    fs::write(root.join("1:3/size"), format!("{SIZE_BYTES}\n"))?;
    fs::write(root.join("1:3/align"), format!("{ALIGN_BYTES}\n"))?;
    fs::write(root.join("1:3/numa_node"), "0\n")
}
