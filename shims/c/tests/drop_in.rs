//! Binary drop-in: a C program linked against Debian's libpmem2 (`-lpmem2`, references
//! versioned `LIBPMEM2_1.0`) runs on our library when `LD_LIBRARY_PATH` names a directory in
//! which `libpmem2.so.1` is our `libpmem2_source.so`, without the loader's "no version
//! information available" warning. The program reports where `pmem2_source_from_fd` came
//! from and how an `O_PATH` descriptor is answered (libpmem2 accepts it, we reject it);
//! everything else it prints is the same on both libraries.

#![cfg(not(windows))] // Linux only: scripts/wine-tests.sh has the Windows tests.

mod cprog;
mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use cprog::{LIBPMEM2_HEADER, Workdir, c_source, describe, require, require_file, run, run_ok};

const EXPECTED_STDERR: &str = "drop-in: cannot set fd to directory in pmem2_source_from_fd\n";

/// `name` of every `nm -D` line of `file` selected by `flag`.
fn dynamic_symbols(file: &Path, flag: &str) -> BTreeSet<String> {
    let output = run_ok(Command::new("nm").args(["-D", flag]).arg(file));
    cprog::text(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().last().map(str::to_owned))
        .collect()
}

fn run_drop_in(exe: &Path, scratch: &Path, library_path: Option<&Path>) -> (Output, Vec<String>) {
    let mut command = Command::new(exe);
    command.arg(scratch).env_remove("LD_LIBRARY_PATH");
    if let Some(dir) = library_path {
        command.env("LD_LIBRARY_PATH", dir);
    }
    let output = run(&mut command);
    assert!(
        output.status.success(),
        "drop_in failed (LD_LIBRARY_PATH={library_path:?})\n{}",
        describe(&output)
    );
    let lines = cprog::text(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    (output, lines)
}

#[test]
fn program_linked_against_libpmem2_runs_on_ours() {
    const TEST: &str = "program_linked_against_libpmem2_runs_on_ours";
    if !require("gcc", TEST) || !require("nm", TEST) || !require_file(LIBPMEM2_HEADER, TEST) {
        return;
    }
    let work = Workdir::new("drop-in");
    let exe = cprog::build(
        &work,
        "drop_in",
        [c_source("drop_in.c").into_os_string(), "-lpmem2".into()],
    );

    // The premise: versioned references, and only to functions we export.
    let ours = support::our_shared_library();
    let exported: BTreeSet<String> = dynamic_symbols(&ours, "--defined-only")
        .into_iter()
        .map(|symbol| symbol.split('@').next().unwrap_or_default().to_owned())
        .collect();
    let references: Vec<String> = dynamic_symbols(&exe, "--undefined-only")
        .into_iter()
        .filter(|symbol| symbol.starts_with("pmem2_"))
        .collect();
    assert!(!references.is_empty());
    for reference in &references {
        let (name, version) = reference.split_once('@').unwrap_or((reference, ""));
        assert_eq!(version, "LIBPMEM2_1.0", "{reference} is not versioned");
        assert!(
            exported.contains(name),
            "{name} is not exported by our library"
        );
    }

    let scratch = work.join("scratch");
    std::fs::create_dir(&scratch).expect("create scratch dir");

    // Control: Debian's libpmem2.
    let (libpmem2_output, libpmem2_lines) = run_drop_in(&exe, &scratch, None);
    assert!(
        libpmem2_lines[0].contains("/libpmem2.so.1"),
        "{}",
        describe(&libpmem2_output)
    );
    assert!(
        libpmem2_lines
            .iter()
            .any(|line| line == "O_PATH fd: 0 (delete: 0)"),
        "libpmem2 accepts O_PATH\n{}",
        describe(&libpmem2_output)
    );

    // Ours, under libpmem2's name.
    let lib = work.join("lib");
    std::fs::create_dir(&lib).expect("create lib dir");
    std::os::unix::fs::symlink(&ours, lib.join("libpmem2.so.1")).expect("symlink");
    let (our_output, our_lines) = run_drop_in(&exe, &scratch, Some(&lib));
    let canonical = std::fs::canonicalize(&ours).expect("canonicalize");
    assert_eq!(
        our_lines[0],
        format!("pmem2_source_from_fd from {}", canonical.display()),
        "{}",
        describe(&our_output)
    );
    assert!(
        our_lines.iter().any(|line| line
            == "O_PATH fd: -100004: fd must be open with O_RDONLY or O_RDWR; it was opened \
                with O_PATH, which permits no I/O"),
        "ours rejects O_PATH\n{}",
        describe(&our_output)
    );
    let stderr = cprog::text(&our_output.stderr);
    assert!(
        !stderr.contains("no version information available"),
        "{stderr}"
    );
    assert_eq!(stderr, EXPECTED_STDERR, "{}", describe(&our_output));
    assert_eq!(cprog::text(&libpmem2_output.stderr), EXPECTED_STDERR);

    // Apart from those two lines, the same output.
    let rest = |lines: &[String]| -> Vec<String> {
        lines
            .iter()
            .skip(1)
            .filter(|line| !line.starts_with("O_PATH fd: "))
            .cloned()
            .collect()
    };
    assert_eq!(rest(&our_lines), rest(&libpmem2_lines));
    assert!(rest(&our_lines).len() >= 6, "{our_lines:#?}");
}
