//! Compiles `pmem2_perror` (variadic, so C) into the library and gives the shared object its
//! name and symbol versions.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=src/perror.c");
    println!("cargo:rerun-if-changed=pmem2_source.map");
    println!("cargo:rerun-if-changed=include/pmem2_source.h");

    cc::Build::new()
        .file("src/perror.c")
        .include("include")
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true)
        // Linked below with +whole-archive instead: nothing in Rust calls pmem2_perror, and a
        // plain static link would drop the unreferenced object.
        .cargo_metadata(false)
        .compile("pmem2_source_perror");
    let out_dir = env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    println!("cargo:rustc-link-search=native={out_dir}");
    println!("cargo:rustc-link-lib=static:+whole-archive=pmem2_source_perror");

    // A DLL has no soname and no symbol versions: the export list is rustc's .def file, and
    // pmem2_perror is marked __declspec(dllexport) in perror.c.
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("windows") {
        return;
    }
    let manifest_dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libpmem2_source.so.1");
    // Exports pmem2_perror (a C symbol, which rustc's own version script would hide) under
    // libpmem2's version node, so programs linked against libpmem2.so.1 also bind to us.
    println!("cargo:rustc-cdylib-link-arg=-Wl,--version-script={manifest_dir}/pmem2_source.map");
}
