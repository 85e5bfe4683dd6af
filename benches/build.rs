//! Builds `c/minimal_source.c`, the least a C library's `pmem2_source_from_fd` can do, as
//! shared objects for the comparison harness to dlopen: one with a default (`__tls_get_addr`)
//! thread-local, one with an initial-exec one and, on x86_64, one reached through a TLS
//! descriptor. Linux on the harness's architectures only.

use std::env;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=c/minimal_source.c");
    println!("cargo:rerun-if-changed=../shims/c/include/pmem2_source.h");
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if os != "linux" || !["x86_64", "aarch64", "riscv64"].contains(&arch.as_str()) {
        return;
    }
    let out_dir = env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let mut builds = vec![
        ("libminimal_source.so", &[][..]),
        (
            "libminimal_source_static_tls.so",
            &["-DMINIMAL_STATIC_TLS"][..],
        ),
    ];
    // TLS descriptors, as scripts/build-capi.sh builds our library (aarch64 has them by
    // default; riscv64's gcc does not offer them).
    if arch == "x86_64" {
        builds.push(("libminimal_source_tlsdesc.so", &["-mtls-dialect=gnu2"][..]));
    }
    for (name, flags) in builds {
        // The C compiler and flags cc would use for this target (CC, CFLAGS honoured),
        // driven by hand because cc builds static archives only.
        let compiler = cc::Build::new()
            .opt_level(2)
            .pic(true)
            .warnings(true)
            .extra_warnings(true)
            .warnings_into_errors(true)
            .get_compiler();
        let output = Path::new(&out_dir).join(name);
        let status = compiler
            .to_command()
            .args(flags)
            .args([
                "-shared",
                "-fvisibility=hidden",
                "-I../shims/c/include",
                "-o",
            ])
            .arg(&output)
            .arg("c/minimal_source.c")
            .status()
            .unwrap_or_else(|e| panic!("running the C compiler: {e}"));
        assert!(status.success(), "compiling {name}: {status}");
    }
}
