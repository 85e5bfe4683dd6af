//! The `pmem2-source` command on a Device DAX, with a staged sysfs (see
//! `tests/common/fake_sysfs.rs`: a private mount namespace and a fresh tmpfs over
//! `/sys/dev/char` per scenario).
//!
//! `/dev/null` (1:3) is made to look like a Device DAX: `1:3/subsystem -> ../bus/dax`, with
//! `size`, `align` and `numa_node` attributes beside it. The command runs as a child process,
//! which shares the namespace. The listing scenarios (no PATH) also put a tmpfs over
//! `/sys/bus` (with `dax/devices/NAME/dev`) and one over `/dev` holding the device nodes
//! (`null`, and `dax0.0`… made with mknod, or a `char/1:3` link): the host's `/dev` has no
//! `/dev/dax0.0` to open, and may have no `/dev/char` (creating one there would change the
//! host's devtmpfs, which the private namespace does not isolate).
//!
//! `harness = false`: `unshare(CLONE_NEWNS)` wants a single-threaded process. Not root:
//! `skipped` and exit 0, except with `CI=true`: FAIL and exit 1.

// Linux only: on Windows an empty crate, which checks but does not link (the Windows tests
// are elsewhere: scripts/wine-tests.sh).
#![cfg_attr(windows, no_main)]
#![cfg(not(windows))]

#[path = "../../../tests/common/mod.rs"]
mod common;
mod support;

use std::ffi::{CStr, CString};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::Path;
use std::process::{ExitCode, Output};

use common::fake_sysfs::{Scenario, enter_or_exit, on_tmpfs_at, run_scenarios};
use serde_json::{Value, json};
use support::{json_lines, run, run_with_closed_pipe, stderr_text, stdout_lines};

/// A scenario's check: runs the command and compares.
type Check = Box<dyn Fn() -> Result<(), String>>;

const SIZE: &str = "size 250 MiB (262144000 bytes)";
const ALIGNMENT: &str = "alignment 2 MiB (2097152 bytes)";
const USABLE_DAX: &str = "Device DAX 1:3 (opened read-only)";
const SIZE_PATH: &str = "/sys/dev/char/1:3/size";

/// The sysfs attributes of the fake Device DAX (`None`: leave the attribute out).
#[derive(Clone, Copy)]
struct Attributes {
    size: Option<&'static str>,
    align: Option<&'static str>,
    numa_node: Option<&'static str>,
}

const GOOD: Attributes = Attributes {
    size: Some("262144000\n"),
    align: Some("2097152\n"),
    numa_node: Some("0\n"),
};

/// `1:3` in the staged `/sys/dev/char` at `root`: subsystem `dax`, and the attributes.
fn fake_dax(root: &Path, attributes: Attributes) -> io::Result<()> {
    fs::create_dir_all(root.join("bus/dax"))?;
    fs::create_dir(root.join("1:3"))?;
    symlink("../bus/dax", root.join("1:3/subsystem"))?;
    let files = [
        ("size", attributes.size),
        ("align", attributes.align),
        ("numa_node", attributes.numa_node),
    ];
    for (name, contents) in files {
        if let Some(contents) = contents {
            fs::write(root.join("1:3").join(name), contents)?;
        }
    }
    Ok(())
}

fn expect_eq<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

/// Exit status, stdout lines and an empty stderr.
fn expect_text(output: &Output, status: i32, lines: &[String]) -> Result<(), String> {
    expect_eq("stderr", stderr_text(output), String::new())?;
    expect_eq("stdout", stdout_lines(output), lines.to_vec())?;
    expect_eq("exit status", output.status.code(), Some(status))
}

/// Exit status and the JSON objects.
fn expect_json(output: &Output, status: i32, objects: &[Value]) -> Result<(), String> {
    expect_eq("stderr", stderr_text(output), String::new())?;
    expect_eq("objects", json_lines(output), objects.to_vec())?;
    expect_eq("exit status", output.status.code(), Some(status))
}

