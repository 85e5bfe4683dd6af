//! A C program linked with `libpmem2_source.a` and the native libraries Rust's std needs
//! (the `Libs.private` of `pmem2_source.pc.in`, and nothing else: `-nodefaultlibs`) runs and
//! answers correctly, and carries the library inside: no dynamic dependency on
//! `libpmem2_source.so`.

#![cfg(not(windows))] // Linux only: scripts/wine-tests.sh has the Windows tests.

mod cprog;
mod support;

use std::process::Command;

use cprog::{Workdir, c_source, require, run_ok};

#[test]
fn static_library_links_into_a_c_program() {
    if !require("gcc", "static_library_links_into_a_c_program")
        || !require("nm", "static_library_links_into_a_c_program")
    {
        return;
    }
    let work = Workdir::new("static-link");
    // -nodefaultlibs: only the libraries listed are linked (gcc adds libgcc_s and libc by
    // itself otherwise), so the list is shown to be complete.
    let mut args = vec![
        "-nodefaultlibs".into(),
        "-I".into(),
        support::our_include_dir().into_os_string(),
        c_source("basic.c").into_os_string(),
        support::our_static_library().into_os_string(),
    ];
    args.extend(cprog::native_static_libs().into_iter().map(Into::into));
    let exe = cprog::build(&work, "static_link", args);

    cprog::run_basic(&work, &exe, &[]);

    // The functions are defined in the executable...
    let symbols = cprog::text(&run_ok(Command::new("nm").arg(&exe)).stdout);
    for function in [
        "pmem2_source_from_fd",
        "pmem2_source_get_fd",
        "pmem2_source_delete",
        "pmem2_errormsg",
        "pmem2_perror",
    ] {
        assert!(
            symbols.lines().any(|line| {
                let mut words = line.split_whitespace().skip(1);
                words.next() == Some("T") && words.next() == Some(function)
            }),
            "{function} is not defined (T) in the executable:\n{symbols}"
        );
    }
    // ...nothing of ours is left for the dynamic loader...
    let undefined = cprog::text(
        &run_ok(
            Command::new("nm")
                .args(["-D", "--undefined-only"])
                .arg(&exe),
        )
        .stdout,
    );
    assert!(
        !undefined.contains("pmem2_"),
        "dynamic references to pmem2_* remain:\n{undefined}"
    );
    // ...and no shared library of ours (or libpmem2) is needed.
    let dynamic = cprog::readelf(&["-d"], &exe);
    assert!(
        dynamic.contains("(NEEDED)") && !dynamic.contains("[libpmem2"),
        "the executable must not need libpmem2_source or libpmem2:\n{dynamic}"
    );
}
