//! A malloc function registered with `pmem2_source_set_funcs` that returns memory not
//! aligned for a source (`tests/c/misaligned_alloc.c`): `-ENOMEM`, `*src` NULL, a message
//! naming the address and the alignment needed, and the block passed back to the registered
//! free function; run natively and under valgrind (no memory errors, nothing lost).

#![cfg(not(windows))] // Linux only: scripts/wine-tests.sh has the Windows tests.

mod cprog;
mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

use cprog::{Workdir, describe, require, run};

/// Compiles misaligned_alloc.c against our header and links it to our shared library.
fn build_misaligned(work: &Workdir) -> PathBuf {
    cprog::build_against_ours(work, "misaligned_alloc", &[])
}

fn assert_passed(output: &Output) {
    cprog::assert_checks_passed(output, "misaligned_alloc");
    let stdout = cprog::text(&output.stdout);
    for prefix in [
        "ok - from_anon, misaligned malloc: message: cannot allocate a pmem2_source: the \
         malloc function set with pmem2_source_set_funcs returned 0x",
        "ok - from_anon, misaligned malloc: the block freed: 1",
        "ok - from_fd, misaligned malloc: message: ",
        "ok - frees of pointers never handed out: 0",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(prefix)),
            "missing {prefix:?}\n{}",
            describe(output)
        );
    }
    cprog::assert_quiet(output);
}

#[test]
fn a_misaligned_block_is_enomem_named_and_freed() {
    if !require("gcc", "a_misaligned_block_is_enomem_named_and_freed") {
        return;
    }
    let work = Workdir::new("misaligned");
    let exe = build_misaligned(&work);
    let output = run(Command::new(&exe).arg(work.scratch_dir()));
    assert_passed(&output);
}

#[test]
fn a_misaligned_block_under_valgrind() {
    if !require("gcc", "a_misaligned_block_under_valgrind")
        || !require("valgrind", "a_misaligned_block_under_valgrind")
    {
        return;
    }
    let work = Workdir::new("misaligned-valgrind");
    let exe = build_misaligned(&work);
    let log_path = work.join("valgrind.log");
    let output = cprog::run_under_valgrind(&exe, [work.scratch_dir()], &log_path);
    cprog::assert_valgrind_clean(&output, &log_path);
    assert_passed(&output);
}
