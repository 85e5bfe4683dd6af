#!/usr/bin/env bash
# The main job: runs the pmem2-source command on the given paths.
#   ./scripts/run.sh README.md /dev/null /tmp
# Installs the toolchain first if needed (see scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >/dev/null
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --quiet --release --locked -p pmem2-source-cli
exec target/release/pmem2-source "$@"
