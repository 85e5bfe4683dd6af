//! A staged `/sys/dev/char` for the Device-DAX tests (`harness = false` binaries).
//!
//! In a private mount namespace (`unshare(CLONE_NEWNS)`, then `/` made private recursively,
//! so nothing is seen by the host) each scenario gets a fresh tmpfs over `/sys/dev/char`,
//! lays out `1:3/subsystem` (the entry of `/dev/null`) as it needs, and asks about a real
//! `/dev/null` descriptor. Needs root (CAP_SYS_ADMIN).
//!
//! Output: one line per scenario, `ok - <name>` or `FAIL - <name>: <details>`, then a count;
//! exit status 1 if any failed.

use std::ffi::CStr;
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::ExitCode;

use super::{in_ci, must_open};

pub const SYS_DEV_CHAR: &CStr = c"/sys/dev/char";
/// The sysfs entry of `/dev/null` (1:3) that every scenario stages.
pub const SUBSYSTEM_PATH: &str = "/sys/dev/char/1:3/subsystem";
/// The core's message when `subsystem` is there but not a symbolic link.
pub const NOT_A_LINK: &str = "\"/sys/dev/char/1:3/subsystem\" is not a symbolic link, so \
                              character device 1:3 is not Device DAX";
/// The core's message when the link target fills the whole buffer.
pub const TOO_LONG: &str = "the target of \"/sys/dev/char/1:3/subsystem\" does not fit in 255 \
                            bytes, so character device 1:3 is not Device DAX";

/// `1:3/subsystem -> target`, in the staged `/sys/dev/char` at `root`.
pub fn subsystem_link(root: &Path, target: &str) -> io::Result<()> {
    fs::create_dir(root.join("1:3"))?;
    symlink(target, root.join("1:3/subsystem"))
}

/// `1:3/subsystem` is a plain file (holding `dax`), not a link.
pub fn subsystem_plain_file(root: &Path) -> io::Result<()> {
    fs::create_dir(root.join("1:3"))?;
    fs::write(root.join("1:3/subsystem"), "dax\n")
}

/// `1:3/subsystem` is a directory, not a link.
pub fn subsystem_directory(root: &Path) -> io::Result<()> {
    fs::create_dir_all(root.join("1:3/subsystem"))
}

/// No `1:3` entry at all (the tmpfs stays empty).
pub fn no_entry(_root: &Path) -> io::Result<()> {
    Ok(())
}

/// `1:3` is a plain file, so `1:3/subsystem` is ENOTDIR.
pub fn entry_plain_file(root: &Path) -> io::Result<()> {
    fs::write(root.join("1:3"), "")
}

/// `1:3` is a link to itself, so `1:3/subsystem` is ELOOP.
pub fn entry_symlink_loop(root: &Path) -> io::Result<()> {
    symlink("1:3", root.join("1:3"))
}

/// A link target of exactly `len` bytes ending in `/dax`.
pub fn long_dax_target(len: usize) -> String {
    let target = format!("{}/dax", "x".repeat(len - 4));
    assert_eq!(target.len(), len);
    target
}

fn errno_error(what: &str) -> String {
    format!("{what}: {}", io::Error::last_os_error())
}

fn mount_tmpfs(target: &CStr) -> Result<(), String> {
    mount_tmpfs_with(target, libc::MS_NODEV)
}

