//! Out of memory at every point through the C ABI: `tests/c/oom.c` registers a malloc that
//! fails its n-th call (the failure point is a global the program resets between runs, so one
//! `pmem2_source_set_funcs` registration serves every n) and runs a sequence of
//! `pmem2_source_from_fd`/`pmem2_source_from_anon` calls for every n: the failing creation
//! is `-ENOMEM` with `*src` NULL and the message set, the others are unaffected, and nothing
//! leaks. Run natively and under valgrind (no memory errors, no leaks).

#![cfg(not(windows))] // Linux only: scripts/wine-tests.sh has the Windows tests.

mod cprog;
mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

use cprog::{Workdir, describe, require, run};

/// Compiles oom.c against our header and links it to our shared library.
fn build_oom(work: &Workdir) -> PathBuf {
    cprog::build_against_ours(work, "oom", &[])
}

/// The program's verdict: exit 0, no "FAIL", a summary of many checks, a silent stderr.
/// Returns the number of checks.
fn assert_passed(output: &Output) -> usize {
    let checks = cprog::assert_checks_passed(output, "oom");
    let stdout = cprog::text(&output.stdout);
    // Every n from 1 to k+1 once and 1 to k for good, k = 6 allocating creations.
    for line in [
        "ok - malloc 1 fails, step 0 from_anon: -12",
        "ok - malloc 6 fails, step 8 from_fd(O_RDWR file): -12",
        "ok - malloc 7 fails, step 8 from_fd(O_RDWR file): 0",
        "ok - malloc 3 fails for good, step 5 from_anon: -12",
        "ok - malloc calls in the last run (failing for good from the first): 6",
    ] {
        assert!(
            stdout.lines().any(|l| l == line),
            "missing {line:?}\n{}",
            describe(output)
        );
    }
    cprog::assert_quiet(output);
    checks
}

#[test]
fn every_failing_malloc_is_enomem_and_leaks_nothing() {
    if !require("gcc", "every_failing_malloc_is_enomem_and_leaks_nothing") {
        return;
    }
    let work = Workdir::new("oom");
    let exe = build_oom(&work);
    // oom.c compares mallinfo2's bytes in use before and after each run. glibc counts the
    // chunks in its per-thread cache as in use, so a run that frees one more source than
    // the runs before it leaves one more cached chunk and looks like growth: the program
    // runs with the cache off.
    let output = run(Command::new(&exe)
        .arg(work.scratch_dir())
        .env("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0"));
    let checks = assert_passed(&output);
    assert!(checks > 500, "only {checks} checks");
}

#[test]
fn every_failing_malloc_under_valgrind() {
    if !require("gcc", "every_failing_malloc_under_valgrind")
        || !require("valgrind", "every_failing_malloc_under_valgrind")
    {
        return;
    }
    let work = Workdir::new("oom-valgrind");
    let exe = build_oom(&work);
    let log_path = work.join("valgrind.log");
    let output = cprog::run_under_valgrind(&exe, [work.scratch_dir()], &log_path);
    let log = cprog::assert_valgrind_clean(&output, &log_path);
    assert_passed(&output);
    assert!(
        log.contains("definitely lost: 0 bytes") || log.contains("All heap blocks were freed"),
        "{log}"
    );
}
