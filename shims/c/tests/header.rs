//! Header hygiene of `include/pmem2_source.h`: self-contained and warning-free in strict C99,
//! C11 and C++11, guarded against double inclusion, and interchangeable with Debian's
//! `<libpmem2.h>` (same prototypes, same error-code values), which a deliberately broken copy
//! of the header shows the checks would notice.

#![cfg(not(windows))] // Linux only: scripts/wine-tests.sh has the Windows tests.

mod cprog;
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use cprog::{LIBPMEM2_HEADER, Workdir, c_source, describe, require, require_file, run, run_ok};

/// Strict flags for a C standard: `-std=<std> -pedantic` plus the usual warnings as errors.
fn strict_c(std: &str) -> Command {
    let mut command = cprog::gcc();
    command.args([&format!("-std={std}"), "-pedantic", "-Wstrict-prototypes"]);
    command
}

fn strict_cpp() -> Command {
    let mut command = Command::new("g++");
    command.args(cprog::WARNINGS);
    command.args(["-x", "c++", "-std=c++11", "-pedantic"]);
    command
}

fn include_ours(command: &mut Command) -> &mut Command {
    command.arg("-I").arg(support::our_include_dir())
}

#[test]
fn alone_compiles_as_strict_c() {
    if !require("gcc", "alone_compiles_as_strict_c") {
        return;
    }
    for std in ["c99", "c11"] {
        run_ok(
            include_ours(&mut strict_c(std))
                .arg("-fsyntax-only")
                .arg(c_source("header_alone.c")),
        );
    }
}

/// Also links and runs the C++ program: with C linkage the references are the plain names
/// the library exports (without `extern "C"` they would be mangled and not resolve).
#[test]
fn alone_compiles_links_and_runs_as_cpp11() {
    if !require("g++", "alone_compiles_links_and_runs_as_cpp11") {
        return;
    }
    let work = Workdir::new("header-cpp");
    let lib = work.shared_lib_dir();
    let exe = work.join("header_alone_cpp");
    run_ok(
        include_ours(&mut strict_cpp())
            .arg(c_source("header_alone.c"))
            .arg("-x")
            .arg("none")
            .arg(format!("-L{}", lib.display()))
            .arg(format!("-Wl,-rpath,{}", lib.display()))
            .arg("-lpmem2_source")
            .arg("-o")
            .arg(&exe),
    );
    run_ok(&mut Command::new(&exe));
}

#[test]
fn include_guard_makes_the_second_inclusion_empty() {
    if !require("gcc", "include_guard_makes_the_second_inclusion_empty") {
        return;
    }
    run_ok(
        include_ours(&mut strict_c("c99"))
            .arg("-fsyntax-only")
            .arg(c_source("header_twice.c")),
    );
    let output = run_ok(
        include_ours(&mut Command::new("gcc"))
            .arg("-E")
            .arg(c_source("header_twice.c")),
    );
    let preprocessed = cprog::text(&output.stdout);
    for declaration in [
        "int pmem2_source_from_fd(",
        "const char *pmem2_errormsg(void);",
        "struct pmem2_source;",
    ] {
        assert_eq!(
            preprocessed.matches(declaration).count(),
            1,
            "{declaration} after two inclusions:\n{preprocessed}"
        );
    }
}

/// Compiles `header_with_libpmem2.c` in both orders as C99 and C++11 with our header taken
/// from `include`; the output of the first failure, if any.
fn compile_with_libpmem2(include: &Path) -> Result<(), String> {
    for libpmem2_first in [false, true] {
        for cpp in [false, true] {
            let mut command = if cpp { strict_cpp() } else { strict_c("c99") };
            command
                .arg("-fsyntax-only")
                .arg("-I")
                .arg(include)
                .arg(c_source("header_with_libpmem2.c"));
            if libpmem2_first {
                command.arg("-DLIBPMEM2_FIRST");
            }
            let output = run(&mut command);
            if !output.status.success() {
                return Err(format!("{command:?}\n{}", describe(&output)));
            }
        }
    }
    Ok(())
}

