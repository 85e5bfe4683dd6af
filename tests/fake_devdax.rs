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

mod common;

use std::ffi::CStr;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::ExitCode;

use common::{CountingLinux, in_ci, libc_fstat, must_open};
use pmem2_source::codes::PMEM2_E_INVALID_FILE_TYPE;
use pmem2_source::sysfs::{LINK_TARGET_CAPACITY, SubsystemName};
use pmem2_source::{DeviceNumber, Errno, Error, FileType, Source};

const SYS_DEV_CHAR: &CStr = c"/sys/dev/char";
const SUBSYSTEM_PATH: &str = "/sys/dev/char/1:3/subsystem";

fn null_device() -> DeviceNumber {
    DeviceNumber::from_raw(libc::makedev(1, 3))
}

/// What a scenario must produce.
enum Expect {
    DeviceDax,
    Failure {
        error: Error,
        code: i32,
        message: String,
    },
}

struct Scenario {
    name: &'static str,
    /// Lays out the scenario inside the fresh tmpfs mounted at `/sys/dev/char`.
    build: fn(&Path) -> io::Result<()>,
    expect: Expect,
}

/// `1:3/subsystem -> target`.
fn subsystem_link(root: &Path, target: &str) -> io::Result<()> {
    fs::create_dir(root.join("1:3"))?;
    symlink(target, root.join("1:3/subsystem"))
}

/// A link target of exactly `len` bytes ending in `/dax`.
fn long_dax_target(len: usize) -> String {
    let target = format!("{}/dax", "x".repeat(len - 4));
    assert_eq!(target.len(), len);
    target
}

fn not_dax(subsystem: &str) -> Expect {
    Expect::Failure {
        error: Error::NotDeviceDax {
            device: null_device(),
            subsystem: SubsystemName::new(subsystem.as_bytes()),
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
        message: format!(
            "\"{SUBSYSTEM_PATH}\" is not a symbolic link, so character device 1:3 is not \
             Device DAX"
        ),
    }
}

fn too_long() -> Expect {
    Expect::Failure {
        error: Error::SysfsLinkTooLong {
            device: null_device(),
        },
        code: PMEM2_E_INVALID_FILE_TYPE,
        message: format!(
            "the target of \"{SUBSYSTEM_PATH}\" does not fit in 255 bytes, so character \
             device 1:3 is not Device DAX"
        ),
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

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "subsystem -> ../../../bus/dax (Linux >= 5.1) is Device DAX",
            build: |root| subsystem_link(root, "../../../bus/dax"),
            expect: Expect::DeviceDax,
        },
        Scenario {
            name: "subsystem -> ../../../../class/dax (older kernels) is Device DAX",
            build: |root| subsystem_link(root, "../../../../class/dax"),
            expect: Expect::DeviceDax,
        },
        Scenario {
            name: "sysfs-shaped: 1:3 -> devices/dax0.0, whose subsystem -> bus/dax",
            build: |root| {
                fs::create_dir_all(root.join("devices/dax0.0"))?;
                symlink("../../../../bus/dax", root.join("devices/dax0.0/subsystem"))?;
                symlink("devices/dax0.0", root.join("1:3"))
            },
            expect: Expect::DeviceDax,
        },
        Scenario {
            name: "subsystem -> ../../../../class/mem is not Device DAX",
            build: |root| subsystem_link(root, "../../../../class/mem"),
            expect: not_dax("mem"),
        },
        Scenario {
            name: "subsystem -> ../../../bus/daxx is not Device DAX",
            build: |root| subsystem_link(root, "../../../bus/daxx"),
            expect: not_dax("daxx"),
        },
        Scenario {
            name: "subsystem is a plain file",
            build: |root| {
                fs::create_dir(root.join("1:3"))?;
                fs::write(root.join("1:3/subsystem"), "dax\n")
            },
            expect: not_a_link(),
        },
        Scenario {
            name: "subsystem is a directory",
            build: |root| fs::create_dir_all(root.join("1:3/subsystem")),
            expect: not_a_link(),
        },
        Scenario {
            name: "no 1:3 entry (empty tmpfs) is -ENOENT",
            build: |_| Ok(()),
            expect: unreadable(Errno::ENOENT, "No such file or directory"),
        },
        Scenario {
            name: "1:3 is a plain file: -ENOTDIR",
            build: |root| fs::write(root.join("1:3"), ""),
            expect: unreadable(Errno::ENOTDIR, "Not a directory"),
        },
        Scenario {
            name: "1:3 is a symlink loop: -ELOOP",
            build: |root| symlink("1:3", root.join("1:3")),
            expect: unreadable(Errno::ELOOP, "Too many levels of symbolic links"),
        },
        Scenario {
            name: "255-byte target ending in /dax fits and is Device DAX",
            build: |root| subsystem_link(root, &long_dax_target(LINK_TARGET_CAPACITY - 1)),
            expect: Expect::DeviceDax,
        },
        Scenario {
            name: "256-byte target ending in /dax fills the buffer: not Device DAX",
            build: |root| subsystem_link(root, &long_dax_target(LINK_TARGET_CAPACITY)),
            expect: too_long(),
        },
        Scenario {
            name: "257-byte target ending in /dax: not Device DAX",
            build: |root| subsystem_link(root, &long_dax_target(LINK_TARGET_CAPACITY + 1)),
            expect: too_long(),
        },
        Scenario {
            name: "4095-byte target (PATH_MAX - 1) ending in /dax: not Device DAX",
            build: |root| subsystem_link(root, &long_dax_target(4095)),
            expect: too_long(),
        },
        // EACCES (a `1:3` directory with mode 000) cannot be staged: root passes it with
        // CAP_DAC_OVERRIDE, and this test needs root. The scripted kernel covers EACCES.
    ]
}

