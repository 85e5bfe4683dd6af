#!/usr/bin/env bash
# Builds the C library (libpmem2_source.so and .a, release profile) the way it is installed
# (scripts/install-capi.sh) and benchmarked (scripts/bench.sh): fat LTO, and on x86_64 every
# function of the library aligned to 64 bytes and its thread-locals reached through TLS
# descriptors.
#
# Why the alignment: where the few dozen instructions after a failing call's syscall fall across
# 64-byte lines moved `pmem2_source_from_fd` on a closed descriptor between 1.10x and 1.16x the
# bare `fcntl` from one build to the next; every 64-byte-aligned build measured 1.10x
# (docs/benchmarks.md). It is passed to the library's own rustc invocation only (`cargo rustc`): with
# fat LTO that one invocation generates all of the library's machine code, core and std
# included, while Rust users of the crates keep their own codegen. It costs about 2 % of size.
#
# Why TLS descriptors (`-enable-tlsdesc`, what `-mtls-dialect=gnu2` is to a C compiler; the
# default on aarch64 already): a failing call stores its error in a thread-local, and a
# dlopen'ed library reaches its thread-locals through `__tls_get_addr` by default. With
# descriptors, glibc places the library's (small: shims/c/src/message.rs) thread-local block
# in its static TLS reserve when there is room, and an access becomes one indirect call that
# returns a fixed offset; when there is no room, the same code falls back to a lookup like
# `__tls_get_addr`'s, so loading never fails (an initial-exec model would make dlopen fail
# instead). About 2 ns of a failing `pmem2_source_from_fd` (docs/benchmarks.md);
# shims/c/tests/tls_model.rs checks the relocations, the block's size and both outcomes. The
# option is LLVM's, not a stable rustc flag: the toolchain is pinned, and that test fails if
# it stops taking effect.
#
# Usage: scripts/build-capi.sh [CARGO OPTIONS, e.g. --quiet --target-dir DIR]
#   FUNCTION_ALIGNMENT=16|32|64   the alignment in bytes (default 64; bench.sh --layouts varies it)
#   TLS_MODEL=descriptor|initial-exec
#                                 how the thread-locals are reached (default descriptor). The
#                                 initial-exec build exists only for bench.sh --tls-models, to
#                                 measure what the model we refuse would gain: rustc takes it as
#                                 an unstable -Z option, so it is built with RUSTC_BOOTSTRAP=1 on
#                                 the pinned compiler, and its dlopen fails once glibc's static
#                                 TLS reserve is used up. Never install it.
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
case "${TLS_MODEL:-descriptor}" in
descriptor)
	if [ "$(uname -m)" = x86_64 ]; then
		codegen+=(-C llvm-args=-enable-tlsdesc)
	fi
	;;
initial-exec)
	export RUSTC_BOOTSTRAP=1
	codegen+=(-Z tls-model=initial-exec)
	;;
*)
	echo "build-capi.sh: TLS_MODEL must be descriptor or initial-exec, not '$TLS_MODEL'" >&2
	exit 2
	;;
esac
exec "${CARGO:-cargo}" rustc --locked --release -p pmem2-source-capi --lib "$@" -- ${codegen[@]+"${codegen[@]}"}
