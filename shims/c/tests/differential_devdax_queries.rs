//! What a Device DAX source answers (SPEC §5), libpmem2 1.12.1 against our
//! `libpmem2_source.so`, on a real `/dev/null` descriptor with a staged `/sys/dev/char`
//! (`tests/common/fake_sysfs.rs`: a private mount namespace and a fresh tmpfs per scenario)
//! whose `1:3` entry is a Device DAX with `size` and `align` attributes, or `align` only in
//! `dax_region/` one level up, or malformed ones.
//!
//! Ours reads size and alignment from sysfs. libpmem2 asks libndctl, finds no NVDIMM region
//! behind the device and dereferences NULL: `pmem2_source_size` and `pmem2_source_alignment`
//! (and `pmem2_source_pread_mcsafe`, which asks the size) die with SIGSEGV (upstream
//! pmem/pmdk#6160). Those calls run in a forked child, which must be killed by SIGSEGV; if it
//! is not, the test fails with what libpmem2 answered. The other queries are compared in
//! process.
//!
//! `harness = false`: `unshare(CLONE_NEWNS)` and `fork` want a single-threaded process. Not
//! root, or no reference library: `skipped` and exit 0, except with `CI=true`: FAIL and
//! exit 1.

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

use common::fake_sysfs::Scenario;
use compare::queries::{
    Case, Expect, Origin, Query, Reply, Row, fails, number, ok, pread, run_cases, unread,
    untouched, without_nvdimm,
};
use compare::{garbage, ours, run_on_fake_sysfs};
use pmem2_source::codes::{
    PMEM2_E_INVALID_ALIGNMENT_FORMAT, PMEM2_E_INVALID_ALIGNMENT_VALUE, PMEM2_E_INVALID_FILE_TYPE,
    PMEM2_E_INVALID_SIZE_FORMAT,
};

/// What the staged device says: 250 MiB, aligned to 2 MiB.
const SIZE: &str = "262144000\n";
const ALIGN: &str = "2097152\n";
/// `dax_region/align` of the fallback scenario: 1 GiB, to tell it from the device's own.
const REGION_ALIGN: &str = "1073741824\n";

const WHY_6160: &str = "SPEC §5 (ours), pmem/pmdk#6160: libpmem2 asks libndctl for the \
                        device's region, finds none (no NVDIMM namespace backs it) and \
                        dereferences NULL; we read sysfs";
/// libpmem2 dies with SIGSEGV; ours answers `ours`.
fn dies(ours: Reply) -> Expect {
    Expect::ReferenceDies {
        ours,
        signal: libc::SIGSEGV,
        why: WHY_6160,
    }
}

/// Size and alignment: ours answers `size` and `alignment`, libpmem2 dies on both.
fn size_and_alignment(size: Reply, alignment: Reply) -> Vec<Row> {
    vec![
        ("size", Query::Size, dies(size)),
        ("alignment", Query::Alignment, dies(alignment)),
    ]
}

fn invalid_size(text: &str) -> Reply {
    fails(
        PMEM2_E_INVALID_SIZE_FORMAT,
        format!(
            "invalid size in \"/sys/dev/char/1:3/size\": \"{text}\" is not a decimal number and \
             a newline"
        ),
        untouched(),
    )
}

fn invalid_alignment(path: &str, text: &str) -> Reply {
    fails(
        PMEM2_E_INVALID_ALIGNMENT_FORMAT,
        format!(
            "invalid alignment in \"{path}\": \"{text}\" is not a decimal number and a newline"
        ),
        untouched(),
    )
}

fn not_a_power_of_two(alignment: u64) -> Reply {
    fails(
        PMEM2_E_INVALID_ALIGNMENT_VALUE,
        format!("alignment ({alignment}) has to be a power of two"),
        untouched(),
    )
}

/// `1:3` a Device DAX (`subsystem -> ../bus/dax`, resolving in the tmpfs) holding
/// `attributes` (name, contents).
fn device(root: &Path, attributes: &[(&str, &str)]) -> io::Result<()> {
    fs::create_dir_all(root.join("bus/dax"))?;
    fs::create_dir(root.join("1:3"))?;
    symlink("../bus/dax", root.join("1:3/subsystem"))?;
    for (name, contents) in attributes {
        fs::write(root.join("1:3").join(name), contents)?;
    }
    Ok(())
}

/// Shaped like real sysfs on kernels without a device `align`: `1:3 -> devices/dax0.0/dax0.0`
/// (whose `subsystem -> ../../../bus/dax`) holding `size`, and `devices/dax0.0/dax_region/`
/// holding `align` = `region_align`.
fn device_in_region(root: &Path, region_align: &str) -> io::Result<()> {
    fs::create_dir_all(root.join("bus/dax"))?;
    fs::create_dir_all(root.join("devices/dax0.0/dax0.0"))?;
    fs::create_dir_all(root.join("devices/dax0.0/dax_region"))?;
    symlink(
        "../../../bus/dax",
        root.join("devices/dax0.0/dax0.0/subsystem"),
    )?;
    fs::write(root.join("devices/dax0.0/dax0.0/size"), SIZE)?;
    fs::write(root.join("devices/dax0.0/dax_region/align"), region_align)?;
    symlink("devices/dax0.0/dax0.0", root.join("1:3"))
}