fn inode(path: &str) -> Result<u64, String> {
    fs::metadata(path)
        .map(|meta| meta.ino())
        .map_err(|e| format!("stat {path}: {e}"))
}

/// The JSON object of a usable fake Device DAX at `path`, with `extra` fields merged in.
fn dax_object(path: &str, numa_node: Value, extra: Value) -> Result<Value, String> {
    let mut object = json!({
        "path": path,
        "usable": true,
        "file_type": "devdax",
        "device": "1:3",
        "inode": inode(path)?,
        "access": "read-only",
        "size": 262_144_000,
        "alignment": 2_097_152,
        "numa_node": numa_node,
    });
    if let (Some(object), Some(extra)) = (object.as_object_mut(), extra.as_object()) {
        object.extend(extra.clone());
    }
    Ok(object)
}

/// `{"code":…,"name":…,"message":…}`.
fn error(code: i32, name: &str, message: &str) -> Value {
    json!({"code": code, "name": name, "message": message})
}

/// `/dev/null` checked as a path, as text and as JSON.
fn on_dev_null(text: Vec<String>, objects: Vec<Value>, status: i32) -> Check {
    Box::new(move || {
        expect_text(&run(&["/dev/null"]), status, &text)?;
        expect_json(&run(&["--json", "/dev/null"]), status, &objects)
    })
}

/// The message for a file judged but not opened because there is no `/proc`.
const NO_PROC: &str = "open read-only: /proc/self/fd: No such file or directory (without \
                       procfs the file judged cannot be reopened, and the path is not opened a \
                       second time)";

