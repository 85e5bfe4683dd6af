//! The `pmem2-source` command on real paths.

#![cfg(not(windows))] // Linux only: scripts/wine-tests.sh has the Windows tests.

#[path = "../../../tests/common/mod.rs"]
mod common;
mod support;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::{TempDir, make_fifo};
use serde_json::{Value, json};
use support::{
    device, error_of, json_lines, page_size, page_size_text, run, stderr_text, stdout_lines,
};

const DIRECTORY: &str = "cannot set fd to directory in pmem2_source_from_fd";
const NULL_NOT_DAX: &str = "character device 1:3 is not Device DAX: its subsystem is \"mem\"";
const NO_SUCH_PATH: &str = "/nonexistent/pmem2-source-test";

/// `PATH: regular file on device M:m, inode N (opened read-write)`, for the file at `path`.
fn regular_prefix(path: &str) -> String {
    let meta = std::fs::metadata(path).expect("stat");
    format!(
        "{path}: regular file on device {}, inode {} (opened read-write)",
        device(meta.dev()),
        meta.ino()
    )
}

#[test]
fn regular_file_shows_size_and_alignment() {
    let dir = TempDir::new("cli-size");
    let file = dir.file("data", &[7; 6483]);
    let path = file.to_str().expect("utf-8 temp path");
    let output = run(&[path]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(
        stdout_lines(&output),
        [format!(
            "{}, size 6.3 KiB (6483 bytes), alignment {}",
            regular_prefix(path),
            page_size_text()
        )]
    );
}

#[test]
fn exact_sizes_have_no_decimal() {
    let dir = TempDir::new("cli-exact");
    let empty = dir.file("empty", b"");
    let one = dir.file("one", b"x");
    let mib = dir.join("mib");
    std::fs::File::create(&mib)
        .and_then(|file| file.set_len(3 << 20))
        .expect("3 MiB sparse file");
    let paths = [&empty, &one, &mib].map(|path| path.to_str().expect("utf-8").to_owned());
    let output = run(&paths);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let alignment = page_size_text();
    assert_eq!(
        stdout_lines(&output),
        [
            format!(
                "{}, size 0 B (0 bytes), alignment {alignment}",
                regular_prefix(&paths[0])
            ),
            format!(
                "{}, size 1 B (1 byte), alignment {alignment}",
                regular_prefix(&paths[1])
            ),
            format!(
                "{}, size 3 MiB (3145728 bytes), alignment {alignment}",
                regular_prefix(&paths[2])
            ),
        ]
    );
}

#[test]
fn one_line_per_path_and_failure_status() {
    let output = run(&["Cargo.toml", "/dev/null", "/tmp", NO_SUCH_PATH]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let lines = stdout_lines(&output);
    assert_eq!(lines.len(), 4, "{lines:?}");
    let size = std::fs::metadata("Cargo.toml").expect("stat").len();
    assert!(
        lines[0].starts_with(&format!("{}, size ", regular_prefix("Cargo.toml"))),
        "{lines:?}"
    );
    assert!(
        lines[0].ends_with(&format!(" ({size} bytes), alignment {}", page_size_text())),
        "{lines:?}"
    );
    assert_eq!(
        lines[1],
        format!("/dev/null: PMEM2_E_INVALID_FILE_TYPE (-100005): {NULL_NOT_DAX}")
    );
    // A directory cannot be opened read-write (EISDIR): the read-only retry reaches the check.
    assert_eq!(
        lines[2],
        format!("/tmp: PMEM2_E_INVALID_FILE_TYPE (-100005): {DIRECTORY}")
    );
    assert_eq!(
        lines[3],
        format!("{NO_SUCH_PATH}: ENOENT (-2): open: No such file or directory")
    );
    assert!(output.stderr.is_empty(), "{}", stderr_text(&output));
}

#[test]
fn json_lines_field_by_field() {
    let dir = TempDir::new("cli-json");
    let file = dir.file("data", &[0; 5000]);
    let path = file.to_str().expect("utf-8 temp path");
    let meta = std::fs::metadata(path).expect("stat");
    let output = run(&["--json", path, "/tmp", NO_SUCH_PATH, "/dev/null"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(output.stderr.is_empty(), "{}", stderr_text(&output));
    let objects = json_lines(&output);
    assert_eq!(objects.len(), 4, "{objects:?}");

    let usable = &objects[0];
    assert_eq!(usable["path"], path);
    assert_eq!(usable["usable"], true);
    assert_eq!(usable["file_type"], "regular");
    assert_eq!(usable["device"], device(meta.dev()));
    assert_eq!(usable["inode"], meta.ino());
    assert_eq!(usable["access"], "read-write");
    assert_eq!(usable["size"], 5000);
    assert_eq!(usable["alignment"], page_size());
    // A temp file is on no NVDIMM region: no NUMA node, and that is no error.
    assert_eq!(usable["numa_node"], Value::Null);
    let keys: Vec<&str> = usable
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut want = [
        "path",
        "usable",
        "file_type",
        "device",
        "inode",
        "access",
        "size",
        "alignment",
        "numa_node",
    ];
    want.sort_unstable();
    assert_eq!(keys, want, "no errors, path_bytes or dax_device here");

    let failures = [
        ("/tmp", -100_005, "PMEM2_E_INVALID_FILE_TYPE", DIRECTORY),
        (
            NO_SUCH_PATH,
            -2,
            "ENOENT",
            "open: No such file or directory",
        ),
        (
            "/dev/null",
            -100_005,
            "PMEM2_E_INVALID_FILE_TYPE",
            NULL_NOT_DAX,
        ),
    ];
    for (object, (path, code, name, message)) in objects[1..].iter().zip(failures) {
        assert_eq!(object["path"], path);
        assert_eq!(object["usable"], false);
        assert_eq!(
            error_of(&object["error"]),
            (code, name, message),
            "{object}"
        );
        assert_eq!(object.as_object().expect("object").len(), 3, "{object}");
    }
}

#[test]
fn json_keeps_odd_paths() {
    let dir = TempDir::new("cli-odd");
    let quoted = dir.file("say \"hi\"\\\n\t", b"hello");
    let raw = dir.path().join(OsStr::from_bytes(b"caf\xe9"));
    std::fs::write(&raw, b"latin-1").expect("write non-UTF-8 name");
    let output = run(&[OsStr::new("--json"), quoted.as_os_str(), raw.as_os_str()]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let objects = json_lines(&output);
    assert_eq!(objects[0]["path"], quoted.to_str().expect("utf-8"));
    assert_eq!(objects[0]["size"], 5);
    assert!(objects[0].get("path_bytes").is_none());
    let lossy = raw.to_string_lossy();
    assert!(lossy.ends_with("caf\u{fffd}"), "{lossy}");
    assert_eq!(objects[1]["path"], json!(lossy));
    assert_eq!(objects[1]["path_bytes"], json!(raw.as_os_str().as_bytes()));
    assert_eq!(objects[1]["size"], 7);
}

#[test]
fn fifo_does_not_block() {
    let dir = TempDir::new("cli-fifo");
    let fifo = dir.join("fifo");
    make_fifo(&fifo);
    let fifo_arg = fifo.to_str().expect("utf-8 temp path");
    let output = run(&[fifo_arg]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stdout_lines(&output),
        [format!(
            "{fifo_arg}: PMEM2_E_INVALID_FILE_TYPE (-100005): file type 010000 not supported"
        )]
    );
}

/// With no PATH the command lists the machine's Device DAX devices; where there are none
/// (every CI machine), it says so and exits 0. `tests/fake_devdax.rs` stages some.
#[test]
fn no_path_lists_the_device_dax_devices() {
    let bus = Path::new("/sys/bus/dax/devices");
    let entries = std::fs::read_dir(bus).map(|dir| dir.count());
    let text = run::<&str>(&[]);
    let json = run(&["--json"]);
    match entries {
        Ok(0) | Err(_) => {
            let why = if entries.is_ok() {
                "is empty"
            } else {
                "does not exist"
            };
            let note = format!("no Device DAX devices found (/sys/bus/dax/devices {why})");
            assert_eq!(text.status.code(), Some(0), "{text:?}");
            assert_eq!(stdout_lines(&text), [note.as_str()]);
            assert!(text.stderr.is_empty(), "{}", stderr_text(&text));
            assert_eq!(json.status.code(), Some(0), "{json:?}");
            assert!(json.stdout.is_empty(), "{json:?}");
            assert_eq!(stderr_text(&json), format!("pmem2-source: {note}\n"));
        }
        Ok(count) => {
            assert_eq!(stdout_lines(&text).len(), count, "{text:?}");
            let objects = json_lines(&json);
            assert_eq!(objects.len(), count, "{json:?}");
            assert!(
                objects
                    .iter()
                    .all(|object| object["dax_device"].is_string())
            );
        }
    }
}

#[test]
fn help_and_version() {
    let help = run(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("Usage: pmem2-source [OPTIONS] [PATH]..."),
        "{text}"
    );
    for documented in [
        "--json",
        "\"errors\"",
        "path_bytes",
        "/sys/bus/dax/devices",
        "Exit status: 0 if every PATH (or listed device) is usable",
    ] {
        assert!(text.contains(documented), "{documented}: {text}");
    }

    let version = run(&["--version"]);
    assert_eq!(version.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("pmem2-source {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn unknown_option_is_a_usage_error() {
    let output = run(&["--jsn", "Cargo.toml"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    assert!(stderr_text(&output).contains("unexpected argument '--jsn'"));
}
