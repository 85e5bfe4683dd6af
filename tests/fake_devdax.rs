//! Device-DAX detection (SPEC §3) on the real kernel, with a fake `/sys/dev/char`.
//!
//! No machine in CI has a Device DAX, so this test builds the sysfs side of one: in a private
//! mount namespace it mounts a fresh tmpfs over `/sys/dev/char` for each scenario, lays out
//! `1:3/subsystem` (the entry of `/dev/null`) the way the scenario needs, and asks
//! `Source::from_fd` about a real `/dev/null` descriptor. The fcntl, fstat and readlinkat are
//! all real syscalls; only the sysfs contents are staged.
//!
//! `harness = false`: `main` runs single-threaded, which `unshare(CLONE_NEWNS)` for the whole
//! process wants. Mount propagation is made private first, so nothing is seen by the host.
//! Needs root (CAP_SYS_ADMIN); without it the test says `skipped` and passes, except in CI
//! (`CI=true`), where it fails.
//!
//! Output: one line per scenario, `ok - <name>` or `FAIL - <name>: <details>`; exit status 1
//! if any failed.

// Linux only: on Windows an empty crate, which checks but does not link (the Windows tests
// are elsewhere: scripts/wine-tests.sh).
#![cfg_attr(windows, no_main)]
#![cfg(not(windows))]

mod common;

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use common::fake_sysfs::{
    NOT_A_LINK, SUBSYSTEM_PATH, Scenario, TOO_LONG, enter_or_exit, entry_plain_file,
    entry_symlink_loop, long_dax_target, no_entry, run_scenarios, subsystem_directory,
    subsystem_link, subsystem_plain_file,
};
use common::{CountingLinux, libc_fstat};
use pmem2_source::codes::{
    PMEM2_E_DAX_REGION_NOT_FOUND, PMEM2_E_INVALID_ALIGNMENT_FORMAT,
    PMEM2_E_INVALID_ALIGNMENT_VALUE, PMEM2_E_INVALID_FILE_TYPE, PMEM2_E_INVALID_SIZE_FORMAT,
};
use pmem2_source::sysfs::{LINK_TARGET_CAPACITY, SysfsText};
use pmem2_source::{DeviceNumber, Errno, Error, FileType, Source};

fn null_device() -> DeviceNumber {
    DeviceNumber::from_raw(libc::makedev(1, 3))
}

/// A query's answer: the value, or the code and message of the failure.
type Answer<T> = Result<T, (i32, String)>;

/// What a scenario must produce.
enum Expect {
    DeviceDax,
    /// A Device DAX, and what its sysfs-backed queries answer (SPEC §5).
    Queries {
        size: Answer<u64>,
        alignment: Answer<usize>,
        numa_node: Answer<i32>,
    },
    Failure {
        error: Error,
        code: i32,
        message: String,
    },
}

fn not_dax(subsystem: &str) -> Expect {
    Expect::Failure {
        error: Error::NotDeviceDax {
            device: null_device(),
            subsystem: SysfsText::new(subsystem.as_bytes()),
        },
        code: PMEM2_E_INVALID_FILE_TYPE,
        message: format!(
            "character device 1:3 is not Device DAX: its subsystem is \"{subsystem}\""
        ),
    }
}

fn not_a_link() -> Expect {
    Expect::Failure {
        error: Error::SysfsNotALink {
            device: null_device(),
        },
        code: PMEM2_E_INVALID_FILE_TYPE,
        message: NOT_A_LINK.to_string(),
    }
}

fn too_long() -> Expect {
    Expect::Failure {
        error: Error::SysfsLinkTooLong {
            device: null_device(),
        },
        code: PMEM2_E_INVALID_FILE_TYPE,
        message: TOO_LONG.to_string(),
    }
}

fn unreadable(errno: Errno, text: &str) -> Expect {
    Expect::Failure {
        error: Error::SysfsUnreadable {
            device: null_device(),
            errno,
        },
        code: -errno.raw(),
        message: format!("readlink \"{SUBSYSTEM_PATH}\": {text}"),
    }
}

