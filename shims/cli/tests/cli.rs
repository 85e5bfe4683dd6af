//! The `pmem2-source` command on real paths.

use std::os::unix::fs::MetadataExt;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pmem2-source"))
        .args(args)
        .output()
        .expect("run pmem2-source")
}

fn stdout_lines(output: &Output) -> Vec<String> {
    String::from_utf8(output.stdout.clone())
        .expect("utf-8 output")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn device(dev: u64) -> String {
    format!("{}:{}", libc::major(dev), libc::minor(dev))
}

#[test]
fn regular_file_is_usable() {
    let meta = std::fs::metadata("Cargo.toml").expect("stat Cargo.toml");
    let output = run(&["Cargo.toml"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(
        stdout_lines(&output),
        [format!(
            "Cargo.toml: regular file on device {}, inode {} (opened read-write)",
            device(meta.dev()),
            meta.ino()
        )]
    );
}

#[test]
fn one_line_per_path_and_failure_status() {
    let output = run(&[
        "Cargo.toml",
        "/dev/null",
        "/tmp",
        "/nonexistent/pmem2-source-test",
    ]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let lines = stdout_lines(&output);
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(
        lines[0].starts_with("Cargo.toml: regular file on device "),
        "{lines:?}"
    );
    assert_eq!(
        lines[1],
        "/dev/null: PMEM2_E_INVALID_FILE_TYPE (-100005): character device 1:3 is not Device DAX: \
         its subsystem is \"mem\""
    );
    // A directory cannot be opened read-write (EISDIR): the read-only retry reaches the check.
    assert_eq!(
        lines[2],
        "/tmp: PMEM2_E_INVALID_FILE_TYPE (-100005): cannot set fd to directory in \
         pmem2_source_from_fd"
    );
    assert_eq!(
        lines[3],
        "/nonexistent/pmem2-source-test: ENOENT (-2): open: No such file or directory"
    );
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn fifo_does_not_block() {
    let dir = std::env::temp_dir().join(format!("pmem2-source-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let fifo = dir.join("fifo");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: c_path is a valid NUL-terminated path for the duration of the call.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let fifo_arg = fifo.to_str().expect("utf-8 temp path");
    let output = run(&[fifo_arg]);
    std::fs::remove_dir_all(&dir).expect("clean up");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stdout_lines(&output),
        [format!(
            "{fifo_arg}: PMEM2_E_INVALID_FILE_TYPE (-100005): file type 010000 not supported"
        )]
    );
}

#[test]
fn help_and_version() {
    let help = run(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("Usage: pmem2-source <PATH>..."), "{text}");
    assert!(
        text.contains("Exit status: 0 if every PATH is usable"),
        "{text}"
    );

    let version = run(&["--version"]);
    assert_eq!(version.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("pmem2-source {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn no_path_is_a_usage_error() {
    let output = run(&[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains("required"));
}