/// A tmpfs at `target`, `MS_NOSUID | MS_NOEXEC` and the `extra` flags.
fn mount_tmpfs_with(target: &CStr, extra: libc::c_ulong) -> Result<(), String> {
    // SAFETY: every pointer is a live NUL-terminated string for the duration of the call.
    let ret = unsafe {
        libc::mount(
            c"pmem2-fake-sysfs".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NOEXEC | extra,
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

/// Enters the private namespace, or says why not: `Err` holds the status `main` returns
/// (success for a skip outside CI, failure otherwise).
pub fn enter_or_exit() -> Result<(), ExitCode> {
    match enter_private_namespace() {
        Ok(()) => Ok(()),
        Err(SetupError::NotPermitted(err)) => {
            Err(cannot_run(&format!("needs root (unshare: {err})")))
        }
        Err(SetupError::Failed(details)) => {
            println!("FAIL - setup: {details}");
            Err(ExitCode::FAILURE)
        }
    }
}

/// For a `harness = false` test that cannot run here: a skip (status 0) outside CI, a
/// failure (status 1) in CI, where nothing may be skipped.
pub fn cannot_run(why: &str) -> ExitCode {
    if in_ci() {
        println!("FAIL - setup: {why} (CI=true: nothing may be skipped)");
        ExitCode::FAILURE
    } else {
        println!("skipped: {why}");
        ExitCode::SUCCESS
    }
}

/// Lays out a scenario inside the fresh tmpfs mounted at `/sys/dev/char` (its argument).
pub type Build = Box<dyn Fn(&Path) -> io::Result<()>>;

/// One staged layout of `/sys/dev/char` and what it must produce.
pub struct Scenario<E> {
    pub name: String,
    pub build: Build,
    pub expect: E,
}

impl<E> Scenario<E> {
    pub fn new(
        name: impl Into<String>,
        build: impl Fn(&Path) -> io::Result<()> + 'static,
        expect: E,
    ) -> Scenario<E> {
        Scenario {
            name: name.into(),
            build: Box::new(build),
            expect,
        }
    }
}

/// Mounts a fresh tmpfs over `/sys/dev/char`, lays it out with `build`, runs `check`,
/// unmounts.
fn on_fresh_tmpfs(
    build: &dyn Fn(&Path) -> io::Result<()>,
    check: impl FnOnce() -> Result<(), String>,
) -> Result<(), String> {
    on_tmpfs_at(SYS_DEV_CHAR, false, build, check)
}

/// Mounts a fresh tmpfs over the directory `target` (in the private namespace; device nodes
/// in it can be opened only if `devices`), lays it out with `build` (given `target`), runs
/// `check`, unmounts.
pub fn on_tmpfs_at(
    target: &CStr,
    devices: bool,
    build: &dyn Fn(&Path) -> io::Result<()>,
    check: impl FnOnce() -> Result<(), String>,
) -> Result<(), String> {
    mount_tmpfs_with(target, if devices { 0 } else { libc::MS_NODEV })?;
    let root = Path::new(target.to_str().map_err(|e| format!("{target:?}: {e}"))?);
    let outcome = build(root)
        .map_err(|e| format!("building {}: {e}", root.display()))
        .and_then(|()| check());
    let unmounted = umount(target);
    outcome.and(unmounted)
}

/// The rest of `main`, in the private namespace: with `/dev/null` open `O_RDWR`, `check`s
/// every scenario on a fresh tmpfs; where the real sysfs has `/dev/null`'s entry (not in
/// some containers), `real` checks it before and after (which proves every tmpfs came off).
/// Prints a line per check and returns the exit status.
pub fn run_scenarios<E>(
    scenarios: &[Scenario<E>],
    real: impl Fn(&OwnedFd) -> Result<(), String>,
    check: impl Fn(&Scenario<E>, &OwnedFd) -> Result<(), String>,
) -> ExitCode {
    let null = must_open(Path::new("/dev/null"), libc::O_RDWR);
    let real_sysfs = fs::symlink_metadata(SUBSYSTEM_PATH).is_ok();
    let mut report = Report::default();
    if real_sysfs {
        report.record("real sysfs: /dev/null is mem (before)", real(&null));
    }
    for scenario in scenarios {
        let outcome = on_fresh_tmpfs(&*scenario.build, || check(scenario, &null));
        report.record(&scenario.name, outcome);
    }
    if real_sysfs {
        report.record("real sysfs: /dev/null is mem (after)", real(&null));
    }
    report.finish()
}

/// The `ok - …` / `FAIL - …` lines and the exit status.
#[derive(Debug, Default)]
pub struct Report {
    total: usize,
    failed: usize,
}

impl Report {
    pub fn record(&mut self, name: &str, outcome: Result<(), String>) {
        self.total += 1;
        match outcome {
            Ok(()) => println!("ok - {name}"),
            Err(details) => {
                self.failed += 1;
                println!("FAIL - {name}: {details}");
            }
        }
    }

    pub fn finish(self) -> ExitCode {
        println!("{} scenarios, {} failed", self.total, self.failed);
        if self.failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}
