#!/usr/bin/env bash
# Builds every cargo-fuzz target in fuzz/fuzz_targets/ and runs each for a bounded time on a
# copy of its committed seed corpus (fuzz/corpus/<target>/; a run never grows the committed
# corpus). Fails (exit 1) on any crash, panic, leak, timeout or out-of-memory, after running
# every target; prints each target's executions and coverage from libFuzzer's final stats.
#
# Usage: scripts/fuzz.sh [TARGET...]        (default: every fuzz/fuzz_targets/*.rs)
#
# Environment:
#   FUZZ_SECONDS    seconds per target (default 30)
#   FUZZ_FORK       libFuzzer -fork=N worker processes per target (default: none, one process)
#   FUZZ_TIMEOUT    seconds one input may take before it counts as a hang (default 10)
#   FUZZ_TOOLCHAIN  nightly toolchain for cargo-fuzz (default: the pinned nightly-2026-10-01)
#   FUZZ_KEEP       if set, a directory to keep each run's grown corpus and log in
# A crash input is saved under fuzz/artifacts/<target>/ (ignored by git); reproduce it with
# `cargo +nightly-2026-10-01 fuzz run <target> <file>`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR=never

toolchain=${FUZZ_TOOLCHAIN:-nightly-2026-10-01}
cargo_fuzz_version=0.13.2
seconds=${FUZZ_SECONDS:-30}
timeout=${FUZZ_TIMEOUT:-10}
fork=${FUZZ_FORK:-}

step() { printf '\n==> %s\n' "$*"; }

if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
  step "installing $toolchain"
  rustup toolchain install "$toolchain" --profile minimal
fi
if ! cargo fuzz --version 2>/dev/null | grep -qF "$cargo_fuzz_version"; then
  step "installing cargo-fuzz $cargo_fuzz_version"
  cargo install cargo-fuzz --locked --version "$cargo_fuzz_version"
fi

# Every target file must be declared as a [[bin]] in fuzz/Cargo.toml.
declared=$(cargo "+$toolchain" fuzz list)
all_targets=()
for file in fuzz/fuzz_targets/*.rs; do
  name=$(basename "$file" .rs)
  if ! grep -qxF "$name" <<<"$declared"; then
    echo "fuzz.sh: $file has no [[bin]] section in fuzz/Cargo.toml" >&2
    exit 1
  fi
  all_targets+=("$name")
done
if (($#)); then
  targets=("$@")
else
  targets=("${all_targets[@]}")
fi

step "cargo fuzz build (${targets[*]})"
# The committed fuzz/Cargo.lock must be up to date.
cargo "+$toolchain" metadata --locked --format-version 1 \
  --manifest-path fuzz/Cargo.toml >/dev/null
if (($#)); then
  for target in "${targets[@]}"; do
    cargo "+$toolchain" fuzz build "$target"
  done
else
  cargo "+$toolchain" fuzz build
fi

# differential_real_fds loads our C ABI (and Debian's libpmem2) with dlopen.
step "cargo build --release -p pmem2-source-capi (for differential_real_fds)"
cargo build --locked --release -p pmem2-source-capi
export PMEM2_SOURCE_SO="$PWD/target/release/libpmem2_source.so"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
summary=()
for target in "${targets[@]}"; do
  step "fuzzing $target for ${seconds}s"
  corpus="$work/$target/corpus"
  log="$work/$target/fuzz.log"
  mkdir -p "$corpus"
  if [ -d "fuzz/corpus/$target" ]; then
    cp -R "fuzz/corpus/$target/." "$corpus/"
  fi
  args=(-max_total_time="$seconds" -timeout="$timeout" -print_final_stats=1)
  if [ -n "$fork" ]; then
    args+=(-fork="$fork")
  fi
  status=ok
  if ! cargo "+$toolchain" fuzz run "$target" "$corpus" -- "${args[@]}" >"$log" 2>&1; then
    status=FAILED
    failed+=("$target")
    echo "--- what failed:"
    grep -E -A6 'panicked at|ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)|ALARM:' "$log" |
      head -n 40 || true
    echo "--- end of the log:"
    grep -v -E '^ +[0-9]+: |^ +at ' "$log" | tail -n 25
  fi
  # The last status line, e.g. "#501804  DONE   cov: 1632 ft: 8969 corp: 1475/213Kb ..." (or
  # "#501804: cov: 1632 ft: 8969 corp: 1475 ..." with -fork).
  last=$(grep -E '^#[0-9]+.* cov: [0-9]+' "$log" | tail -n 1 || true)
  execs=$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' |
    tail -n 1 || true)
  if [ -z "$execs" ]; then
    execs=$(grep -oE '^#[0-9]+' <<<"$last" | tr -d '#' || true)
  fi
  cov=$(grep -oE 'cov: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || true)
  ft=$(grep -oE 'ft: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || true)
  corp=$(grep -oE 'corp: [0-9]+' <<<"$last" | grep -oE '[0-9]+' || true)
  line=$(printf '%-28s %-6s executions %-10s cov %-6s ft %-7s corpus %s' \
    "$target" "$status" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}")
  echo "$line"
  summary+=("$line")
  if [ -n "${FUZZ_KEEP:-}" ]; then
    mkdir -p "$FUZZ_KEEP/$target"
    cp -R "$corpus/." "$FUZZ_KEEP/$target/"
    cp "$log" "$FUZZ_KEEP/$target.log"
  fi
done

step "fuzzing summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "fuzz.sh: FAILED: ${failed[*]} (inputs saved under fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz.sh: all ${#targets[@]} targets ran ${seconds}s without a failure"
