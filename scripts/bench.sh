#!/usr/bin/env bash
# The performance comparison: libpmem2 1.12.1, ours (C ABI and Rust) and the bare syscalls,
# side by side in one process (benches/benches/compare). Prints a markdown table of the median
# ns per call and the ratios, after the date, CPU, kernel and load it was measured with.
#
#   scripts/bench.sh [--rounds N] [--batch-us N] [--cases slug,slug]
#       the table (as root for the fake Device DAX rows: a private mount namespace);
#   scripts/bench.sh --callgrind [CALLS]
#       user-space instructions per call of every contender of every case, counted by
#       valgrind's callgrind (stable from run to run, unlike times; the kernel's work is not
#       counted);
#   scripts/bench.sh --criterion [CRITERION ARGS]
#       the criterion benches of the Rust API (cargo bench --bench from_fd);
#   scripts/bench.sh --layouts [--rounds N] [--batch-us N] [--cases slug,slug]
#       the ratios to the floor under three code layouts: the library and the harness built
#       with every function aligned to 16, 32 and 64 bytes (target/layout-*). A few ns of a
#       failing call move with where its instructions fall across 64-byte lines; a ratio
#       that holds under all three does not depend on one build's luck.
#   scripts/bench.sh --tls-models [--rounds N] [--batch-us N] [--cases slug,slug]
#       the C ABI's ratios to the floor with the library's thread-locals reached through TLS
#       descriptors (as installed) and through the initial-exec model (never installed: see
#       scripts/build-capi.sh), one harness loading each in turn, two runs of each, alternating.
#
# Beside them, the table times benches/c/minimal_source.c: the least a C-ABI from_fd can do
# (the same syscalls, its own frame, malloc/free, the error code in a thread-local), built by
# benches/build.rs with the default TLS model, with TLS descriptors (x86_64) and with the
# initial-exec model; a second table sets ours against it.
#
# The table measures the C library as scripts/install-capi.sh builds it (scripts/build-capi.sh:
# functions aligned to 64 bytes on x86_64) and the Rust API with the default codegen a crate
# that depends on it gets.
#
# Needs Debian's libpmem2 (package libpmem2; the table leaves its columns empty without it) and,
# for --callgrind, valgrind. Timings on a shared machine are only as good as its load: the
# script says so when the 1-minute load average is 1 or more.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR=never

mode=table
case "${1:-}" in
  --callgrind) mode=callgrind; shift ;;
  --criterion) mode=criterion; shift ;;
  --layouts) mode=layouts; shift ;;
  --tls-models) mode=tls-models; shift ;;
esac

if [ "$mode" = criterion ]; then
  exec cargo bench --locked -p pmem2-source-benches --bench from_fd -- "$@"
fi

# Builds the C library as it is installed (scripts/build-capi.sh, functions aligned to
# FUNCTION_ALIGNMENT bytes) and the harness (with HARNESS_RUSTFLAGS), in target directory $1
# when given; sets $compare and exports PMEM2_SOURCE_SO.
build() {
  local dir=${1:-target}
  ./scripts/build-capi.sh --quiet --target-dir "$dir"
  export PMEM2_SOURCE_SO="$PWD/$dir/release/libpmem2_source.so"
  compare=$(RUSTFLAGS=${HARNESS_RUSTFLAGS:-} cargo bench --locked -p pmem2-source-benches \
    --bench compare --no-run --target-dir "$dir" 2>&1 |
    sed -n 's/.*Executable .*(\(.*compare-[0-9a-f]*\))$/\1/p' | tail -n 1)
  if [ ! -x "$compare" ]; then
    echo "bench.sh: cannot find the compare bench executable" >&2
    exit 1
  fi
}

# Runs the harness with the given options and prints the rows of its first table as
# "call | on<TAB>C ABI / floor<TAB>Rust / floor"; fails when there are none.
ratio_rows() {
  local rows
  rows=$("$compare" "$@" 2>/dev/null | awk -F' [|] ' '/^[|] `/ && !seen[$1 $2]++ {
    print $1 " | " $2 "\t" $(NF - 3) "\t" $(NF - 2) }')
  [ -n "$rows" ] || { echo "bench.sh: the harness printed no table" >&2; return 1; }
  echo "$rows"
}

