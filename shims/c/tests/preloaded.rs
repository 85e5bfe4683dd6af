//! Our library `LD_PRELOAD`ed over Debian's libpmem2, as PMDK's own tests and examples run it
//! (scripts/pmdk-tests.sh): a program linked with `-lpmem2` gets our source functions,
//! `pmem2_errormsg` and `pmem2_perror`, and libpmem2's mapping and configuration functions.
//! `pmem2_errormsg` and `pmem2_perror` must show the message of whichever library failed last
//! on the thread (`tests/c/preloaded.c` says in which orders); without a libpmem2 behind ours,
//! ours alone (the other tests).

#![cfg(not(windows))] // Linux only: scripts/wine-tests.sh has the Windows tests.

mod cprog;
mod support;

use std::process::Command;

use cprog::{LIBPMEM2_HEADER, Workdir, c_source, describe, require, require_file, run};

#[test]
fn messages_of_both_libraries_reach_pmem2_errormsg_when_ours_is_preloaded() {
    const TEST: &str = "messages_of_both_libraries";
    if !require("gcc", TEST) || !require_file(LIBPMEM2_HEADER, TEST) {
        return;
    }
    let work = Workdir::new("preloaded");
    let exe = cprog::build(
        &work,
        "preloaded",
        [
            c_source("preloaded.c").into_os_string(),
            "-lpmem2".into(),
            "-lpthread".into(),
        ],
    );
    let scratch = work.scratch_dir();
    let output = run(Command::new(&exe)
        .arg(&scratch)
        .env("LD_PRELOAD", support::our_shared_library()));
    cprog::assert_checks_passed(&output, "preloaded");
    let stderr = cprog::text(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{}", describe(&output));
    assert_eq!(
        lines[0],
        "preloaded perror 1: offset is greater than INT64_MAX"
    );
    assert!(
        lines[1].starts_with("preloaded perror 2: invalid file descriptor value -1 ("),
        "{}",
        describe(&output)
    );
    assert_eq!(lines[2], "pmem2_map_new: file length is equal 0");
}
