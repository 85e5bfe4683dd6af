#!/usr/bin/env bash
# Runs the core's tests that make no real syscalls under Miri: the unit tests (scripted
# kernel, allocators, static pool, parsers, errors; the few that call the real kernel are
# `#[cfg_attr(miri, ignore)]`), the OOM test and the static-pool stress test (8 threads, 40
# cycles each under Miri). Installs the pinned nightly with miri and rust-src first if needed.
#
#   ./scripts/miri.sh                      # the default run
#   MIRIFLAGS=-Zmiri-tree-borrows ./scripts/miri.sh
#   ./scripts/miri.sh -- alloc::           # extra arguments go to `cargo miri test`
#
# MIRIFLAGS defaults to -Zmiri-strict-provenance (Stacked Borrows, data-race detection and
# leak checks are Miri's defaults).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR=never

NIGHTLY=nightly-2026-10-01

installed=$(rustup component list --toolchain "$NIGHTLY" --installed 2>/dev/null || true)
if ! grep -q '^miri' <<<"$installed" || ! grep -q '^rust-src' <<<"$installed"; then
  echo "miri: installing $NIGHTLY with miri and rust-src"
  rustup toolchain install --no-self-update "$NIGHTLY" --profile minimal --component miri,rust-src
fi

export MIRIFLAGS="${MIRIFLAGS:--Zmiri-strict-provenance}"
cargo "+$NIGHTLY" miri setup >/dev/null
echo "miri: MIRIFLAGS=$MIRIFLAGS"
cargo "+$NIGHTLY" miri test --locked -p pmem2-source --lib --test oom --test static_pool_stress "$@"