fn scenarios() -> Vec<Scenario<Vec<Row>>> {
    let well_formed = |root: &Path| device(root, &[("size", SIZE), ("align", ALIGN)]);
    let mut everything = size_and_alignment(ok(number(262_144_000)), ok(number(2_097_152)));
    everything.extend(without_nvdimm());
    everything.push((
        // Ours gets as far as mapping the device, which /dev/null refuses.
        "pread of 1 at 0",
        pread(1, 0),
        dies(fails(-libc::ENODEV, "mmap: No such device", unread(1))),
    ));
    vec![
        Scenario::new(
            "Device DAX with size 262144000 and align 2097152",
            well_formed,
            everything,
        ),
        Scenario::new(
            "1:3 -> devices/dax0.0/dax0.0, no align: devices/dax0.0/dax_region/align",
            |root| device_in_region(root, REGION_ALIGN),
            size_and_alignment(ok(number(262_144_000)), ok(number(1_073_741_824))),
        ),
        Scenario::new(
            "size \"12abc\\n\", align \"2M\\n\"",
            |root| device(root, &[("size", "12abc\n"), ("align", "2M\n")]),
            size_and_alignment(
                invalid_size("12abc\\n"),
                invalid_alignment("/sys/dev/char/1:3/align", "2M\\n"),
            ),
        ),
        Scenario::new(
            "size and align without their newline",
            |root| device(root, &[("size", "262144000"), ("align", "2097152")]),
            size_and_alignment(
                invalid_size("262144000"),
                invalid_alignment("/sys/dev/char/1:3/align", "2097152"),
            ),
        ),
        Scenario::new(
            "size empty, align \"-4096\\n\"",
            |root| device(root, &[("size", ""), ("align", "-4096\n")]),
            size_and_alignment(
                invalid_size(""),
                invalid_alignment("/sys/dev/char/1:3/align", "-4096\\n"),
            ),
        ),
        Scenario::new(
            "align 3000: not a power of two",
            |root| device(root, &[("size", SIZE), ("align", "3000\n")]),
            size_and_alignment(ok(number(262_144_000)), not_a_power_of_two(3000)),
        ),
        Scenario::new(
            "align 0: not a power of two",
            |root| device(root, &[("size", SIZE), ("align", "0\n")]),
            size_and_alignment(ok(number(262_144_000)), not_a_power_of_two(0)),
        ),
        Scenario::new(
            "dax_region/align \"2 MiB\\n\" (fallback, malformed)",
            |root| device_in_region(root, "2 MiB\n"),
            size_and_alignment(
                ok(number(262_144_000)),
                invalid_alignment("/sys/dev/char/1:3/../dax_region/align", "2 MiB\\n"),
            ),
        ),
        Scenario::new(
            "dax_region/align 12288 (fallback): not a power of two",
            |root| device_in_region(root, "12288\n"),
            size_and_alignment(ok(number(262_144_000)), not_a_power_of_two(12288)),
        ),
        Scenario::new(
            "no size, no align anywhere",
            |root| device(root, &[]),
            size_and_alignment(
                fails(
                    -libc::ENOENT,
                    "open \"/sys/dev/char/1:3/size\": No such file or directory",
                    untouched(),
                ),
                fails(
                    -libc::ENOENT,
                    "cannot read the alignment of Device DAX 1:3: neither \
                     /sys/dev/char/1:3/align nor a dax_region/align in one of its 8 nearest \
                     ancestor directories below /sys exists",
                    untouched(),
                ),
            ),
        ),
    ]
}

/// On the real sysfs `/dev/null` is no Device DAX (proves every staged tmpfs came off).
fn real_sysfs(fd: c_int) -> Result<(), String> {
    let api = ours();
    let mut src = garbage();
    let code = api.source_from_fd(&mut src, fd);
    if code == PMEM2_E_INVALID_FILE_TYPE && src.is_null() {
        Ok(())
    } else {
        Err(format!(
            "from_fd(/dev/null) on the real sysfs: {code}, {:?}",
            api.message()
        ))
    }
}

fn main() -> ExitCode {
    run_on_fake_sysfs(
        &scenarios(),
        |_, null| real_sysfs(null.as_raw_fd()),
        |reference, scenario, null| {
            let cases: Vec<Case> = scenario
                .expect
                .iter()
                .map(|(name, query, expect)| {
                    Case::new(
                        format!("{}: {name}", scenario.name),
                        Origin::Fd(null.as_raw_fd()),
                        query.clone(),
                        expect.clone(),
                    )
                })
                .collect();
            run_cases(&cases, reference)
        },
    )
}
