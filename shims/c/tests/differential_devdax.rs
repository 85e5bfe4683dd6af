//! Differential Device-DAX detection (SPEC §3): libpmem2 1.12.1 and our `libpmem2_source.so`
//! on a real `/dev/null` descriptor, with a staged `/sys/dev/char` (see
//! `tests/common/fake_sysfs.rs`: a private mount namespace and a fresh tmpfs per scenario).
//!
//! libpmem2 resolves `/sys/dev/char/1:3/subsystem` with `realpath` and judges the last
//! component of the result; we read the link once with `readlink` and judge the last component
//! of its target. So every link here resolves inside the tmpfs, except in the rows that show
//! where the two rules part (SPEC's accepted divergences).
//!
//! `harness = false`: `unshare(CLONE_NEWNS)` wants a single-threaded process. Not root, or no
//! reference library: `skipped` and exit 0, except with `CI=true`: FAIL and exit 1.

// Linux only: on Windows an empty crate, which checks but does not link (the Windows tests
// are elsewhere: scripts/wine-tests.sh).
#![cfg_attr(windows, no_main)]
#![cfg(not(windows))]

#[path = "../../../tests/common/mod.rs"]
mod common;
mod compare;
mod support;

use std::ffi::c_int;
use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::ExitCode;

use common::fake_sysfs::{
    NOT_A_LINK, SUBSYSTEM_PATH, Scenario, TOO_LONG, entry_plain_file, entry_symlink_loop, no_entry,
    subsystem_directory, subsystem_link, subsystem_plain_file,
};
use common::messages::not_dax_message;
use compare::{Expect, differ, fails, fails_silently, run_on_fake_sysfs, source};
use pmem2_source::codes::PMEM2_E_INVALID_FILE_TYPE;

const INVALID_TYPE: c_int = PMEM2_E_INVALID_FILE_TYPE;

const WHY_SILENT: &str = "SPEC §3 (ours): libpmem2 sets no message when the device is not \
                          Device DAX";
const WHY_DANGLING: &str = "SPEC §3 and README, accepted: libpmem2's realpath fails on a \
                            dangling link; our one readlink judges the target by its last \
                            component";
const WHY_UNRESOLVED: &str = "accepted (README): libpmem2 resolves every link in the target \
                              with realpath; our one readlink judges the last component of \
                              the target as written";
const WHY_FULL: &str = "SPEC §3: a target that fills our 256-byte buffer (possibly cut) is \
                        never Device DAX; libpmem2's realpath resolves it";

/// `1:3/subsystem -> target`, and the directory `dir` (relative to the tmpfs) it resolves to.
fn resolving_link(root: &Path, target: &str, dir: &str) -> io::Result<()> {
    fs::create_dir_all(root.join(dir))?;
    subsystem_link(root, target)
}

/// `1:3/subsystem -> target`, which resolves to the directory `dir` (relative to the tmpfs),
/// or dangles (`None`).
fn link(target: &'static str, dir: Option<&'static str>, expect: Expect) -> Scenario<Expect> {
    let name = match dir {
        Some(_) => format!("subsystem -> {target} (resolving)"),
        None => format!("subsystem -> {target} (dangling)"),
    };
    Scenario::new(
        name,
        move |root| match dir {
            Some(dir) => resolving_link(root, target, dir),
            None => subsystem_link(root, target),
        },
        expect,
    )
}

/// Ours: not Device DAX, with our message; libpmem2: the same code and no message.
fn not_dax(subsystem: &str) -> Expect {
    Expect::Diverges {
        ours: fails(INVALID_TYPE, not_dax_message(1, 3, subsystem)),
        reference: fails_silently(INVALID_TYPE),
        why: WHY_SILENT,
    }
}

/// `subsystem` is not a link: libpmem2's realpath gives the path itself, whose last
/// component `subsystem` is not `dax`.
fn not_a_link() -> Expect {
    Expect::Diverges {
        ours: fails(INVALID_TYPE, NOT_A_LINK),
        reference: fails_silently(INVALID_TYPE),
        why: WHY_SILENT,
    }
}

/// A `len`-byte target `../<a>/<b>/dax` (each component within NAME_MAX), and the directory
/// it resolves to, relative to the tmpfs.
fn long_target(len: usize) -> (String, String) {
    let a = "a".repeat(200);
    let b = "b".repeat(len - "../".len() - a.len() - "/".len() - "/dax".len());
    let target = format!("../{a}/{b}/dax");
    assert_eq!(target.len(), len);
    (target, format!("{a}/{b}/dax"))
}

/// `1:3/subsystem ->` a `len`-byte target that resolves to a `dax` directory.
fn long_resolving_target(root: &Path, len: usize) -> io::Result<()> {
    let (target, dir) = long_target(len);
    resolving_link(root, &target, &dir)
}