fn compile_codes(include: &Path) -> Result<(), String> {
    let mut command = strict_c("c11");
    command
        .arg("-fsyntax-only")
        .arg("-I")
        .arg(include)
        .arg(c_source("header_codes.c"));
    let output = run(&mut command);
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("{command:?}\n{}", describe(&output)))
    }
}

#[test]
fn agrees_with_libpmem2_header() {
    if !require("gcc", "agrees_with_libpmem2_header")
        || !require("g++", "agrees_with_libpmem2_header")
        || !require_file(LIBPMEM2_HEADER, "agrees_with_libpmem2_header")
    {
        return;
    }
    if let Err(failure) = compile_with_libpmem2(&support::our_include_dir()) {
        panic!("pmem2_source.h conflicts with <libpmem2.h>:\n{failure}");
    }
}

/// `#define PMEM2_E_<name> (<value>)` lines of a header.
fn defined_codes(header: &Path) -> BTreeMap<String, i32> {
    let text = std::fs::read_to_string(header)
        .unwrap_or_else(|e| panic!("read {}: {e}", header.display()));
    text.lines()
        .filter_map(|line| {
            let mut words = line.strip_prefix("#define ")?.split_whitespace();
            let name = words.next()?.strip_prefix("PMEM2_E_")?;
            let value = words.next()?.trim_start_matches('(').trim_end_matches(')');
            Some((
                format!("PMEM2_E_{name}"),
                value.parse().expect("numeric code"),
            ))
        })
        .collect()
}

#[test]
fn error_codes_equal_libpmem2s() {
    if !require("gcc", "error_codes_equal_libpmem2s")
        || !require_file(LIBPMEM2_HEADER, "error_codes_equal_libpmem2s")
    {
        return;
    }
    let ours = defined_codes(&support::our_include_dir().join("pmem2_source.h"));
    let values: Vec<i32> = {
        let mut values: Vec<i32> = ours.values().copied().collect();
        values.sort_unstable_by(|a, b| b.cmp(a));
        values
    };
    let expected: Vec<i32> = (0..=37).filter(|&n| n != 2).map(|n| -100_000 - n).collect();
    assert_eq!(values, expected, "-100000 … -100037 without -100002");
    let debian = defined_codes(Path::new("/usr/include/libpmem2/base.h"));
    assert_eq!(ours, debian, "our codes vs Debian's libpmem2/base.h");

    // header_codes.c must compare every one of them.
    let source = std::fs::read_to_string(c_source("header_codes.c")).expect("read header_codes.c");
    let listed: Vec<&str> = source
        .lines()
        .filter_map(|line| line.trim().strip_prefix("X(")?.split(')').next())
        .collect();
    let mut listed_sorted = listed.clone();
    listed_sorted.sort_unstable();
    listed_sorted.dedup();
    assert_eq!(listed_sorted.len(), listed.len(), "duplicates in the list");
    assert_eq!(
        listed_sorted,
        ours.keys().map(String::as_str).collect::<Vec<_>>(),
        "header_codes.c's list"
    );
    if let Err(failure) = compile_codes(&support::our_include_dir()) {
        panic!("an error code differs from libpmem2's:\n{failure}");
    }
}