fn path_scenarios() -> Result<Vec<Scenario<Check>>, String> {
    let null = |numa_node| dax_object("/dev/null", numa_node, json!({}));
    let bad_size = "invalid size in \"/sys/dev/char/1:3/size\": \"250M\\n\" is not a decimal \
                    number and a newline";
    let bad_node = "unexpected contents of \"/sys/dev/char/1:3/numa_node\": \"zero\\n\"";
    let mut with_errors = null(Value::Null)?;
    with_errors["usable"] = json!(false);
    with_errors["size"] = Value::Null;
    with_errors["numa_node"] = Value::Null;
    with_errors["errors"] = json!({
        "size": error(-100_014, "PMEM2_E_INVALID_SIZE_FORMAT", bad_size),
        "numa_node": error(-100_027, "PMEM2_E_INVALID_DEV_FORMAT", bad_node),
    });
    Ok(vec![
        Scenario::new(
            "Device DAX: size 250 MiB, alignment 2 MiB, NUMA node 0",
            |root| fake_dax(root, GOOD),
            on_dev_null(
                vec![format!(
                    "/dev/null: {USABLE_DAX}, {SIZE}, {ALIGNMENT}, NUMA node 0"
                )],
                vec![null(json!(0))?],
                0,
            ),
        ),
        Scenario::new(
            "Device DAX with --write: opened read-write",
            |root| fake_dax(root, GOOD),
            Box::new(move || {
                let line = format!(
                    "/dev/null: Device DAX 1:3 (opened read-write), {SIZE}, {ALIGNMENT}, \
                     NUMA node 0"
                );
                expect_text(&run(&["--write", "/dev/null"]), 0, &[line])?;
                let object = dax_object("/dev/null", json!(0), json!({"access": "read-write"}))?;
                expect_json(&run(&["--write", "--json", "/dev/null"]), 0, &[object])
            }),
        ),
        Scenario::new(
            "--write on a read-only file system: EROFS, not usable; read-only: usable",
            |root| fake_dax(root, GOOD),
            Box::new(|| {
                remount_read_only(c"/sys/dev/char")?;
                let path = "/sys/dev/char/1:3/size";
                let output = run(&["--write", path]);
                let line = format!("{path}: EROFS (-30): open read-write: Read-only file system");
                expect_text(&output, 1, &[line])?;
                let output = run(&[path]);
                expect_eq("exit status", output.status.code(), Some(0))?;
                expect_eq("stdout", stdout_lines(&output).len(), 1)
            }),
        ),
        Scenario::new(
            "no /proc: what would be opened is judged, then reported, not opened by its path",
            |root| fake_dax(root, GOOD),
            Box::new(|| {
                let not_dir = "cannot set fd to directory in pmem2_source_from_fd";
                let lines = [
                    format!("/dev/null: ENOENT (-2): {NO_PROC}"),
                    format!("Cargo.toml: ENOENT (-2): {NO_PROC}"),
                    format!("/tmp: PMEM2_E_INVALID_FILE_TYPE (-100005): {not_dir}"),
                ];
                on_tmpfs_at(c"/proc", false, &|_| Ok(()), || {
                    expect_text(&run(&["/dev/null", "Cargo.toml", "/tmp"]), 1, &lines)
                })
            }),
        ),
        Scenario::new(
            "no numa_node: no NUMA node shown, still usable",
            |root| {
                let numa_node = None;
                fake_dax(root, Attributes { numa_node, ..GOOD })
            },
            on_dev_null(
                vec![format!("/dev/null: {USABLE_DAX}, {SIZE}, {ALIGNMENT}")],
                vec![null(Value::Null)?],
                0,
            ),
        ),
        Scenario::new(
            "malformed size and numa_node: field errors, not usable",
            |root| {
                let size = Some("250M\n");
                let numa_node = Some("zero\n");
                fake_dax(
                    root,
                    Attributes {
                        size,
                        numa_node,
                        ..GOOD
                    },
                )
            },
            on_dev_null(
                vec![format!(
                    "/dev/null: {USABLE_DAX}, size: PMEM2_E_INVALID_SIZE_FORMAT (-100014): \
                     {bad_size}, {ALIGNMENT}, NUMA node: PMEM2_E_INVALID_DEV_FORMAT \
                     (-100027): {bad_node}"
                )],
                vec![with_errors],
                1,
            ),
        ),
        Scenario::new(
            "unreadable size (a directory): refused unread, not usable",
            |root| {
                fake_dax(root, Attributes { size: None, ..GOOD })?;
                fs::create_dir(root.join("1:3/size"))
            },
            Box::new(|| {
                let output = run(&["--json", "/dev/null"]);
                let object = json_lines(&output).pop().unwrap_or_default();
                expect_eq("usable", &object["usable"], &json!(false))?;
                expect_eq("size", &object["size"], &Value::Null)?;
                expect_eq("alignment", &object["alignment"], &json!(2_097_152))?;
                let size_error = &object["errors"]["size"];
                expect_eq("size code", &size_error["code"], &json!(-libc::EINVAL))?;
                let message = size_error["message"].as_str().unwrap_or_default();
                if !message.contains(SIZE_PATH) || !message.contains("not a regular file") {
                    return Err(format!("size error {size_error}"));
                }
                expect_eq("exit status", output.status.code(), Some(1))
            }),
        ),
    ])
}

/// What the listing scenarios put in `/sys/bus/dax/devices` and `/dev`.
#[derive(Clone, Copy)]
struct Machine {
    /// `None`: no `/sys/bus/dax/devices` at all.
    bus_devices: Option<&'static [&'static str]>,
    /// Device nodes 1:3 in `/dev`, besides `null`.
    nodes: &'static [&'static str],
    /// Links in `/dev/char`, to `../null`.
    char_links: &'static [&'static str],
}

/// Makes the mount at `target` (a staged tmpfs) read-only.
fn remount_read_only(target: &CStr) -> Result<(), String> {
    let flags = libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NOEXEC;
    // SAFETY: `target` is a live NUL-terminated string; the other pointers may be null for a
    // remount that changes flags only.
    let ret = unsafe {
        libc::mount(
            std::ptr::null(),
            target.as_ptr(),
            std::ptr::null(),
            flags | libc::MS_NODEV,
            std::ptr::null(),
        )
    };
    if ret == 0 {
        Ok(())
    } else {
        Err(format!(
            "remount {target:?} read-only: {}",
            io::Error::last_os_error()
        ))
    }
}