fn scenarios() -> Vec<Scenario<Expect>> {
    vec![
        Scenario::new(
            "subsystem -> ../../../bus/dax (Linux >= 5.1) is Device DAX",
            |root| subsystem_link(root, "../../../bus/dax"),
            Expect::DeviceDax,
        ),
        Scenario::new(
            "subsystem -> ../../../../class/dax (older kernels) is Device DAX",
            |root| subsystem_link(root, "../../../../class/dax"),
            Expect::DeviceDax,
        ),
        Scenario::new(
            "sysfs-shaped: 1:3 -> devices/dax0.0, whose subsystem -> bus/dax",
            |root| {
                fs::create_dir_all(root.join("devices/dax0.0"))?;
                symlink("../../../../bus/dax", root.join("devices/dax0.0/subsystem"))?;
                symlink("devices/dax0.0", root.join("1:3"))
            },
            Expect::DeviceDax,
        ),
        Scenario::new(
            "subsystem -> ../../../../class/mem is not Device DAX",
            |root| subsystem_link(root, "../../../../class/mem"),
            not_dax("mem"),
        ),
        Scenario::new(
            "subsystem -> ../../../bus/daxx is not Device DAX",
            |root| subsystem_link(root, "../../../bus/daxx"),
            not_dax("daxx"),
        ),
        Scenario::new(
            "subsystem is a plain file",
            subsystem_plain_file,
            not_a_link(),
        ),
        Scenario::new(
            "subsystem is a directory",
            subsystem_directory,
            not_a_link(),
        ),
        Scenario::new(
            "no 1:3 entry (empty tmpfs) is -ENOENT",
            no_entry,
            unreadable(Errno::ENOENT, "No such file or directory"),
        ),
        Scenario::new(
            "1:3 is a plain file: -ENOTDIR",
            entry_plain_file,
            unreadable(Errno::ENOTDIR, "Not a directory"),
        ),
        Scenario::new(
            "1:3 is a symlink loop: -ELOOP",
            entry_symlink_loop,
            unreadable(Errno::ELOOP, "Too many levels of symbolic links"),
        ),
        Scenario::new(
            "255-byte target ending in /dax fits and is Device DAX",
            |root| subsystem_link(root, &long_dax_target(LINK_TARGET_CAPACITY - 1)),
            Expect::DeviceDax,
        ),
        Scenario::new(
            "256-byte target ending in /dax fills the buffer: not Device DAX",
            |root| subsystem_link(root, &long_dax_target(LINK_TARGET_CAPACITY)),
            too_long(),
        ),
        Scenario::new(
            "257-byte target ending in /dax: not Device DAX",
            |root| subsystem_link(root, &long_dax_target(LINK_TARGET_CAPACITY + 1)),
            too_long(),
        ),
        Scenario::new(
            "4095-byte target (PATH_MAX - 1) ending in /dax: not Device DAX",
            |root| subsystem_link(root, &long_dax_target(4095)),
            too_long(),
        ),
        // EACCES (a `1:3` directory with mode 000) cannot be staged: root passes it with
        // CAP_DAC_OVERRIDE, and this test needs root. The scripted kernel covers EACCES.
        Scenario::new(
            "queries: size, align and numa_node attributes of the device",
            |root| {
                dax_with_attributes(root, &[("size", "262144000\n"), ("align", "2097152\n")])?;
                fs::write(root.join("1:3/numa_node"), "0\n")
            },
            Expect::Queries {
                size: Ok(262_144_000),
                alignment: Ok(2_097_152),
                numa_node: Ok(0),
            },
        ),
        Scenario::new(
            "queries: older kernels, dax_region/align in the parent directory",
            |root| {
                fs::create_dir_all(root.join("devices/region0/dax0.0/dax_region"))?;
                fs::create_dir_all(root.join("bus/dax"))?;
                let device = root.join("devices/region0/dax0.0/dax0.0");
                fs::create_dir_all(&device)?;
                symlink("../../../../bus/dax", device.join("subsystem"))?;
                fs::write(device.join("size"), "4194304\n")?;
                fs::write(
                    root.join("devices/region0/dax0.0/dax_region/align"),
                    "4096\n",
                )?;
                fs::write(root.join("devices/region0/numa_node"), "1\n")?;
                symlink("devices/region0/dax0.0/dax0.0", root.join("1:3"))
            },
            Expect::Queries {
                size: Ok(4_194_304),
                alignment: Ok(4096),
                numa_node: Ok(1),
            },
        ),
        Scenario::new(
            "queries: malformed size and alignment",
            |root| dax_with_attributes(root, &[("size", "12abc\n"), ("align", "2M\n")]),
            Expect::Queries {
                size: Err((
                    PMEM2_E_INVALID_SIZE_FORMAT,
                    "invalid size in \"/sys/dev/char/1:3/size\": \"12abc\\n\" is not a decimal \
                     number and a newline"
                        .to_string(),
                )),
                alignment: Err((
                    PMEM2_E_INVALID_ALIGNMENT_FORMAT,
                    "invalid alignment in \"/sys/dev/char/1:3/align\": \"2M\\n\" is not a \
                     decimal number and a newline"
                        .to_string(),
                )),
                numa_node: Err((PMEM2_E_DAX_REGION_NOT_FOUND, "unknown region".to_string())),
            },
        ),
        Scenario::new(
            "queries: alignment not a power of two, no size attribute",
            |root| dax_with_attributes(root, &[("align", "3000\n")]),
            Expect::Queries {
                size: Err((
                    -libc::ENOENT,
                    "open \"/sys/dev/char/1:3/size\": No such file or directory".to_string(),
                )),
                alignment: Err((
                    PMEM2_E_INVALID_ALIGNMENT_VALUE,
                    "alignment (3000) has to be a power of two".to_string(),
                )),
                numa_node: Err((PMEM2_E_DAX_REGION_NOT_FOUND, "unknown region".to_string())),
            },
        ),
        Scenario::new(
            "queries: size, align and numa_node are FIFOs: refused, never waited for",
            |root| {
                dax_with_attributes(root, &[])?;
                for name in ["size", "align", "numa_node"] {
                    mkfifo(&root.join("1:3").join(name))?;
                }
                Ok(())
            },
            Expect::Queries {
                size: Err(not_regular("size", "010000")),
                alignment: Err(not_regular("align", "010000")),
                numa_node: Err(not_regular("numa_node", "010000")),
            },
        ),
        Scenario::new(
            "queries: size and align are links to /dev/zero: not followed",
            |root| {
                dax_with_attributes(root, &[])?;
                symlink("/dev/zero", root.join("1:3/size"))?;
                symlink("/dev/zero", root.join("1:3/align"))
            },
            Expect::Queries {
                size: Err((
                    -libc::ELOOP,
                    "open \"/sys/dev/char/1:3/size\": Too many levels of symbolic links"
                        .to_string(),
                )),
                alignment: Err((
                    -libc::ELOOP,
                    "open \"/sys/dev/char/1:3/align\": Too many levels of symbolic links"
                        .to_string(),
                )),
                numa_node: Err((PMEM2_E_DAX_REGION_NOT_FOUND, "unknown region".to_string())),
            },
        ),
        Scenario::new(
            "queries: no alignment anywhere",
            |root| dax_with_attributes(root, &[("size", "4096\n")]),
            Expect::Queries {
                size: Ok(4096),
                alignment: Err((
                    -libc::ENOENT,
                    "cannot read the alignment of Device DAX 1:3: neither \
                     /sys/dev/char/1:3/align nor a dax_region/align in one of its 8 nearest \
                     ancestor directories below /sys exists"
                        .to_string(),
                )),
                numa_node: Err((PMEM2_E_DAX_REGION_NOT_FOUND, "unknown region".to_string())),
            },
        ),
    ]
}

