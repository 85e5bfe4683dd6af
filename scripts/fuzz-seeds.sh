#!/usr/bin/env bash
# Picks a small, meaningful seed corpus for a fuzz target that reports the outcomes of each
# run (from_fd_scripted appends them to the file named by FUZZ_OUTCOMES): runs every input in
# the given directories once and keeps, for each outcome, the shortest input that produced
# it, as fuzz/corpus/<target>/<outcome> (the old seeds of that target are replaced).
#
# Usage: scripts/fuzz-seeds.sh TARGET DIR...
#   e.g. FUZZ_SECONDS=600 FUZZ_KEEP=/tmp/grown scripts/fuzz.sh from_fd_scripted
#        scripts/fuzz-seeds.sh from_fd_scripted /tmp/grown/from_fd_scripted
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
toolchain=${FUZZ_TOOLCHAIN:-nightly-2026-10-01}

if (($# < 2)); then
  echo "usage: $0 TARGET DIR..." >&2
  exit 2
fi
target=$1
shift
cargo "+$toolchain" fuzz build "$target"
binary="fuzz/target/x86_64-unknown-linux-gnu/release/$target"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/seeds"
count=0
while IFS= read -r -d '' input; do
  : >"$work/outcomes"
  FUZZ_OUTCOMES="$work/outcomes" "$binary" "$input" >/dev/null 2>&1 || {
    echo "fuzz-seeds.sh: $input fails: run it with $binary" >&2
    exit 1
  }
  size=$(stat -c %s "$input")
  while IFS= read -r outcome; do
    seed="$work/seeds/$outcome"
    if [ ! -e "$seed" ] || (($(stat -c %s "$seed") > size)); then
      cp "$input" "$seed"
    fi
  done <"$work/outcomes"
  count=$((count + 1))
done < <(find "$@" -type f -print0)

rm -rf "fuzz/corpus/$target"
mkdir -p "fuzz/corpus/$target"
cp "$work/seeds/"* "fuzz/corpus/$target/"
echo "fuzz-seeds.sh: $count inputs, $(find "fuzz/corpus/$target" -type f | wc -l) seeds:"
ls "fuzz/corpus/$target"