/// A character device node 1:3 at `path`.
fn mknod_null(path: &Path) -> io::Result<()> {
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: `c_path` is a live NUL-terminated string; mknod reads nothing else of ours.
    let ret = unsafe { libc::mknod(c_path.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
    if ret == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `/sys/bus` (tmpfs) as the machine has it.
fn build_bus(root: &Path, machine: Machine) -> io::Result<()> {
    let Some(names) = machine.bus_devices else {
        return Ok(());
    };
    let devices = root.join("dax/devices");
    fs::create_dir_all(&devices)?;
    for name in names {
        fs::create_dir(devices.join(name))?;
        fs::write(devices.join(name).join("dev"), "1:3\n")?;
    }
    Ok(())
}

/// `/dev` (tmpfs) as the machine has it: `null` (the parent opens it for the child's
/// stdin), the nodes and the links.
fn build_dev(root: &Path, machine: Machine) -> io::Result<()> {
    mknod_null(&root.join("null"))?;
    for node in machine.nodes {
        mknod_null(&root.join(node))?;
    }
    if !machine.char_links.is_empty() {
        fs::create_dir(root.join("char"))?;
    }
    for link in machine.char_links {
        symlink("../null", root.join("char").join(link))?;
    }
    Ok(())
}

/// Stages the machine over `/sys/bus` and `/dev` around `check`.
fn on_machine(machine: Machine, check: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    // Where /sys is the namespace's own tmpfs (no sysfs in the container), make the mount point.
    if !Path::new("/sys/bus").is_dir() {
        fs::create_dir_all("/sys/bus").map_err(|e| format!("mkdir /sys/bus: {e}"))?;
    }
    on_tmpfs_at(c"/sys/bus", false, &|root| build_bus(root, machine), || {
        on_tmpfs_at(c"/dev", true, &|root| build_dev(root, machine), check)
    })
}

/// A listing scenario: `check` runs with the machine staged.
fn listing(
    name: &str,
    machine: Machine,
    check: impl Fn() -> Result<(), String> + 'static,
) -> Scenario<Check> {
    Scenario::new(
        name,
        |root| fake_dax(root, GOOD),
        Box::new(move || on_machine(machine, &check)),
    )
}

/// The text line of a usable fake Device DAX labelled `label`.
fn dax_line(label: &str) -> String {
    format!("{label}: {USABLE_DAX}, {SIZE}, {ALIGNMENT}, NUMA node 0")
}

/// With no devices: the note on stdout (text) or stderr (JSON), exit 0.
fn expect_none_found(why: &str) -> Result<(), String> {
    let note = format!("no Device DAX devices found (/sys/bus/dax/devices {why})");
    expect_text(&run::<&str>(&[]), 0, std::slice::from_ref(&note))?;
    let json = run(&["--json"]);
    expect_eq("stdout", json.stdout.as_slice(), &[])?;
    expect_eq(
        "stderr",
        stderr_text(&json),
        format!("pmem2-source: {note}\n"),
    )?;
    expect_eq("exit status", json.status.code(), Some(0))
}

fn listing_scenarios() -> Vec<Scenario<Check>> {
    vec![
        listing(
            "listing: dax1.0 and dax0.0, opened as /dev/NAME, in name order",
            Machine {
                bus_devices: Some(&["dax1.0", "dax0.0"]),
                nodes: &["dax0.0", "dax1.0"],
                char_links: &[],
            },
            || {
                let lines = [dax_line("/dev/dax0.0"), dax_line("/dev/dax1.0")];
                expect_text(&run::<&str>(&[]), 0, &lines)?;
                let objects = [
                    dax_object("/dev/dax0.0", json!(0), json!({"dax_device": "dax0.0"}))?,
                    dax_object("/dev/dax1.0", json!(0), json!({"dax_device": "dax1.0"}))?,
                ];
                expect_json(&run(&["--json"]), 0, &objects)
            },
        ),
        listing(
            "listing: no /dev/dax0.0, opened as /dev/char/1:3",
            Machine {
                bus_devices: Some(&["dax0.0"]),
                nodes: &[],
                char_links: &["1:3"],
            },
            || {
                let lines = [dax_line("/dev/char/1:3 (dax0.0)")];
                expect_text(&run::<&str>(&[]), 0, &lines)?;
                let object =
                    dax_object("/dev/char/1:3", json!(0), json!({"dax_device": "dax0.0"}))?;
                expect_json(&run(&["--json"]), 0, &[object])
            },
        ),
        listing(
            "listing: no device node at all: ENOENT for /dev/dax0.0",
            Machine {
                bus_devices: Some(&["dax0.0"]),
                nodes: &[],
                char_links: &[],
            },
            || {
                let message = "open: No such file or directory";
                let lines = [format!("/dev/dax0.0: ENOENT (-2): {message}")];
                expect_text(&run::<&str>(&[]), 1, &lines)?;
                let object = json!({
                    "path": "/dev/dax0.0",
                    "dax_device": "dax0.0",
                    "usable": false,
                    "error": error(-2, "ENOENT", message),
                });
                expect_json(&run(&["--json"]), 1, &[object])
            },
        ),
        listing(
            "listing: empty /sys/bus/dax/devices",
            Machine {
                bus_devices: Some(&[]),
                nodes: &["dax0.0"],
                char_links: &[],
            },
            || expect_none_found("is empty"),
        ),
        listing(
            "listing: no /sys/bus/dax/devices",
            Machine {
                bus_devices: None,
                nodes: &["dax0.0"],
                char_links: &[],
            },
            || expect_none_found("does not exist"),
        ),
    ]
}

/// `/sys/bus/dax/devices` is a regular file: the listing fails (ENOTDIR), and says so on
/// stderr; a closed stderr loses the message, not the exit status, and does not panic.
fn listing_fails() -> Scenario<Check> {
    Scenario::new(
        "listing fails: exit 1, also with stderr a closed pipe (no panic)",
        |root| fake_dax(root, GOOD),
        Box::new(|| {
            if !Path::new("/sys/bus").is_dir() {
                fs::create_dir_all("/sys/bus").map_err(|e| format!("mkdir /sys/bus: {e}"))?;
            }
            let build = |root: &Path| {
                fs::create_dir(root.join("dax"))?;
                fs::write(root.join("dax/devices"), "")
            };
            on_tmpfs_at(c"/sys/bus", false, &build, || {
                let output = run::<&str>(&[]);
                expect_eq("stdout", output.stdout.as_slice(), &[])?;
                expect_eq(
                    "stderr",
                    stderr_text(&output),
                    "pmem2-source: cannot list Device DAX devices: /sys/bus/dax/devices: Not a \
                     directory (os error 20)\n"
                        .to_string(),
                )?;
                expect_eq("exit status", output.status.code(), Some(1))?;
                for args in [&[][..], &["--json"]] {
                    let output = run_with_closed_pipe(2, args);
                    expect_eq("stdout", output.stdout.as_slice(), &[])?;
                    expect_eq("exit status", output.status.code(), Some(1))?;
                }
                Ok(())
            })
        }),
    )
}

/// The real sysfs: `/dev/null` is `mem`, not Device DAX (before and after the fake ones).
fn real_sysfs() -> Result<(), String> {
    let message = "character device 1:3 is not Device DAX: its subsystem is \"mem\"";
    let line = format!("/dev/null: PMEM2_E_INVALID_FILE_TYPE (-100005): {message}");
    expect_text(&run(&["/dev/null"]), 1, &[line])
}

fn main() -> ExitCode {
    if let Err(status) = enter_or_exit() {
        return status;
    }
    // Built in the namespace: the expected inodes are those of the staged nodes.
    let mut scenarios = match path_scenarios() {
        Ok(scenarios) => scenarios,
        Err(details) => {
            println!("FAIL - setup: {details}");
            return ExitCode::FAILURE;
        }
    };
    scenarios.extend(listing_scenarios());
    scenarios.push(listing_fails());
    run_scenarios(
        &scenarios,
        |_| real_sysfs(),
        |scenario, _| (scenario.expect)(),
    )
}
