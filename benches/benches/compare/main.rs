//! The comparison harness: libpmem2 1.12.1, ours and the bare syscalls, side by side.
//!
//! In one process, for each case, these contenders run interleaved batches (see
//! `pmem2_source_benches::timing`):
//!
//! - **floor**: the syscalls the call needs and nothing else (`fcntl` + `fstat`, plus a
//!   `readlinkat` of the same `/sys/dev/char/M:m/subsystem` string into a buffer of the same
//!   size for a character device), issued with the core's own syscall instructions;
//! - **ours, C ABI**: `pmem2_source_from_fd` (+ `pmem2_source_delete` on success) of our
//!   `libpmem2_source.so`, loaded with `dlopen`;
//! - **ours, Rust**: `Source::from_fd` by value (no allocation, no message);
//! - **libpmem2**: Debian's `libpmem2.so.1`, loaded with `dlopen` beside ours;
//! - **minimal C** (`from_fd` cases): `benches/c/minimal_source.c`, the least a C-ABI
//!   `from_fd` can do (the floor's syscalls, its own call, `malloc`/`free`, the error code in a
//!   `__thread` variable), built by `build.rs` with the default TLS model, with TLS
//!   descriptors (x86_64; what `scripts/build-capi.sh` gives our library) and with the
//!   initial-exec model, and loaded with `dlopen` like ours.
//!
//! It prints the median ns per call of each and the ratios as a markdown table, ours against
//! the minimal C function in a second one, then the spread of the per-round ratios. Cases: a
//! regular file, `/dev/null`, a fake Device DAX (a tmpfs over `/sys/dev/char` in a private
//! mount namespace: root only), a closed descriptor, a write-only one, a directory; `size` and
//! `alignment` on a regular file and on the fake Device DAX (ours only there: libpmem2 dies
//! with SIGSEGV in libndctl).
//!
//! ```text
//! scripts/build-capi.sh
//! cargo bench -p pmem2-source-benches --bench compare -- [--rounds N] [--batch-us N] [--cases a,b]
//! # one contender, untimed, for valgrind --tool=callgrind --toggle-collect='*callgrind_batch*':
//! target/release/deps/compare-… --callgrind CASE floor|c|rust|libpmem2|minimal… CALLS
//! ```
//!
//! `scripts/bench.sh` does all of this and adds the date, CPU and load.

// The harness on Linux with the core's raw-syscall backend; elsewhere a stub that says so.
#[cfg_attr(
    not(all(
        target_os = "linux",
        any(
            target_arch = "x86_64",
            target_arch = "aarch64",
            target_arch = "riscv64"
        )
    )),
    path = "unsupported.rs"
)]
mod harness;

fn main() -> std::process::ExitCode {
    harness::main()
}