if [ "$mode" = layouts ]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
  echo "Measured $(date '+%Y-%m-%d %H:%M %Z'), load average $(cut -d' ' -f1-3 /proc/loadavg)" \
    "before the run; one table per layout, each with its own floor."
  for bytes in 16 32 64; do
    log2=$(awk -v b="$bytes" 'BEGIN { print log(b) / log(2) }')
    FUNCTION_ALIGNMENT=$bytes HARNESS_RUSTFLAGS="-C llvm-args=-align-all-functions=$log2" \
      build "target/layout-$bytes"
    ratio_rows "$@" >"$out/$bytes"
  done
  echo
  echo "| call | on | C ABI / floor: 16 / 32 / 64-byte functions | Rust / floor: 16 / 32 / 64 |"
  echo "|---|---|---|---|"
  paste "$out/16" "$out/32" "$out/64" | awk -F'\t' '{
    printf "%s | %s / %s / %s | %s / %s / %s |\n", $1, $2, $5, $8, $3, $6, $9 }'
  echo
  echo "Load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)."
  exit 0
fi

if [ "$mode" = tls-models ]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
  TLS_MODEL=initial-exec ./scripts/build-capi.sh --quiet --target-dir target/tls-initial-exec
  initial_exec_so="$PWD/target/tls-initial-exec/release/libpmem2_source.so"
  build
  descriptor_so=$PMEM2_SOURCE_SO
  echo "Measured $(date '+%Y-%m-%d %H:%M %Z'), load average $(cut -d' ' -f1-3 /proc/loadavg)" \
    "before the runs; the same harness, each run with its own floor, in the order of the columns."
  columns=()
  for run in 1 2; do
    for model in descriptor initial-exec; do
      so=$descriptor_so
      [ "$model" = initial-exec ] && so=$initial_exec_so
      PMEM2_SOURCE_SO=$so ratio_rows "$@" >"$out/$run-$model"
      columns+=("$out/$run-$model")
    done
  done
  echo
  echo "| call | on | C ABI / floor: descriptor, initial-exec, descriptor, initial-exec |"
  echo "|---|---|---|"
  paste "${columns[@]}" | awk -F'\t' '{ printf "%s | %s, %s, %s, %s |\n", $1, $2, $5, $8, $11 }'
  echo
  echo "Load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)."
  exit 0
fi

build

if [ "$mode" = callgrind ]; then
  calls="${1:-10000}"
  command -v valgrind >/dev/null || { echo "bench.sh: --callgrind needs valgrind" >&2; exit 1; }
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
  echo "| case | floor | ours, C ABI | ours, Rust | libpmem2 | minimal C | minimal C, TLS descriptor |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for case in regular dev-null closed write-only directory size-regular align-regular \
    fake-dax size-fake-dax align-fake-dax; do
    row="| $case |"
    for who in floor c rust libpmem2 minimal minimal-tlsdesc; do
      if valgrind --tool=callgrind --callgrind-out-file="$out/cg" --collect-atstart=no \
        --toggle-collect='*callgrind_batch*' "$compare" --callgrind "$case" "$who" "$calls" \
        >"$out/log" 2>&1; then
        total=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/log")
        if grep -q "^ran $calls calls" "$out/log" && [ -n "$total" ]; then
          row="$row $((total / calls)) |"
        else
          row="$row — |"
        fi
      else
        row="$row — |"
      fi
    done
    echo "$row"
  done
  echo
  echo "Instructions per call in user space (valgrind $(valgrind --version | sed 's/valgrind-//'), \
$calls calls each); — where the contender does not exist for the case (libpmem2 on the fake \
Device DAX queries, the minimal C functions outside from_fd, its TLS-descriptor build off x86_64) \
or the fake Device DAX needs root."
  exit 0
fi

load=$(cut -d' ' -f1-3 /proc/loadavg)
echo "Measured $(date '+%Y-%m-%d %H:%M %Z') on $(lscpu | sed -n 's/^Model name: *//p' | head -n 1)" \
  "($(nproc) CPUs), Linux $(uname -r), load average $load before the run;"
echo "$(rustc --version), libpmem2 $(dpkg-query -W -f '${Version}' libpmem2 2>/dev/null || echo '(not installed)')."
if awk -v l="${load%% *}" 'BEGIN { exit !(l >= 1.0) }'; then
  echo "Warning: load average ${load%% *} >= 1: other work shares the CPUs, expect noise." >&2
fi
"$compare" "$@"
echo
echo "Load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)."