/// What a query answers for an attribute that is not a regular file.
fn not_regular(attribute: &str, file_type: &str) -> (i32, String) {
    (
        -libc::EINVAL,
        format!(
            "open \"/sys/dev/char/1:3/{attribute}\": not a regular file (file type {file_type}), \
             as every sysfs attribute is"
        ),
    )
}

fn mkfifo(path: &Path) -> std::io::Result<()> {
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: `c_path` is a live NUL-terminated string.
    if unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The FIFOs in the staged tree at `dir` (links are not followed).
fn fifos_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(meta) = fs::symlink_metadata(entry.path()) else {
            continue;
        };
        if meta.file_type().is_fifo() {
            found.push(entry.path());
        } else if meta.is_dir() {
            found.extend(fifos_under(&entry.path()));
        }
    }
    found
}

/// Runs `check` while a watchdog thread stands by: if `check` has not finished within 5 s,
/// the watchdog opens every FIFO of the staged tree for writing, which releases a reader
/// blocked in `open`, and the scenario fails instead of hanging.
fn without_hanging(check: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    let fifos = fifos_under(Path::new("/sys/dev/char"));
    let (done, finished) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let mut released = false;
        while let Err(RecvTimeoutError::Timeout) = finished.recv_timeout(Duration::from_secs(5)) {
            released = true;
            for fifo in &fifos {
                let _ = fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(fifo);
            }
        }
        released
    });
    let outcome = check();
    drop(done);
    let released = watchdog.join().unwrap_or(true);
    match (released, outcome) {
        (true, outcome) => Err(format!(
            "blocked on a FIFO until the watchdog opened it ({outcome:?})"
        )),
        (false, outcome) => outcome,
    }
}

/// Every attribute a query opened (the counting backend's log) lies strictly below `/sys`:
/// where its `..` steps lead, resolved, is not `/sys` or outside it.
fn opened_below_sys(kernel: &CountingLinux) -> Result<(), String> {
    for entry in kernel.log() {
        let Some(path) = entry
            .strip_prefix("open(\"")
            .and_then(|rest| rest.strip_suffix("\")"))
        else {
            continue;
        };
        // Up to the last `..` (which exists whenever the device's directory does), or the
        // attribute's directory; what follows only goes further down.
        let directory = match path.rfind("/..") {
            Some(at) => Path::new(&path[..at + 3]),
            None => Path::new(path).parent().unwrap_or(Path::new("/")),
        };
        let resolved =
            fs::canonicalize(directory).map_err(|e| format!("{}: {e}", directory.display()))?;
        if !resolved.starts_with("/sys/") {
            return Err(format!("opened {path}, in {}", resolved.display()));
        }
    }
    Ok(())
}

