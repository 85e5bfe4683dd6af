//! The shared library exports libpmem2's prototypes under the right names, with the right
//! SONAME, and nothing of Rust's internals.

#![cfg(not(windows))] // Linux only: scripts/wine-tests.sh has the Windows tests.

mod support;

use std::process::Command;

fn dynamic_symbols() -> Vec<String> {
    let output = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(support::our_shared_library())
        .output()
        .expect("run nm (binutils)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().nth(2).map(str::to_owned))
        .collect()
}

#[test]
fn exports_exactly_the_c_abi() {
    let mut exported: Vec<String> = dynamic_symbols()
        .into_iter()
        .filter(|name| !name.starts_with("LIBPMEM2_")) // the version definition itself
        .map(|name| name.split('@').next().unwrap_or_default().to_string())
        .collect();
    exported.sort();
    assert_eq!(
        exported,
        [
            "pmem2_errormsg",
            "pmem2_perror",
            "pmem2_source_alignment",
            "pmem2_source_delete",
            "pmem2_source_device_id",
            "pmem2_source_device_usc",
            "pmem2_source_from_anon",
            "pmem2_source_from_fd",
            "pmem2_source_get_fd",
            "pmem2_source_numa_node",
            "pmem2_source_pread_mcsafe",
            "pmem2_source_pwrite_mcsafe",
            "pmem2_source_set_funcs",
            "pmem2_source_size",
        ]
    );
}

#[test]
fn soname_is_versioned() {
    let output = Command::new("readelf")
        .arg("-d")
        .arg(support::our_shared_library())
        .output()
        .expect("run readelf (binutils)");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("Library soname: [libpmem2_source.so.1]"),
        "{text}"
    );
}
