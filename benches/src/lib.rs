//! Helpers for the benches of `pmem2-source` (Linux only): the descriptors each case asks
//! about ([`fixtures`]), the bare-syscall floor ([`floor`]), the staged sysfs of a fake Device
//! DAX ([`fake_dax`]) and interleaved batch timing ([`timing`]).
//!
//! - `benches/from_fd.rs` (criterion): the Rust API, by value and allocated (global
//!   allocator, static pool), for a regular file, `/dev/null`, a fake Device DAX and the
//!   failure paths.
//! - `benches/compare.rs` (run by `scripts/bench.sh`): libpmem2's `pmem2_source_from_fd` +
//!   `delete`, ours through the C ABI and through the Rust API, and the bare syscalls the call
//!   needs, interleaved in one process; prints ns/call and the ratios as a markdown table.

#![cfg(target_os = "linux")]

// The integration tests' helpers (descriptors, scratch directories), for the fixtures.
#[path = "../../tests/common/mod.rs"]
mod common;

pub mod fake_dax;
pub mod fixtures;
#[cfg(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64"
))]
#[allow(unsafe_code)]
pub mod floor;
pub mod timing;