/// `1:3` as a Device DAX (`subsystem -> ../bus/dax`, which resolves in the tmpfs) with these
/// attribute files.
fn dax_with_attributes(root: &std::path::Path, attributes: &[(&str, &str)]) -> std::io::Result<()> {
    fs::create_dir_all(root.join("bus/dax"))?;
    subsystem_link(root, "../bus/dax")?;
    for (name, contents) in attributes {
        fs::write(root.join("1:3").join(name), contents)?;
    }
    Ok(())
}

fn compare<T: PartialEq + std::fmt::Debug>(
    what: &str,
    got: Result<T, Error>,
    want: &Answer<T>,
) -> Result<(), String> {
    let got = got.map_err(|err| (err.code(), err.to_string()));
    if &got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

/// Checks one answer against what the scenario expects.
fn check(result: &Result<Source, Error>, expect: &Expect, null: &OwnedFd) -> Result<(), String> {
    match (expect, result) {
        (
            Expect::Queries {
                size,
                alignment,
                numa_node,
            },
            _,
        ) => {
            check(result, &Expect::DeviceDax, null)?;
            let source = result.as_ref().map_err(|err| err.to_string())?;
            compare("size", source.size(), size)?;
            compare("alignment", source.alignment(), alignment)?;
            compare("numa_node", source.numa_node(), numa_node)?;
            // Again through the counting backend, which logs what the searches of the
            // device's ancestors opened.
            let kernel = CountingLinux::new();
            compare("numa_node", source.numa_node_with(&kernel), numa_node)?;
            compare("alignment", source.alignment_with(&kernel), alignment)?;
            let _ = source.device_usc_with(&kernel);
            opened_below_sys(&kernel)
        }
        (Expect::DeviceDax, Ok(source)) => {
            let st = libc_fstat(null.as_raw_fd());
            let got = (
                source.file_type(),
                source.fd(),
                source.rdev(),
                source.dev(),
                source.ino(),
            );
            let want = (
                Some(FileType::DeviceDax),
                Ok(null.as_raw_fd()),
                Some(null_device()),
                Some(DeviceNumber::from_raw(st.st_dev)),
                Some(st.st_ino),
            );
            if got == want {
                Ok(())
            } else {
                Err(format!("got {got:?}, want {want:?}"))
            }
        }
        (Expect::DeviceDax, Err(err)) => Err(format!(
            "want Device DAX, got {err:?} ({}: {err})",
            err.code()
        )),
        (Expect::Failure { message, .. }, Ok(source)) => {
            Err(format!("want {message:?}, got {source:?}"))
        }
        (
            Expect::Failure {
                error,
                code,
                message,
            },
            Err(err),
        ) => {
            let got = (err, err.code(), err.to_string());
            let want = (error, *code, message.clone());
            if got == want {
                Ok(())
            } else {
                Err(format!("got {got:?}, want {want:?}"))
            }
        }
    }
}

/// Asks both `Source::from_fd` and the counting wrapper about the staged scenario, checks.
fn run(scenario: &Scenario<Expect>, null: &OwnedFd) -> Result<(), String> {
    let result = Source::from_fd(null.as_raw_fd());
    without_hanging(|| check(&result, &scenario.expect, null))?;

    let kernel = CountingLinux::new();
    let counted = Source::from_fd_with(&kernel, null.as_raw_fd());
    if counted != result {
        return Err(format!(
            "counting wrapper answered {counted:?}, from_fd {result:?}"
        ));
    }
    let fd = null.as_raw_fd();
    let want_log = vec![
        format!("fcntl_getfl({fd})"),
        format!("fstat({fd})"),
        format!("readlink(\"{SUBSYSTEM_PATH}\", {LINK_TARGET_CAPACITY})"),
    ];
    if kernel.calls() != 3 || kernel.log() != want_log {
        return Err(format!(
            "{} syscalls {:?}, want 3: {want_log:?}",
            kernel.calls(),
            kernel.log()
        ));
    }
    Ok(())
}

/// The real sysfs entry of /dev/null is `mem`, before and after the fake ones (which proves
/// every tmpfs came off again).
fn real_sysfs_check(null: &OwnedFd) -> Result<(), String> {
    check(&Source::from_fd(null.as_raw_fd()), &not_dax("mem"), null)
}

fn main() -> ExitCode {
    if let Err(status) = enter_or_exit() {
        return status;
    }
    run_scenarios(&scenarios(), real_sysfs_check, run)
}
