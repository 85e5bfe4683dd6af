//! Shared by the tests that compile and run C programs: required tools, per-test work
//! directories, compiling with gcc, running and reporting.
#![allow(dead_code)] // each test file uses a different part

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support;

/// Warnings every C program of these tests is compiled with.
pub const WARNINGS: [&str; 3] = ["-Wall", "-Wextra", "-Werror"];

/// The native libraries Rust's std needs when `libpmem2_source.a` is linked into a C
/// program: the `Libs.private` line of `pmem2_source.pc.in`, which is what
/// `cargo rustc -p pmem2-source-capi --lib --crate-type staticlib -- --print native-static-libs`
/// prints (one source of truth for the static link test and the installed `.pc` file).
pub fn native_static_libs() -> Vec<String> {
    let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("pmem2_source.pc.in");
    let text = std::fs::read_to_string(&template)
        .unwrap_or_else(|e| panic!("read {}: {e}", template.display()));
    let line = text
        .lines()
        .find_map(|line| line.strip_prefix("Libs.private:"))
        .unwrap_or_else(|| panic!("{} has no Libs.private line", template.display()));
    line.split_whitespace().map(str::to_owned).collect()
}

/// True if `tool` can be run. If not: a failure in CI (`CI=true`), otherwise a loud skip
/// (`false`, and the reason on stderr).
pub fn require(tool: &str, test: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !found {
        assert!(
            !support::in_ci(),
            "{test}: `{tool}` is required in CI (CI=true) but cannot be run"
        );
        eprintln!("SKIPPED {test}: `{tool}` is not installed (it is required when CI=true)");
    }
    found
}

/// True if `path` exists (e.g. Debian's `/usr/include/libpmem2.h`, from `libpmem2-dev`).
/// If not: a failure in CI, otherwise a loud skip.
pub fn require_file(path: &str, test: &str) -> bool {
    let found = Path::new(path).exists();
    if !found {
        assert!(
            !support::in_ci(),
            "{test}: {path} is required in CI (CI=true) but missing"
        );
        eprintln!("SKIPPED {test}: {path} is missing (it is required when CI=true)");
    }
    found
}

/// Debian's libpmem2 header (package `libpmem2-dev`).
pub const LIBPMEM2_HEADER: &str = "/usr/include/libpmem2.h";

/// A C source of these tests: `tests/c/<name>`.
pub fn c_source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/c")
        .join(name)
}

/// A fresh directory for one test (name, process id and a counter make it unique), under
/// cargo's `target/tmp` (executables may not run from a `noexec` `/tmp`). Removed on drop.
#[derive(Debug)]
pub struct Workdir {
    path: PathBuf,
}

impl Workdir {
    pub fn new(test: &str) -> Workdir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("capi-{test}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path); // a leftover of a killed run with our pid
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        Workdir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }

    /// A new, empty `scratch/` directory in here, for a program's own files.
    pub fn scratch_dir(&self) -> PathBuf {
        let dir = self.join("scratch");
        std::fs::create_dir(&dir).expect("create scratch dir");
        dir
    }

    /// A directory `lib/` in here holding `libpmem2_source.so.1` (the SONAME a program linked
    /// with `-lpmem2_source` asks for) and `libpmem2_source.so`, both symlinks to the built
    /// shared library: link with `-L<dir> -lpmem2_source -Wl,-rpath,<dir>`.
    pub fn shared_lib_dir(&self) -> PathBuf {
        let dir = self.join("lib");
        std::fs::create_dir_all(&dir).expect("create lib dir");
        let library = support::our_shared_library();
        for name in ["libpmem2_source.so.1", "libpmem2_source.so"] {
            std::os::unix::fs::symlink(&library, dir.join(name))
                .unwrap_or_else(|e| panic!("symlink {name}: {e}"));
        }
        dir
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Runs `command` and returns what it did; panics only if it cannot be started.
pub fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

/// Runs `command`, which must succeed; panics with its output otherwise.
#[track_caller]
pub fn run_ok(command: &mut Command) -> Output {
    let output = run(command);
    assert!(
        output.status.success(),
        "{command:?} failed\n{}",
        describe(&output)
    );
    output
}

/// Exit status, stdout and stderr, for assertion messages.
pub fn describe(output: &Output) -> String {
    let mut text = format!("status: {}\n", output.status);
    for (name, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        let _ = writeln!(
            text,
            "--- {name} ---\n{}",
            String::from_utf8_lossy(bytes).trim_end()
        );
    }
    text
}

/// `gcc` with the standard warnings, ready for more arguments.
pub fn gcc() -> Command {
    let mut command = Command::new("gcc");
    command.args(WARNINGS);
    command
}

/// Compiles and links `args` (C files, libraries and flags, in order) into `work/<name>`
/// with [`gcc`], which must succeed; returns the executable's path.
#[track_caller]
pub fn build<I, S>(work: &Workdir, name: &str, args: I) -> PathBuf
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let exe = work.join(name);
    run_ok(gcc().args(args).arg("-o").arg(&exe));
    exe
}

/// Compiles `tests/c/<name>.c` with the `extra` flags against our header, linked to our
/// shared library in `work` (found at run time through the rpath); returns the executable.
#[track_caller]
pub fn build_against_ours(work: &Workdir, name: &str, extra: &[&str]) -> PathBuf {
    let lib = work.shared_lib_dir();
    let mut args: Vec<OsString> = vec![
        c_source(&format!("{name}.c")).into_os_string(),
        format!("-I{}", support::our_include_dir().display()).into(),
        format!("-L{}", lib.display()).into(),
        format!("-Wl,-rpath,{}", lib.display()).into(),
        "-lpmem2_source".into(),
    ];
    args.extend(extra.iter().map(OsString::from));
    build(work, name, args)
}

/// Asserts the program wrote nothing to stderr.
#[track_caller]
pub fn assert_quiet(output: &Output) {
    assert_eq!(text(&output.stderr), "", "stderr\n{}", describe(output));
}

/// Captured stdout or stderr as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `readelf ARGS FILE`, which must succeed; its output.
pub fn readelf(args: &[&str], file: &Path) -> String {
    text(&run_ok(Command::new("readelf").args(args).arg(file)).stdout)
}

/// Asserts a program using `tests/c/checks.h` passed: exit 0, no "FAIL" line, and the summary
/// "<checks> checks, 0 failed" last, with at least one check. Returns the number of checks.
#[track_caller]
pub fn assert_checks_passed(output: &Output, program: &str) -> usize {
    let stdout = text(&output.stdout);
    assert!(
        output.status.success() && !stdout.contains("FAIL"),
        "{program} failed\n{}",
        describe(output)
    );
    let summary = stdout.lines().last().unwrap_or_default();
    let checks: usize = summary
        .strip_suffix(" checks, 0 failed")
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("unexpected summary {summary:?}\n{}", describe(output)));
    assert!(checks > 0, "{program} ran no checks\n{}", describe(output));
    checks
}