fn scenarios() -> Vec<Scenario<Expect>> {
    vec![
        link("../bus/dax", Some("bus/dax"), Expect::Same(0)),
        link("../class/dax", Some("class/dax"), Expect::Same(0)), // older kernels
        Scenario::new(
            "sysfs-shaped: 1:3 -> devices/dax0.0, whose subsystem -> ../../bus/dax",
            |root| {
                fs::create_dir_all(root.join("devices/dax0.0"))?;
                fs::create_dir_all(root.join("bus/dax"))?;
                symlink("../../bus/dax", root.join("devices/dax0.0/subsystem"))?;
                symlink("devices/dax0.0", root.join("1:3"))
            },
            Expect::Same(0),
        ),
        Scenario::new(
            "255-byte target resolving to a dax directory: Device DAX in both",
            |root| long_resolving_target(root, 255),
            Expect::Same(0),
        ),
        link("../class/mem", Some("class/mem"), not_dax("mem")),
        link("../bus/daxx", Some("bus/daxx"), not_dax("daxx")),
        Scenario::new(
            "subsystem is a plain file: not Device DAX in both",
            subsystem_plain_file,
            not_a_link(),
        ),
        Scenario::new(
            "subsystem is a directory: not Device DAX in both",
            subsystem_directory,
            not_a_link(),
        ),
        Scenario::new(
            "no 1:3 entry: -ENOENT in both (realpath / readlink)",
            no_entry,
            Expect::Same(-libc::ENOENT),
        ),
        Scenario::new(
            "1:3 is a plain file: -ENOTDIR in both",
            entry_plain_file,
            Expect::Same(-libc::ENOTDIR),
        ),
        Scenario::new(
            "1:3 is a symlink loop: -ELOOP in both",
            entry_symlink_loop,
            Expect::Same(-libc::ELOOP),
        ),
        link(
            "../nowhere/dax",
            None,
            Expect::Diverges {
                ours: source(),
                reference: fails(
                    -libc::ENOENT,
                    format!("realpath \"{SUBSYSTEM_PATH}\": No such file or directory"),
                ),
                why: WHY_DANGLING,
            },
        ),
        Scenario::new(
            "300-byte target resolving to a dax directory: libpmem2 Device DAX, ours not",
            |root| long_resolving_target(root, 300),
            Expect::Diverges {
                ours: fails(INVALID_TYPE, TOO_LONG),
                reference: source(),
                why: WHY_FULL,
            },
        ),
        Scenario::new(
            "dangling 300-byte target ending in /dax: libpmem2 -ENOENT, ours not Device DAX",
            |root| subsystem_link(root, &long_target(300).0),
            Expect::Diverges {
                ours: fails(INVALID_TYPE, TOO_LONG),
                reference: fails(
                    -libc::ENOENT,
                    format!("realpath \"{SUBSYSTEM_PATH}\": No such file or directory"),
                ),
                why: WHY_FULL,
            },
        ),
        // Trailing `/` and `/.` name the same directory; realpath drops them and so does
        // our `sysfs::last_component`.
        link("../bus/dax/", Some("bus/dax"), Expect::Same(0)),
        link("../bus/dax/.", Some("bus/dax"), Expect::Same(0)),
        // libpmem2 judges the fully resolved path, we judge the link text (one readlink).
        // These targets tell the two apart; real sysfs has none of them (its subsystem links
        // are plain relative paths to an existing bus or class directory). README lists them.
        link(
            "../nowhere/mem",
            None,
            Expect::Diverges {
                ours: fails(INVALID_TYPE, not_dax_message(1, 3, "mem")),
                reference: fails(
                    -libc::ENOENT,
                    format!("realpath \"{SUBSYSTEM_PATH}\": No such file or directory"),
                ),
                why: WHY_DANGLING,
            },
        ),
        Scenario::new(
            "subsystem -> ../bus/current, a link to the dax directory: libpmem2 Device DAX, ours not",
            |root| {
                resolving_link(root, "../bus/current", "bus/dax")?;
                symlink("dax", root.join("bus/current"))
            },
            Expect::Diverges {
                ours: fails(INVALID_TYPE, not_dax_message(1, 3, "current")),
                reference: source(),
                why: WHY_UNRESOLVED,
            },
        ),
        Scenario::new(
            "subsystem -> ../bus/dax, itself a link to ../class/mem: libpmem2 not Device DAX, ours is",
            |root| {
                resolving_link(root, "../bus/dax", "class/mem")?;
                fs::create_dir(root.join("bus"))?;
                symlink("../class/mem", root.join("bus/dax"))
            },
            Expect::Diverges {
                ours: source(),
                reference: fails_silently(INVALID_TYPE),
                why: WHY_UNRESOLVED,
            },
        ),
    ]
}

fn main() -> ExitCode {
    run_on_fake_sysfs(
        &scenarios(),
        |reference, null| differ("real sysfs", &not_dax("mem"), null.as_raw_fd(), reference),
        |reference, scenario, null| {
            differ(
                &scenario.name,
                &scenario.expect,
                null.as_raw_fd(),
                reference,
            )
        },
    )
}
