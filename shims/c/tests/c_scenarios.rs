//! libpmem2's source scenarios as a C program (`tests/c/scenarios.c`) that includes Debian's
//! `<libpmem2.h>`, not ours, and is linked to our `libpmem2_source.so`: run natively, and
//! under valgrind (no memory errors, no definite/indirect/possible leaks).

#![cfg(not(windows))] // Linux only: scripts/wine-tests.sh has the Windows tests.

mod cprog;
mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

use cprog::{LIBPMEM2_HEADER, Workdir, c_source, describe, require, require_file, run};

/// What `pmem2_perror` writes (and nothing else goes to stderr).
const EXPECTED_STDERR: &str = "perror after O_WRONLY 42: fd must be open with O_RDONLY or O_RDWR\n\
                               perror after ENOMEM: cannot allocate a pmem2_source: out of memory\n";

/// Compiles scenarios.c against Debian's header and links it to our shared library (found
/// at run time through the rpath).
fn build_scenarios(work: &Workdir) -> PathBuf {
    let lib = work.shared_lib_dir();
    let exe = cprog::build(
        work,
        "scenarios",
        [
            c_source("scenarios.c").into_os_string(),
            format!("-L{}", lib.display()).into(),
            format!("-Wl,-rpath,{}", lib.display()).into(),
            "-lpmem2_source".into(),
        ],
    );
    let dynamic = cprog::readelf(&["-d"], &exe);
    assert!(
        dynamic.contains("Shared library: [libpmem2_source.so.1]")
            && !dynamic.contains("[libpmem2.so"),
        "scenarios must need our library and not libpmem2:\n{dynamic}"
    );
    exe
}

/// The program's own verdict: exit 0, every check "ok", the summary, and exactly the
/// perror lines on stderr.
fn assert_scenarios_passed(output: &Output) {
    cprog::assert_checks_passed(output, "scenarios");
    assert_eq!(
        cprog::text(&output.stderr),
        EXPECTED_STDERR,
        "stderr must be exactly the pmem2_perror lines\n{}",
        describe(output)
    );
}

#[test]
fn scenarios_pass_against_libpmem2_header() {
    if !require("gcc", "scenarios_pass_against_libpmem2_header")
        || !require_file(LIBPMEM2_HEADER, "scenarios_pass_against_libpmem2_header")
    {
        return;
    }
    let work = Workdir::new("scenarios");
    let exe = build_scenarios(&work);
    let output = run(Command::new(&exe).arg(work.scratch_dir()));
    assert_scenarios_passed(&output);
}

#[test]
fn scenarios_pass_under_valgrind() {
    if !require("gcc", "scenarios_pass_under_valgrind")
        || !require("valgrind", "scenarios_pass_under_valgrind")
        || !require_file(LIBPMEM2_HEADER, "scenarios_pass_under_valgrind")
    {
        return;
    }
    let work = Workdir::new("scenarios-valgrind");
    let exe = build_scenarios(&work);
    let log_path = work.join("valgrind.log");
    let output = cprog::run_under_valgrind(&exe, [work.scratch_dir()], &log_path);
    let log = cprog::assert_valgrind_clean(&output, &log_path);
    assert_scenarios_passed(&output);
    eprintln!(
        "valgrind: {}",
        cprog::valgrind_findings(&log).replace('\n', "; ")
    );
}