/// Runs `exe`, built from `tests/c/basic.c`, with `env` added, in a scratch directory of
/// `work`; asserts it passed: a regular file accepted, a directory rejected with libpmem2's
/// code and message, the pmem2_perror line on stderr.
#[track_caller]
pub fn run_basic(work: &Workdir, exe: &Path, env: &[(&str, &Path)]) {
    let scratch = work.join("basic-scratch");
    std::fs::create_dir_all(&scratch).expect("create scratch dir");
    let output = run(Command::new(exe)
        .arg(&scratch)
        .envs(env.iter().map(|&(key, value)| (key, value))));
    let stdout = text(&output.stdout);
    assert!(
        output.status.success() && !stdout.contains("FAIL"),
        "{} failed\n{}",
        exe.display(),
        describe(&output)
    );
    for line in [
        "from_fd(regular file) = 0",
        "from_fd(directory) = -100005: cannot set fd to directory in pmem2_source_from_fd",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "missing {line:?}\n{}",
            describe(&output)
        );
    }
    assert_eq!(
        text(&output.stderr),
        "basic perror: cannot set fd to directory in pmem2_source_from_fd\n",
        "{}",
        describe(&output)
    );
}

/// Valgrind's exit status for errors it found (the programs themselves exit 0, 1 or 2).
pub const VALGRIND_ERROR_EXIT: i32 = 99;

/// Runs `exe` with `args` under valgrind's memcheck, its log in `log`: definite, indirect and
/// possible leaks count as errors; "still reachable" memory (a runtime's buffers kept until
/// exit) is shown in the log but is not.
pub fn run_under_valgrind<I, S>(exe: &Path, args: I, log: &Path) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run(Command::new("valgrind")
        .arg(format!("--error-exitcode={VALGRIND_ERROR_EXIT}"))
        .arg("--leak-check=full")
        .arg("--errors-for-leak-kinds=definite,indirect,possible")
        .arg("--show-leak-kinds=all")
        .arg(format!("--log-file={}", log.display()))
        .arg(exe)
        .args(args))
}

/// Lines of valgrind's log that say what was found, for the failure message.
pub fn valgrind_findings(log: &str) -> String {
    log.lines()
        .filter(|line| {
            line.contains("ERROR SUMMARY")
                || line.contains("lost:")
                || line.contains("reachable:")
                || line.contains("Invalid")
                || line.contains("uninitialised")
                || line.contains("in use at exit")
                || line.contains("total heap usage")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts valgrind found nothing in a run from [`run_under_valgrind`]; returns the log.
#[track_caller]
pub fn assert_valgrind_clean(output: &Output, log_path: &Path) -> String {
    let log = std::fs::read_to_string(log_path).unwrap_or_default();
    assert_ne!(
        output.status.code(),
        Some(VALGRIND_ERROR_EXIT),
        "valgrind found errors:\n{}\n--- full log ---\n{log}",
        valgrind_findings(&log)
    );
    assert!(
        log.contains("ERROR SUMMARY: 0 errors from 0 contexts"),
        "{log}"
    );
    log
}
