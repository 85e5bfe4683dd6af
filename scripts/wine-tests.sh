#!/usr/bin/env bash
# The Windows build and tests, on this Linux machine: cross-compiles for x86_64-pc-windows-gnu
# (mingw-w64 as linker) and runs the Windows tests under Wine — Wine, not Windows.
#
#   1. installs what it needs (scripts/setup.sh first, like every script here): Debian's wine,
#      wine64, gcc-mingw-w64-x86-64; the rustup target;
#   2. cargo check and clippy (-D warnings) of the whole workspace, all targets, for Windows;
#      the C header compiled as Windows C by mingw gcc; the DLL's exports;
#   3. builds the Windows test executables: the core's unit tests (of them only the Win32
#      backend's, `sys::windows::`, run here: the rest compare with Linux values and run in
#      `cargo test`), tests/windows.rs, shims/std/tests/windows.rs, and the C ABI's unit tests
#      (shims/c/src/windows/tests.rs);
#   4. runs each under `wine` with a timeout, in a private, headless Wine prefix
#      (target/wine/prefix, created once with `wineboot -i`), with a stand-in
#      bcryptprimitives.dll on WINEPATH: Debian 12's Wine 8.0 lacks ProcessPrng, which Rust's
#      std imports (scripts/wine-processprng.c); stops the prefix's wineserver at the end.
# Exits non-zero on any failure. Run as root (apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR=never

TARGET=x86_64-pc-windows-gnu
WINE_DIR="$PWD/target/wine"
TIMEOUT="${WINE_TEST_TIMEOUT:-600}"
started=$SECONDS

phase() { printf '\n--> %s (%ds)\n' "$*" "$((SECONDS - started))"; }

phase "Debian packages: wine wine64 gcc-mingw-w64-x86-64; the rustup target"
./scripts/setup.sh >/dev/null
./scripts/apt-install.sh wine wine64 gcc-mingw-w64-x86-64
rustup target add "$TARGET" >/dev/null 2>&1 || rustup target add "$TARGET"

phase "cargo check and clippy for $TARGET (workspace, all targets)"
cargo check --locked --workspace --all-targets --target "$TARGET"
cargo clippy --locked --workspace --all-targets --target "$TARGET" -- -D warnings

phase "the C header as Windows C (mingw gcc), the DLL's exports"
for std in c99 c11; do
  x86_64-w64-mingw32-gcc "-std=$std" -pedantic -Wall -Wextra -Werror -Wstrict-prototypes \
    -fsyntax-only -I shims/c/include -I shims/c/tests/c shims/c/tests/c/header_alone.c
done
cargo build --locked -p pmem2-source-capi --target "$TARGET"
exports=$(x86_64-w64-mingw32-objdump -p "target/$TARGET/debug/pmem2_source.dll" |
  sed -n '/\[Ordinal\/Name Pointer\] Table/,/^$/p' | grep -o 'pmem2_[a-z_]*' | sort | tr '\n' ' ')
expected="pmem2_errormsg pmem2_perror pmem2_source_alignment pmem2_source_delete \
pmem2_source_device_id pmem2_source_device_usc pmem2_source_from_anon pmem2_source_from_fd \
pmem2_source_from_handle pmem2_source_get_handle pmem2_source_numa_node \
pmem2_source_pread_mcsafe pmem2_source_pwrite_mcsafe pmem2_source_set_funcs pmem2_source_size "
if [ "$exports" != "$expected" ]; then
  printf 'wine-tests: pmem2_source.dll exports\n  %s\nexpected\n  %s\n' "$exports" "$expected"
  exit 1
fi
echo "pmem2_source.dll exports: $exports"

phase "building the Windows test executables"
# Prints the executable `cargo test --no-run` builds for the given package and target.
test_executable() {
  cargo test --locked --no-run --target "$TARGET" --message-format=json "$@" |
    grep -o '"executable":"[^"]*"' | sed 's/^"executable":"//; s/"$//'
}
core_unit=$(test_executable -p pmem2-source --lib)
core_windows=$(test_executable -p pmem2-source --test windows)
std_windows=$(test_executable -p pmem2-source-std --test windows)
capi_unit=$(test_executable -p pmem2-source-capi --lib)

phase "the Wine prefix and the ProcessPrng stand-in"
mkdir -p "$WINE_DIR/dll"
dll="$WINE_DIR/dll/bcryptprimitives.dll"
if [ ! -f "$dll" ] || [ scripts/wine-processprng.c -nt "$dll" ]; then
  x86_64-w64-mingw32-gcc -O2 -Wall -Werror -shared -o "$dll" scripts/wine-processprng.c -ladvapi32
fi
export WINEPREFIX="$WINE_DIR/prefix" WINEDEBUG=-all WINEARCH=win64
unset DISPLAY WAYLAND_DISPLAY
# No Mono or Gecko installers (no network, no display); our ProcessPrng before Wine's DLL.
export WINEDLLOVERRIDES="mscoree,mshtml=;bcryptprimitives=n,b"
dll_dir="$WINE_DIR/dll"
export WINEPATH="Z:${dll_dir//\//\\}"
trap 'wineserver -k >/dev/null 2>&1 || true' EXIT
if [ ! -f "$WINEPREFIX/system.reg" ]; then
  timeout "$TIMEOUT" wineboot -i >/dev/null 2>&1
  timeout "$TIMEOUT" wineserver -w
fi
wine --version

phase "running the tests under Wine"
failed=()
run() {
  local name=$1 exe=$2
  shift 2
  printf '\n== %s: wine %s %s\n' "$name" "${exe#"$PWD"/}" "$*"
  if ! timeout "$TIMEOUT" wine "$exe" "$@"; then
    failed+=("$name")
  fi
}
run "core: Win32 backend unit tests" "$core_unit" sys::windows::
run "core: tests/windows.rs" "$core_windows"
run "std shim: tests/windows.rs" "$std_windows"
run "C ABI: unit tests" "$capi_unit"

phase "done"
if ((${#failed[@]})); then
  printf 'wine-tests: FAILED: %s\n' "${failed[@]}"
  exit 1
fi
echo "wine-tests: every Windows test passed under Wine (not on Windows)"