fn errno_error(what: &str) -> String {
    format!("{what}: {}", io::Error::last_os_error())
}

fn mount_tmpfs(target: &CStr) -> Result<(), String> {
    // SAFETY: every pointer is a live NUL-terminated string for the duration of the call.
    let ret = unsafe {
        libc::mount(
            c"pmem2-fake-sysfs".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            c"mode=0755".as_ptr().cast(),
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(errno_error(&format!("mount tmpfs on {target:?}")))
    }
}

fn umount(target: &CStr) -> Result<(), String> {
    // SAFETY: `target` is a live NUL-terminated string.
    let ret = unsafe { libc::umount2(target.as_ptr(), 0) };
    if ret == 0 {
        Ok(())
    } else {
        Err(errno_error(&format!("umount {target:?}")))
    }
}

enum SetupError {
    /// unshare said EPERM: not root.
    NotPermitted(io::Error),
    Failed(String),
}

/// A private mount namespace for this process, with `/sys/dev/char` present in it.
fn enter_private_namespace() -> Result<(), SetupError> {
    // SAFETY: unshare takes flags only; the process is single-threaded (harness = false).
    let ret = unsafe { libc::unshare(libc::CLONE_NEWNS) };
    if ret != 0 {
        let err = io::Error::last_os_error();
        return Err(if err.raw_os_error() == Some(libc::EPERM) {
            SetupError::NotPermitted(err)
        } else {
            SetupError::Failed(format!("unshare(CLONE_NEWNS): {err}"))
        });
    }
    // Mounts made from here on must not propagate to the host's namespace.
    // SAFETY: "/" is a live NUL-terminated string; the other pointers may be null for a
    // propagation change.
    let ret = unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    if ret != 0 {
        return Err(SetupError::Failed(errno_error(
            "mount(NULL, \"/\", NULL, MS_REC|MS_PRIVATE)",
        )));
    }
    if !Path::new("/sys/dev/char").is_dir() {
        // /sys not mounted (some containers): give the namespace a tmpfs /sys to stage in.
        mount_tmpfs(c"/sys").map_err(SetupError::Failed)?;
        fs::create_dir_all("/sys/dev/char")
            .map_err(|e| SetupError::Failed(format!("mkdir /sys/dev/char: {e}")))?;
    }
    Ok(())
}

/// Checks one answer against what the scenario expects.
fn check(result: &Result<Source, Error>, expect: &Expect, null: &OwnedFd) -> Result<(), String> {
    match (expect, result) {
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

/// Stages one scenario, asks both `Source::from_fd` and the counting wrapper, checks.
fn run(scenario: &Scenario, null: &OwnedFd) -> Result<(), String> {
    let root = Path::new("/sys/dev/char");
    (scenario.build)(root).map_err(|e| format!("building the scenario: {e}"))?;

    let result = Source::from_fd(null.as_raw_fd());
    check(&result, &scenario.expect, null)?;

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

/// Mounts a fresh tmpfs over /sys/dev/char, runs the scenario, unmounts.
fn run_on_fresh_tmpfs(scenario: &Scenario, null: &OwnedFd) -> Result<(), String> {
    mount_tmpfs(SYS_DEV_CHAR)?;
    let outcome = run(scenario, null);
    let unmounted = umount(SYS_DEV_CHAR);
    outcome.and(unmounted)
}

/// The real sysfs entry of /dev/null is `mem`, before and after the fake ones (which proves
/// every tmpfs came off again).
fn real_sysfs_check(null: &OwnedFd) -> Result<(), String> {
    check(&Source::from_fd(null.as_raw_fd()), &not_dax("mem"), null)
}

fn main() -> ExitCode {
    match enter_private_namespace() {
        Ok(()) => {}
        Err(SetupError::NotPermitted(err)) if !in_ci() => {
            println!("skipped: needs root (unshare: {err})");
            return ExitCode::SUCCESS;
        }
        Err(SetupError::NotPermitted(err)) => {
            println!("FAIL - setup: unshare(CLONE_NEWNS): {err} (CI=true: this must run as root)");
            return ExitCode::FAILURE;
        }
        Err(SetupError::Failed(details)) => {
            println!("FAIL - setup: {details}");
            return ExitCode::FAILURE;
        }
    }

    let null = must_open(Path::new("/dev/null"), libc::O_RDWR);
    let mut failed = 0;
    let mut report = |name: &str, outcome: Result<(), String>| match outcome {
        Ok(()) => println!("ok - {name}"),
        Err(details) => {
            failed += 1;
            println!("FAIL - {name}: {details}");
        }
    };

    let real_sysfs = fs::symlink_metadata(SUBSYSTEM_PATH).is_ok();
    if real_sysfs {
        report(
            "real sysfs: /dev/null is mem (before)",
            real_sysfs_check(&null),
        );
    }
    let all = scenarios();
    for scenario in &all {
        report(scenario.name, run_on_fresh_tmpfs(scenario, &null));
    }
    if real_sysfs {
        report(
            "real sysfs: /dev/null is mem (after)",
            real_sysfs_check(&null),
        );
    }
    println!(
        "{} scenarios, {} failed",
        all.len() + if real_sysfs { 2 } else { 0 },
        failed
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
