//! The std shim on a staged Device DAX: `/dev/zero` (1:5) with a fake sysfs entry, so that
//! size, alignment and NUMA node come from sysfs and `pread_mcsafe`/`pwrite_mcsafe` go
//! through a real shared mapping and the SIGBUS-safe copy (`MAP_SHARED` of `/dev/zero` gives
//! shared anonymous memory, which reads back zeroes in each new mapping).
//!
//! `harness = false`: a private mount namespace (see `tests/common/fake_sysfs.rs` in the
//! repository root) needs a single-threaded process. Needs root; skips outside CI without it.

// Linux only: on Windows an empty crate, which checks but does not link (the Windows tests
// are elsewhere: scripts/wine-tests.sh).
#![cfg_attr(windows, no_main)]
#![cfg(not(windows))]

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::ExitCode;

use common::fake_sysfs::{SYS_DEV_CHAR, enter_or_exit, on_tmpfs_at};
use pmem2_source_std::{Error, FileType, Source, codes};

/// `1:5` (`/dev/zero`) as a Device DAX with these attributes.
fn zero_as_dax(root: &Path, attributes: &[(&str, &str)]) -> io::Result<()> {
    fs::create_dir_all(root.join("bus/dax"))?;
    fs::create_dir(root.join("1:5"))?;
    symlink("../bus/dax", root.join("1:5/subsystem"))?;
    for (name, contents) in attributes {
        fs::write(root.join("1:5").join(name), contents)?;
    }
    Ok(())
}

fn expect<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

fn queries_and_io(zero: &File) -> Result<(), String> {
    let source = Source::try_from(zero).map_err(|e| format!("from_fd: {e}"))?;
    expect("file type", source.file_type(), Some(FileType::DeviceDax))?;
    expect("size", source.size().ok(), Some(8 << 20))?;
    expect("alignment", source.alignment().ok(), Some(2 << 20))?;
    expect("numa node", source.numa_node().ok(), Some(0))?;

    // A write across an alignment boundary, then a read: each goes through its own shared
    // mapping of /dev/zero, so the read sees fresh zeroes (the write's memory is gone).
    source
        .pwrite_mcsafe(b"persistent", (2 << 20) - 4)
        .map_err(|e| format!("pwrite: {e}"))?;
    let mut buf = [0xaau8; 16];
    source
        .pread_mcsafe(&mut buf, 4096)
        .map_err(|e| format!("pread: {e}"))?;
    expect("bytes read", buf, [0u8; 16])?;

    let err = source
        .pread_mcsafe(&mut buf, (8 << 20) - 8)
        .expect_err("past the end");
    expect(
        "out of range",
        err.code(),
        codes::PMEM2_E_LENGTH_OUT_OF_RANGE,
    )?;
    expect(
        "out-of-range message",
        err.to_string(),
        "size of read 16 from offset 8388600 goes beyond the file length 8".to_string(),
    )
}

fn malformed(zero: &File) -> Result<(), String> {
    let source = Source::try_from(zero).map_err(|e| format!("from_fd: {e}"))?;
    let err = source.size().expect_err("malformed size");
    expect("size code", err.code(), codes::PMEM2_E_INVALID_SIZE_FORMAT)?;
    let io: io::Error = err.into();
    expect("io kind", io.kind(), io::ErrorKind::InvalidData)?;
    expect(
        "code kept",
        Error::code_of(&io),
        Some(codes::PMEM2_E_INVALID_SIZE_FORMAT),
    )?;
    expect(
        "message",
        io.to_string(),
        "invalid size in \"/sys/dev/char/1:5/size\": \"8M\\n\" is not a decimal number and a \
         newline"
            .to_string(),
    )?;
    let err = source.alignment().expect_err("not a power of two");
    expect(
        "alignment code",
        err.code(),
        codes::PMEM2_E_INVALID_ALIGNMENT_VALUE,
    )
}

/// A name, the attribute files of `1:5`, and the check to run on `/dev/zero`.
type Scenario = (&'static str, &'static [(&'static str, &'static str)], Check);
type Check = fn(&File) -> Result<(), String>;

fn main() -> ExitCode {
    if let Err(status) = enter_or_exit() {
        return status;
    }
    let zero = match File::options().read(true).write(true).open("/dev/zero") {
        Ok(file) => file,
        Err(err) => {
            println!("FAIL - setup: open /dev/zero: {err}");
            return ExitCode::FAILURE;
        }
    };
    let scenarios: [Scenario; 2] = [
        (
            "std: size, alignment, NUMA node and mcsafe I/O of a staged Device DAX",
            &[
                ("size", "8388608\n"),
                ("align", "2097152\n"),
                ("numa_node", "0\n"),
            ],
            queries_and_io,
        ),
        (
            "std: malformed size and alignment, as io::Error",
            &[("size", "8M\n"), ("align", "12288\n")],
            malformed,
        ),
    ];
    let mut failed = 0;
    for (name, attributes, check) in scenarios {
        let outcome = on_tmpfs_at(
            SYS_DEV_CHAR,
            false,
            &|root| zero_as_dax(root, attributes),
            || check(&zero),
        );
        match outcome {
            Ok(()) => println!("ok - {name}"),
            Err(details) => {
                failed += 1;
                println!("FAIL - {name}: {details}");
            }
        }
    }
    println!("{} scenarios, {failed} failed", scenarios.len());
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
