#!/usr/bin/env bash
# Installs what building and testing pmem2-source needs on a Debian machine (run as root):
# Debian packages, rustup, and the toolchain, components and targets pinned in
# rust-toolchain.toml. Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

debian_packages=(
  ca-certificates curl  # rustup download
  gcc libc6-dev         # the linker rustc drives, and libc for the shims and tests
  binutils              # strip/size for the minimal-runtime binary checks
  util-linux            # unshare, mount (fake sysfs trees in private mount namespaces)
  e2fsprogs             # mkfs.ext4: the loop-mounted ext4 of tests/fd_reuse.rs
  g++                   # the C header must also compile as C++
  pkg-config            # the installed pmem2_source.pc is checked with it
  libpmem2-dev          # the reference: Debian's libpmem2 1.12.1 (differential tests)
  valgrind              # memcheck over the C-ABI test programs; callgrind (scripts/bench.sh)
  strace                # the C ABI's syscalls per call, seen from outside (syscalls_traced)
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross  # the C shim's build script in the aarch64 check
  shellcheck            # lints the shell scripts
  qemu-system-x86 busybox-static ndctl daxctl cpio  # the Device DAX VM (tests/devdax-vm)
)

./scripts/apt-install.sh "${debian_packages[@]}"

if ! command -v rustup >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/rustup" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "setup: installing rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
      sh -s -- -y --no-modify-path --profile minimal --default-toolchain none
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi

# Installs the channel, components and targets of rust-toolchain.toml (rustup >= 1.28).
rustup toolchain install >/dev/null 2>&1 || rustup show >/dev/null
rustc --version
