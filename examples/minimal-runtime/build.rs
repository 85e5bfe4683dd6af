//! Link the `minimal-runtime` binary as a static, non-PIE executable with no C runtime.
//!
//! - `-nostartfiles`: no `crt1.o`/`crti.o`/`crtbegin.o`; `_start` is ours (src/main.rs).
//! - `-nostdlib`: no libc, no libgcc; `memcpy` and friends are ours too.
//! - `-static`: no dynamic linker, so no `PT_INTERP` and no `PT_DYNAMIC`.
//! - `-no-pie`: a fixed-address executable. Nothing would apply dynamic relocations at start-up
//!   (that is the C runtime's job in a static-pie), so the executable must need none. rustc
//!   already passes `-no-pie` when the code is built with `-C relocation-model=static` (see
//!   `.cargo/config.toml`); saying it here as well keeps the binary correct when that config
//!   is not applied (cargo run from another directory, or `RUSTFLAGS` set, which replaces
//!   config rustflags): position-independent code links fine into a fixed-address executable.
//! - `--build-id=none`: no `.note.gnu.build-id`, so identical inputs give identical bytes.
//!
//! The `-bins` form applies these to the binary only, not to this build script.

fn main() {
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        "-no-pie",
        "-Wl,--build-id=none",
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }

    // Say so when the codegen flag from .cargo/config.toml did not reach this build: the
    // binary still works (see above), it is only a little larger.
    let rustflags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let static_model = rustflags
        .split('\x1f')
        .collect::<Vec<_>>()
        .windows(2)
        .any(|pair| pair == ["-C", "relocation-model=static"])
        || rustflags
            .split('\x1f')
            .any(|flag| flag == "-Crelocation-model=static");
    if !static_model {
        println!(
            "cargo:warning=building without -C relocation-model=static (run cargo from \
             examples/minimal-runtime so its .cargo/config.toml applies, and without RUSTFLAGS); \
             the binary is still linked as a static non-PIE executable"
        );
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
}
