//! `pmem2_errormsg()` from pthread key destructors, as threads exit (`tests/c/thread_exit.c`):
//! a thread whose first call into the library is made there, and threads that fail there
//! after using the library (from destructors that run before and after the library's own in
//! a round). Each gets its failure's own message, never "", and under valgrind nothing is
//! lost: the thread's message text is freed even when it was first allocated during the
//! thread's exit. Failures in later rounds of destructors, after the library freed the text,
//! get a fixed message saying so. And a thread that read its message exits after the program `dlclose`d the
//! library (`tests/c/dlclose_exit.c`): the cleanup that runs then is still mapped.

#![cfg(not(windows))] // Linux only: scripts/wine-tests.sh has the Windows tests.

mod cprog;
mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

use cprog::{Workdir, c_source, describe, require, run};

/// Threads per case in thread_exit.c.
const THREADS: usize = 25;

/// The message of a failure after the thread's exit freed its message text.
const TEXT_FREED: &str = "pmem2_errormsg: this thread is exiting and its message text was \
                          freed (the failure's code was returned)";

/// Compiles thread_exit.c against our header and links it to our shared library.
fn build_thread_exit(work: &Workdir) -> PathBuf {
    cprog::build_against_ours(work, "thread_exit", &["-pthread"])
}

/// The program's verdict, and every destructor's checks there (so none was skipped): the
/// code, `*src` NULL and the message, for each of the threads.
fn assert_passed(output: &Output) {
    cprog::assert_checks_passed(output, "thread_exit");
    let stdout = cprog::text(&output.stdout);
    let own =
        |fd: i32| format!("invalid file descriptor value {fd} (descriptors are never negative)");
    for (what, message) in [
        ("first call, from a key destructor", own(-1)),
        (
            "failure in a destructor of a key older than the library's",
            own(-3),
        ),
        (
            "failure in a destructor of a key newer than the library's",
            own(-4),
        ),
        ("failure in the second round, older key", own(-3)),
        (
            "failure in the third round, older key",
            TEXT_FREED.to_owned(),
        ),
        (
            "failure in the second round, newer key",
            TEXT_FREED.to_owned(),
        ),
    ] {
        let prefix = format!("ok - {what}");
        let seen = stdout.lines().filter(|l| l.starts_with(&prefix)).count();
        assert_eq!(seen, 3 * THREADS, "{what}\n{}", describe(output));
        let line = format!("ok - {what}: \"{message}\"");
        let messages = stdout.lines().filter(|l| *l == line).count();
        assert_eq!(messages, THREADS, "{line}\n{}", describe(output));
    }
    cprog::assert_quiet(output);
}

#[test]
fn messages_from_key_destructors() {
    if !require("gcc", "messages_from_key_destructors") {
        return;
    }
    let work = Workdir::new("thread-exit");
    let exe = build_thread_exit(&work);
    let output = run(&mut Command::new(&exe));
    assert_passed(&output);
}

#[test]
fn messages_from_key_destructors_leak_nothing_under_valgrind() {
    if !require(
        "gcc",
        "messages_from_key_destructors_leak_nothing_under_valgrind",
    ) || !require(
        "valgrind",
        "messages_from_key_destructors_leak_nothing_under_valgrind",
    ) {
        return;
    }
    let work = Workdir::new("thread-exit-valgrind");
    let exe = build_thread_exit(&work);
    let log_path = work.join("valgrind.log");
    let output = cprog::run_under_valgrind(&exe, std::iter::empty::<&str>(), &log_path);
    let log = cprog::assert_valgrind_clean(&output, &log_path);
    assert_passed(&output);
    // Nor is anything left at exit, the main thread's message text included (the library's
    // destructor frees it: the main thread runs no key destructors).
    assert!(
        log.contains("All heap blocks were freed -- no leaks are possible"),
        "{}",
        cprog::valgrind_findings(&log)
    );
    eprintln!(
        "valgrind: {}",
        cprog::valgrind_findings(&log).replace('\n', "; ")
    );
}

#[test]
fn a_thread_exits_after_dlclose() {
    if !require("gcc", "a_thread_exits_after_dlclose") {
        return;
    }
    let work = Workdir::new("dlclose-exit");
    let exe = cprog::build(
        &work,
        "dlclose_exit",
        [
            c_source("dlclose_exit.c").into_os_string(),
            format!("-I{}", support::our_include_dir().display()).into(),
            "-pthread".into(),
            "-ldl".into(),
        ],
    );
    let output = run(Command::new(&exe).arg(support::our_shared_library()));
    cprog::assert_checks_passed(&output, "dlclose_exit");
    assert!(
        cprog::text(&output.stdout)
            .lines()
            .any(|l| l == "ok - the thread exited after dlclose"),
        "{}",
        describe(&output)
    );
}
