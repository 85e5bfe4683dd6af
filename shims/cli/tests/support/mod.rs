//! Running the `pmem2-source` binary and reading what it printed (shared by the CLI tests).
#![allow(dead_code)]

use std::ffi::OsStr;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// Runs the binary with `args`, stdin closed off (`/dev/null`), and collects its output.
pub fn run<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pmem2-source"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run pmem2-source")
}

/// Stdout, line by line.
pub fn stdout_lines(output: &Output) -> Vec<String> {
    String::from_utf8(output.stdout.clone())
        .expect("utf-8 output")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Stdout as JSON Lines: one object per line, each parsed.
pub fn json_lines(output: &Output) -> Vec<Value> {
    stdout_lines(output)
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

pub fn stderr_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `MAJ:MIN` of a `dev_t`.
pub fn device(dev: u64) -> String {
    format!("{}:{}", libc::major(dev), libc::minor(dev))
}

/// The page size: the alignment of every regular file.
pub fn page_size() -> u64 {
    // SAFETY: sysconf takes an integer and touches no memory of ours.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(page).expect("a page size")
}

/// How the command prints the page size (4 KiB, 16 KiB or 64 KiB: always whole KiB).
pub fn page_size_text() -> String {
    let page = page_size();
    assert_eq!(page % 1024, 0, "page size {page}");
    format!("{} KiB ({page} bytes)", page / 1024)
}

/// The object's `error` (or `errors.FIELD`) as `(code, name, message)`.
pub fn error_of(error: &Value) -> (i64, &str, &str) {
    (
        error["code"].as_i64().expect("code"),
        error["name"].as_str().expect("name"),
        error["message"].as_str().expect("message"),
    )
}
