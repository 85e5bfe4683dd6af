#!/usr/bin/env bash
# Builds the C library (libpmem2_source.so and .a, release profile) the way it is installed
# (scripts/install-capi.sh) and benchmarked (scripts/bench.sh): fat LTO, and on x86_64 every
# function of the library aligned to 64 bytes.
#
# Why the alignment: where the few dozen instructions after a failing call's syscall fall across
# 64-byte lines moved `pmem2_source_from_fd` on a closed descriptor between 1.10x and 1.16x the
# bare `fcntl` from one build to the next; every 64-byte-aligned build measured 1.10x (README,
# Benchmarks). It is passed to the library's own rustc invocation only (`cargo rustc`): with
# fat LTO that one invocation generates all of the library's machine code, core and std
# included, while Rust users of the crates keep their own codegen. It costs about 2 % of size.
#
# Usage: scripts/build-capi.sh [CARGO OPTIONS, e.g. --quiet --target-dir DIR]
#   FUNCTION_ALIGNMENT=16|32|64   the alignment in bytes (default 64; bench.sh --layouts varies it)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

alignment=${FUNCTION_ALIGNMENT:-64}
case "$alignment" in
16) log2=4 ;;
32) log2=5 ;;
64) log2=6 ;;
*)
	echo "build-capi.sh: FUNCTION_ALIGNMENT must be 16, 32 or 64, not '$alignment'" >&2
	exit 2
	;;
esac
codegen=()
if [ "$(uname -m)" = x86_64 ]; then
	codegen=(-C "llvm-args=-align-all-functions=$log2")
fi
exec "${CARGO:-cargo}" rustc --locked --release -p pmem2-source-capi --lib "$@" -- ${codegen[@]+"${codegen[@]}"}
