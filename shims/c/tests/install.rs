//! `scripts/install-capi.sh` installs a usable library: run into a temporary prefix (with
//! the build profile of this test run, whose libraries are already built, so its `cargo
//! build` is a no-op), then a C program finds everything through
//! `pkg-config --cflags --libs pmem2_source` and runs, linked dynamically and, with
//! `--static` (Libs.private), statically. `DESTDIR` stages the same files under another root.

#![cfg(not(windows))] // Linux only: scripts/wine-tests.sh has the Windows tests.

mod cprog;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use cprog::{Workdir, c_source, describe, require, run_ok};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/install-capi.sh")
}

/// `install-capi.sh [args]` for the libraries of this test run.
fn install_command(args: &[&str]) -> Command {
    let profile_dir = support::built_libraries();
    let profile = profile_dir
        .file_name()
        .and_then(|name| name.to_str())
        .expect("target/<profile>");
    let target_dir = profile_dir.parent().expect("target dir");
    let mut command = Command::new("bash");
    command
        .arg(script())
        .args(args)
        .env("PROFILE", profile)
        .env("CARGO_TARGET_DIR", target_dir)
        .env_remove("DESTDIR");
    command
}

fn pkg_config(prefix: &Path, args: &[&str]) -> Vec<String> {
    let output = run_ok(
        Command::new("pkg-config")
            .args(args)
            .arg("pmem2_source")
            .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
            .env_remove("PKG_CONFIG_LIBDIR")
            .env_remove("PKG_CONFIG_SYSROOT_DIR"),
    );
    cprog::text(&output.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn needed(exe: &Path) -> String {
    cprog::readelf(&["-d"], exe)
}

fn same_bytes(a: &Path, b: &Path) -> bool {
    let read = |path: &Path| {
        std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    };
    read(a) == read(b)
}

#[test]
fn installed_library_is_found_with_pkg_config() {
    const TEST: &str = "installed_library_is_found_with_pkg_config";
    if !require("gcc", TEST) || !require("pkg-config", TEST) {
        return;
    }
    let work = Workdir::new("install");
    let prefix = work.join("prefix");
    let prefix_arg = prefix.to_str().expect("UTF-8 path");

    let started = Instant::now();
    let output = run_ok(&mut install_command(&[prefix_arg]));
    eprintln!(
        "install-capi.sh (build, nothing to rebuild, and install): {:?}",
        started.elapsed()
    );
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        cprog::text(&output.stdout).contains(&format!("installed libpmem2_source {version}")),
        "{}",
        describe(&output)
    );

    // The files.
    let lib = prefix.join("lib");
    assert!(same_bytes(
        &lib.join("libpmem2_source.so.1"),
        &support::our_shared_library()
    ));
    assert_eq!(
        std::fs::read_link(lib.join("libpmem2_source.so")).expect("symlink"),
        Path::new("libpmem2_source.so.1")
    );
    assert!(same_bytes(
        &lib.join("libpmem2_source.a"),
        &support::our_static_library()
    ));
    assert!(same_bytes(
        &prefix.join("include/pmem2_source.h"),
        &support::our_include_dir().join("pmem2_source.h")
    ));

    // pkg-config sees it, with Cargo's version.
    assert_eq!(pkg_config(&prefix, &["--modversion"]), [version]);
    let flags = pkg_config(&prefix, &["--cflags", "--libs"]);
    assert_eq!(
        flags,
        [
            format!("-I{prefix_arg}/include"),
            format!("-L{prefix_arg}/lib"),
            "-lpmem2_source".to_string(),
        ]
    );

    // A program built with those flags, run with the installed shared library.
    let mut args = vec![c_source("basic.c").into_os_string()];
    args.extend(flags.iter().map(Into::into));
    let exe = cprog::build(&work, "basic_dynamic", args);
    assert!(
        needed(&exe).contains("Shared library: [libpmem2_source.so.1]"),
        "{}",
        needed(&exe)
    );
    cprog::run_basic(&work, &exe, &[("LD_LIBRARY_PATH", &lib)]);

    // The same statically: the installed .a and Libs.private.
    // (-nodefaultlibs: Libs.private alone must suffice.)
    let mut args = vec![
        "-nodefaultlibs".into(),
        c_source("basic.c").into_os_string(),
    ];
    args.extend(pkg_config(&prefix, &["--cflags"]).iter().map(Into::into));
    args.extend(
        pkg_config(&prefix, &["--static", "--libs"])
            .iter()
            .map(|flag| {
                if flag == "-lpmem2_source" {
                    "-l:libpmem2_source.a".into()
                } else {
                    flag.into()
                }
            }),
    );
    let exe = cprog::build(&work, "basic_static", args);
    assert!(
        !needed(&exe).contains("libpmem2_source"),
        "{}",
        needed(&exe)
    );
    cprog::run_basic(&work, &exe, &[]);
}

#[test]
fn destdir_stages_the_files_for_the_prefix() {
    let work = Workdir::new("install-destdir");
    let stage = work.join("stage");
    let started = Instant::now();
    let output =
        run_ok(install_command(&["--no-build", "/opt/pmem2-source"]).env("DESTDIR", &stage));
    eprintln!("install-capi.sh --no-build: {:?}", started.elapsed());
    let root = stage.join("opt/pmem2-source");
    for file in [
        "lib/libpmem2_source.so.1",
        "lib/libpmem2_source.so",
        "lib/libpmem2_source.a",
        "lib/pkgconfig/pmem2_source.pc",
        "include/pmem2_source.h",
    ] {
        assert!(
            root.join(file).exists(),
            "{file} missing\n{}",
            describe(&output)
        );
    }
    let pc = std::fs::read_to_string(root.join("lib/pkgconfig/pmem2_source.pc")).expect("pc");
    assert!(
        pc.lines().any(|line| line == "prefix=/opt/pmem2-source"),
        "{pc}"
    );
    assert!(
        pc.lines()
            .any(|line| line == format!("Version: {}", env!("CARGO_PKG_VERSION"))),
        "{pc}"
    );
    assert!(!pc.contains('@'), "unsubstituted placeholder:\n{pc}");
}

#[test]
fn bad_arguments_are_refused() {
    for args in [&["relative/prefix"][..], &["--frobnicate"], &["/a", "/b"]] {
        let output = cprog::run(&mut install_command(args));
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}\n{}",
            describe(&output)
        );
    }
}
