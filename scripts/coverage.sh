#!/usr/bin/env bash
# Line coverage of the core (src/**) by the root package's tests (unit and integration tests,
# fake_devdax included: run as root so nothing skips), with cargo-llvm-cov. Prints the
# per-file table, the uncovered lines and the total, and fails if the total is below 98%.
# Installs llvm-tools-preview for the pinned toolchain and cargo-llvm-cov first if needed.
#
#   ./scripts/coverage.sh          # summary and check
#   ./scripts/coverage.sh --html   # also writes target/llvm-cov/html/index.html
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR=never

LLVM_COV_VERSION=0.9.1
MINIMUM=98

# The component must match the toolchain the tests build with: the one rust-toolchain.toml pins.
if ! rustup component list --installed | grep -q '^llvm-tools'; then
  rustup component add llvm-tools-preview
fi
if [ "$(cargo llvm-cov --version 2>/dev/null)" != "cargo-llvm-cov $LLVM_COV_VERSION" ]; then
  echo "coverage: installing cargo-llvm-cov $LLVM_COV_VERSION"
  cargo install --locked --version "$LLVM_COV_VERSION" cargo-llvm-cov
fi

# The stress test adds no lines after a few cycles; keep it short here.
export PMEM2_STRESS_ITERATIONS="${PMEM2_STRESS_ITERATIONS:-20000}"
report=$(mktemp)
trap 'rm -f "$report"' EXIT
cargo llvm-cov --locked -p pmem2-source --summary-only --show-missing-lines | tee "$report"
if [ "${1:-}" = "--html" ]; then
  cargo llvm-cov report -p pmem2-source --html
  echo "coverage: target/llvm-cov/html/index.html"
fi

# TOTAL  regions missed cover  functions missed executed  lines missed cover ...
lines=$(awk '$1 == "TOTAL" { print $10 }' "$report")
if [ -z "$lines" ]; then
  echo "coverage: no TOTAL line in the report" >&2
  exit 1
fi
echo "coverage: core line coverage $lines (minimum $MINIMUM%)"
if ! awk -v cover="${lines%\%}" -v minimum="$MINIMUM" 'BEGIN { exit !(cover >= minimum) }'; then
  echo "coverage: FAILED: $lines is below $MINIMUM%" >&2
  exit 1
fi
