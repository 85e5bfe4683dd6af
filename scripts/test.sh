#!/usr/bin/env bash
# Every check, as CI runs it: formatting, lints (host, no_std and aarch64), all tests, PMDK's
# own unit tests and examples against ours (scripts/pmdk-tests.sh), the benches once
# (untimed), a real Device DAX in a VM, the Windows build under Wine, Miri, coverage, bounded
# fuzzing, the no_std and cross builds, and the docs. Installs what it needs first
# (scripts/setup.sh and each step's own script).
# Run as root: some tests make private mount namespaces. With CI=true nothing may be skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR=never

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all --check
cargo fmt --manifest-path examples/minimal-runtime/Cargo.toml --check

step "shellcheck"
shellcheck scripts/*.sh .ci/run tests/devdax-vm/*.sh

step "cargo clippy (host, all targets)"
cargo clippy --locked --workspace --all-targets -- -D warnings
step "cargo clippy (core on x86_64-unknown-none, aarch64-unknown-linux-gnu)"
cargo clippy --locked -p pmem2-source --target x86_64-unknown-none -- -D warnings
cargo clippy --locked -p pmem2-source --target x86_64-unknown-none --features alloc,testing -- -D warnings
cargo clippy --locked --workspace --all-targets --target aarch64-unknown-linux-gnu -- -D warnings
step "cargo clippy (minimal-runtime example)"
(cd examples/minimal-runtime && cargo clippy --locked -- -D warnings)

step "cargo test --workspace"
cargo test --locked --workspace

step "PMDK 1.12.1's own unit tests and examples against ours: scripts/pmdk-tests.sh"
./scripts/pmdk-tests.sh

step "benches run once, untimed (their answers are checked; no time is asserted)"
./scripts/bench.sh --criterion --test
./scripts/bench.sh --rounds 1 --batch-us 20 >/dev/null
./scripts/bench.sh --layouts --rounds 1 --batch-us 20 >/dev/null
./scripts/bench.sh --tls-models --rounds 1 --batch-us 20 >/dev/null

step "Device DAX in a VM: tests/devdax-vm/run.sh"
tests/devdax-vm/run.sh

step "Windows under Wine: scripts/wine-tests.sh"
./scripts/wine-tests.sh

step "Miri: scripts/miri.sh"
./scripts/miri.sh

step "coverage of the core (at least 98% of lines): scripts/coverage.sh"
./scripts/coverage.sh

step "fuzzing: every target for ${FUZZ_SECONDS:-30}s (scripts/fuzz.sh)"
./scripts/fuzz.sh

step "no_std build: cargo build -p pmem2-source --target x86_64-unknown-none"
cargo build --locked -p pmem2-source --target x86_64-unknown-none
step "cross check: cargo check --workspace --target aarch64-unknown-linux-gnu"
cargo check --locked --workspace --all-targets --target aarch64-unknown-linux-gnu

step "cargo doc -D warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --workspace --no-deps --all-features

step "all checks passed"