/// The checks above have teeth: a copy of our header with one prototype or one value
/// changed is rejected, with the diagnostic that names the problem.
#[test]
fn a_changed_prototype_or_code_is_caught() {
    if !require("gcc", "a_changed_prototype_or_code_is_caught")
        || !require("g++", "a_changed_prototype_or_code_is_caught")
        || !require_file(LIBPMEM2_HEADER, "a_changed_prototype_or_code_is_caught")
    {
        return;
    }
    let header = std::fs::read_to_string(support::our_include_dir().join("pmem2_source.h"))
        .expect("read pmem2_source.h");
    let prototype_changes = [
        (
            "int pmem2_source_from_fd(struct pmem2_source **src, int fd);",
            "int pmem2_source_from_fd(struct pmem2_source **src, long fd);",
        ),
        (
            "int pmem2_source_from_anon(struct pmem2_source **src, size_t size);",
            "int pmem2_source_from_anon(struct pmem2_source **src, unsigned size);",
        ),
        (
            "int pmem2_source_get_fd(const struct pmem2_source *src, int *fd);",
            "int pmem2_source_get_fd(struct pmem2_source *src, int *fd);",
        ),
        (
            "int pmem2_source_delete(struct pmem2_source **src);",
            "int pmem2_source_delete(struct pmem2_source *src);",
        ),
        (
            "int pmem2_source_size(const struct pmem2_source *src, size_t *size);",
            "int pmem2_source_size(const struct pmem2_source *src, unsigned *size);",
        ),
        (
            "int pmem2_source_alignment(const struct pmem2_source *src, size_t *alignment);",
            "int pmem2_source_alignment(struct pmem2_source *src, size_t *alignment);",
        ),
        (
            "int pmem2_source_numa_node(const struct pmem2_source *src, int *numa_node);",
            "int pmem2_source_numa_node(const struct pmem2_source *src, long *numa_node);",
        ),
        (
            "int pmem2_source_device_id(const struct pmem2_source *src, char *id, size_t *len);",
            "int pmem2_source_device_id(const struct pmem2_source *src, char *id, int *len);",
        ),
        (
            "int pmem2_source_device_usc(const struct pmem2_source *src, uint64_t *usc);",
            "int pmem2_source_device_usc(const struct pmem2_source *src, uint32_t *usc);",
        ),
        (
            "int pmem2_source_pread_mcsafe(struct pmem2_source *src, void *buf, size_t size,\n\tsize_t offset);",
            "int pmem2_source_pread_mcsafe(struct pmem2_source *src, void *buf, size_t size,\n\tint offset);",
        ),
        (
            "int pmem2_source_pwrite_mcsafe(struct pmem2_source *src, void *buf, size_t size,",
            "int pmem2_source_pwrite_mcsafe(struct pmem2_source *src, const void *buf, size_t size,",
        ),
        (
            "const char *pmem2_errormsg(void);",
            "char *pmem2_errormsg(void);",
        ),
        (
            "void pmem2_perror(const char *format, ...)",
            "int pmem2_perror(const char *format, ...)",
        ),
    ];
    let work = Workdir::new("header-mutants");
    let include = work.join("include");
    std::fs::create_dir(&include).expect("create include");
    let write_mutant = |from: &str, to: &str| {
        assert_eq!(header.matches(from).count(), 1, "{from} once in the header");
        std::fs::write(include.join("pmem2_source.h"), header.replace(from, to))
            .expect("write mutant");
    };
    for (from, to) in prototype_changes {
        write_mutant(from, to);
        let failure = compile_with_libpmem2(&include)
            .expect_err(&format!("`{to}` must conflict with <libpmem2.h>"));
        assert!(
            failure.contains("conflicting"),
            "`{to}`: expected a conflicting-types error:\n{failure}"
        );
    }

    let (from, to) = (
        "PMEM2_E_INVALID_FILE_HANDLE\t\t(-100004)",
        "PMEM2_E_INVALID_FILE_HANDLE\t\t(-100040)",
    );
    write_mutant(from, to);
    let failure = compile_codes(&include).expect_err("a changed value must fail header_codes.c");
    assert!(
        failure.contains("PMEM2_E_INVALID_FILE_HANDLE differs from libpmem2"),
        "{failure}"
    );
    let failure = compile_with_libpmem2(&include).expect_err("a changed value must be redefined");
    assert!(
        failure.contains("\"PMEM2_E_INVALID_FILE_HANDLE\" redefined"),
        "{failure}"
    );
}
