#!/usr/bin/env bash
# A real Device DAX for the tests: boots a Linux guest with an emulated NVDIMM under QEMU,
# turns the NVDIMM into /dev/dax0.0 and runs our checks there (tests/devdax-vm/init.sh): the
# CLI, the `real_devdax` Rust tests of the core, the std shim and the C ABI (the last one
# against libpmem2 1.12.1), the C scenario program, and PMDK 1.12.1's own Device DAX unit
# tests (tests/pmdk/devdax-vm.txt; the programs scripts/pmdk-tests.sh built) with libpmem2
# alone and with ours preloaded, which must give the same verdicts. Exits 0 only if every boot
# printed `RESULT: PASS`.
#
#   tests/devdax-vm/run.sh            (as root; installs what it lacks with apt)
#
# Boots, all on one sparse 256 MiB NVDIMM image made fresh for the run:
#   devdax-2M        ndctl create-namespace -m devdax (2 MiB alignment); the C-ABI test
#                    writes a persistence record through libpmem2's mapping of our source
#   devdax-2M-again  same image, nothing created: the kernel finds the Device DAX, and the
#                    record written by the first boot must read back; then PMDK's Device DAX
#                    tests (after the read: some write to the device)
#   devdax-4K        same image, reconfigured with -a 4K; PMDK's tests that require 4 KiB
#   memmap           no NVDIMM: memmap=128M!768M makes legacy (e820) pmem, made a Device DAX
#
# Nothing goes into the host's /boot or /lib/modules, and no host module is loaded: the
# Debian kernel package is downloaded with `apt-get download` into the cache and only
# vmlinuz and seven modules are extracted from it. QEMU uses TCG (software emulation), or
# KVM when kvm_intel/kvm_amd is loaded and the host is not a nested PVM guest.
#
# Environment:
#   PMEM2_DEVDAX_VM_DIR      work directory (default target/devdax-vm); serial logs in logs/
#   PMEM2_DEVDAX_VM_CACHE    kernel cache (default $PMEM2_DEVDAX_VM_DIR/cache)
#   PMEM2_DEVDAX_VM_ACCEL    tcg or kvm, instead of the automatic choice
#   PMEM2_DEVDAX_VM_TIMEOUT  seconds one boot may take (default 150)
#   CI=true                  PMDK's test programs missing from target/pmdk fail the run
#                            (otherwise those cases are skipped with a message)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR=never

work=${PMEM2_DEVDAX_VM_DIR:-$root/target/devdax-vm}
cache=${PMEM2_DEVDAX_VM_CACHE:-$work/cache}
boot_timeout=${PMEM2_DEVDAX_VM_TIMEOUT:-150}
logs=$work/logs
# The guest's seven modules, in a loading order (init.sh retries the ones that fail).
modules=(libnvdimm nfit nd_btt nd_pmem nd_e820 dax_pmem device_dax)

say() { printf 'devdax-vm: %s\n' "$*"; }
die() {
  printf 'devdax-vm: FAIL: %s\n' "$*" >&2
  exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

started=$(now)
[ "$(uname -m)" = x86_64 ] || die "the guest is x86_64 and its test binaries are built here: run on x86_64"
mkdir -p "$work" "$cache" "$logs"

# --- packages ------------------------------------------------------------------------------
# Note: qemu-system-x86 from Debian 12 replaces a newer (backported) qemu-utils if one is
# installed; nothing here needs qemu-utils.
packages=(qemu-system-x86 busybox-static ndctl daxctl cpio gcc libc6-dev binutils libpmem2-dev)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if ((${#missing[@]})); then
  [ "$(id -u)" -eq 0 ] || die "not root, and these packages are missing: ${missing[*]}"
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$work/apt-install.log" 2>&1 ||
    die "apt-get install ${missing[*]} failed: $(tail -n 20 "$work/apt-install.log")"
fi
qemu_version=$(qemu-system-x86_64 --version 2>&1 | head -n 1) ||
  die "qemu-system-x86_64 cannot run here: $qemu_version"
say "$qemu_version"

accel=${PMEM2_DEVDAX_VM_ACCEL:-}
if [ -z "$accel" ]; then
  accel=tcg
  if [ -r /dev/kvm ] && [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ] &&
    { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then
    accel=kvm
  fi
fi
case "$accel" in
tcg) cpu=max ;;
kvm) cpu=host ;;
*) die "PMEM2_DEVDAX_VM_ACCEL=$accel: want tcg or kvm" ;;
esac
say "accelerator: $accel"

# --- the Debian kernel: vmlinuz and the NVDIMM/DAX modules, cached ------------------------
kernel_package() {
  apt-cache depends linux-image-amd64 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}
package=$(kernel_package)
if [ -z "$package" ]; then
  apt-get update -qq >/dev/null 2>&1 || true
  package=$(kernel_package)
fi
if [ -z "$package" ]; then
  # Offline with stale lists: the newest kernel already in the cache will do.
  cached=$(find "$cache" -maxdepth 2 -name .complete -printf '%h\n' 2>/dev/null | sort -V | tail -n 1)
  [ -n "$cached" ] || die "apt-cache cannot name linux-image-amd64's kernel package, and none is cached"
  package=${cached##*/}
fi
kernel=$cache/$package
if [ ! -f "$kernel/.complete" ]; then
  say "downloading $package"
  download=$cache/download
  rm -rf "$download" "$kernel"
  mkdir -p "$download"
  fetch() { (cd "$download" && apt-get download -o APT::Sandbox::User=root "$package" >/dev/null); }
  if ! fetch; then
    apt-get update -qq >/dev/null 2>&1 || true
    fetch || die "apt-get download $package failed"
  fi
  deb=$(find "$download" -name "${package}_*.deb" | head -n 1)
  [ -n "$deb" ] || die "apt-get download $package left no .deb"
  mkdir -p "$download/tree" "$kernel/modules"
  dpkg-deb --fsys-tarfile "$deb" |
    tar -x -C "$download/tree" --wildcards '*boot/vmlinuz-*' '*/kernel/drivers/nvdimm/*' \
      '*/kernel/drivers/dax/*' '*/kernel/drivers/acpi/nfit/*' ||
    die "extracting $deb failed"
  vmlinuz=$(find "$download/tree" -name 'vmlinuz-*' | head -n 1)
  [ -n "$vmlinuz" ] || die "$deb has no vmlinuz"
  cp "$vmlinuz" "$kernel/vmlinuz"
  for m in "${modules[@]}"; do
    file=$(find "$download/tree" -name "$m.ko*" | head -n 1)
    case "$file" in
    "") die "$deb has no $m module" ;;
    *.ko) cp "$file" "$kernel/modules/$m.ko" ;;
    *.ko.xz) xz -dc "$file" >"$kernel/modules/$m.ko" ;;
    *.ko.zst) zstd -q -dc "$file" >"$kernel/modules/$m.ko" ;;
    *.ko.gz) gzip -dc "$file" >"$kernel/modules/$m.ko" ;;
    *) die "$file: unknown module compression" ;;
    esac || die "decompressing $file failed"
  done
  rm -rf "$download"
  touch "$kernel/.complete"
  # Older kernels are of no more use.
  find "$cache" -mindepth 1 -maxdepth 1 -type d -name 'linux-image-*' ! -name "$package" \
    -exec rm -rf {} +
fi
say "kernel: $package ($(since "$started") s so far)"

# --- our binaries --------------------------------------------------------------------------
build_started=$(now)
cargo build --quiet --locked --release -p pmem2-source-cli -p pmem2-source-capi ||
  die "cargo build --release failed"
cargo test --quiet --locked --no-run --message-format=json \
  -p pmem2-source -p pmem2-source-std -p pmem2-source-capi --test real_devdax \
  >"$work/tests.json" || die "cargo test --no-run failed"
declare -A tests=()
while IFS= read -r line; do
  case "$line" in
  *'"reason":"compiler-artifact"'*'"name":"real_devdax"'*'"executable":"'*) ;;
  *) continue ;;
  esac
  manifest=$(sed -n 's/.*"manifest_path":"\([^"]*\)".*/\1/p' <<<"$line")
  executable=$(sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' <<<"$line")
  case "${manifest#"$root"/}" in
  Cargo.toml) tests[core-real_devdax]=$executable ;;
  shims/std/Cargo.toml) tests[std-real_devdax]=$executable ;;
  shims/c/Cargo.toml) tests[capi-real_devdax]=$executable ;;
  esac
done <"$work/tests.json"
((${#tests[@]} == 3)) || die "expected 3 real_devdax test binaries, found: ${!tests[*]}"
release=$root/target/release
scenarios=$work/scenarios
gcc -Wall -Wextra -Werror -O1 shims/c/tests/c/scenarios.c -o "$scenarios" \
  -L"$release" -lpmem2_source -Wl,-rpath,/opt/pmem2/lib ||
  die "compiling shims/c/tests/c/scenarios.c failed"
say "built in $(since "$build_started") s"

# --- the initramfs -------------------------------------------------------------------------
staging=$work/initramfs
rm -rf "$staging"
mkdir -p "$staging"/{bin,usr/bin,modules,opt/pmem2/bin,opt/pmem2/lib,opt/pmem2/tests}
cp /bin/busybox "$staging/bin/busybox"
if ldd /bin/busybox >/dev/null 2>&1; then
  die "/bin/busybox is dynamically linked: the guest needs busybox-static's"
fi
install -m 0755 tests/devdax-vm/init.sh "$staging/init"
cp "$kernel"/modules/*.ko "$staging/modules/"
cp /usr/bin/ndctl /usr/bin/daxctl "$staging/usr/bin/"
cp "$release/pmem2-source" "$staging/opt/pmem2/bin/"
cp "$scenarios" "$staging/opt/pmem2/bin/scenarios"
cp "$release/libpmem2_source.so" "$staging/opt/pmem2/lib/libpmem2_source.so.1"
ln -s libpmem2_source.so.1 "$staging/opt/pmem2/lib/libpmem2_source.so"
for name in "${!tests[@]}"; do
  # Without their debug info the test binaries are a fraction of the size.
  strip --strip-debug -o "$staging/opt/pmem2/tests/$name" "${tests[$name]}"
done
# PMDK's Device DAX tests (tests/pmdk/devdax-vm.txt): the programs scripts/pmdk-tests.sh
# built, which it leaves at target/pmdk/pmdk-1.12.1/src/test/GROUP/GROUP. Not rebuilt here.
pmdk_cases=tests/pmdk/devdax-vm.txt
pmdk_tests=$root/target/pmdk/pmdk-1.12.1/src/test
pmdk_programs=$(awk '$1 !~ /^#/ && NF { sub("/.*", "", $1); print $1 }' "$pmdk_cases" | sort -u)
pmdk_missing=()
for program in $pmdk_programs; do
  [ -x "$pmdk_tests/$program/$program" ] || pmdk_missing+=("$program")
done
if ((${#pmdk_missing[@]})); then
  if [ "${CI:-}" = true ]; then
    die "PMDK's test programs ${pmdk_missing[*]} are not in ${pmdk_tests#"$root"/} (CI=true:" \
      "nothing may be skipped; run scripts/pmdk-tests.sh first)"
  fi
  say "SKIPPED: PMDK's Device DAX tests: ${pmdk_missing[*]} not built in" \
    "${pmdk_tests#"$root"/} (scripts/pmdk-tests.sh builds them)"
  pmdk_programs=
else
  mkdir -p "$staging/opt/pmem2/pmdk"
  cp "$pmdk_cases" "$staging/opt/pmem2/pmdk/devdax-vm.txt"
  for program in $pmdk_programs; do
    strip --strip-debug -o "$staging/opt/pmem2/pmdk/$program" "$pmdk_tests/$program/$program"
  done
fi
# awk reads all of ldconfig's output: exiting at the match could kill ldconfig with SIGPIPE
# while it still writes, and pipefail then fails the assignment.
libpmem2=$(ldconfig -p | awk '!found && $1 == "libpmem2.so.1" && /x86-64/ { print $NF; found = 1 }')
[ -n "$libpmem2" ] || die "libpmem2.so.1 is not installed (package libpmem2)"
# Each ELF and every shared library it needs, at the same path in the guest.
copy_with_libraries() {
  local elf=$1 lib needed
  # Our library is found where the guest has it (the rpath of the scenario program).
  needed=$(LD_LIBRARY_PATH=$staging/opt/pmem2/lib ldd "$elf") || die "ldd $elf failed"
  if grep -q 'not found' <<<"$needed"; then
    die "$elf needs libraries that are not installed: $(grep 'not found' <<<"$needed")"
  fi
  while read -r lib; do
    case "$lib" in "$staging"/*) continue ;; esac
    [ -e "$staging$lib" ] && continue
    mkdir -p "$staging$(dirname "$lib")"
    cp -L "$lib" "$staging$lib"
  done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$needed")
}
mkdir -p "$staging$(dirname "$libpmem2")"
cp -L "$libpmem2" "$staging$libpmem2"
for elf in "$staging"/usr/bin/* "$staging"/opt/pmem2/bin/* "$staging"/opt/pmem2/tests/* \
  "$staging/opt/pmem2/lib/libpmem2_source.so.1" "$libpmem2"; do
  copy_with_libraries "$elf"
done
for program in $pmdk_programs; do
  copy_with_libraries "$staging/opt/pmem2/pmdk/$program"
done
initrd=$work/initrd.cpio
(cd "$staging" && find . -print0 | cpio --null -o -H newc --quiet) >"$initrd" ||
  die "cpio failed"
say "initramfs: $(du -h "$initrd" | cut -f1) uncompressed ($(since "$started") s so far)"

# --- the boots -----------------------------------------------------------------------------
image=$work/nvdimm.img
rm -f "$image"
truncate -s 256M "$image" # sparse
token=$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')

# boot NAME NVDIMM(yes|no) SIZE ALIGNMENT KERNEL-ARGS...
boot() {
  local name=$1 nvdimm=$2 size=$3 alignment=$4
  shift 4
  local log=$logs/$name.log boot_started status result
  local -a machine=(-machine pc -m 1G)
  if [ "$nvdimm" = yes ]; then
    local with_nvdimm=pc,nvdimm=on memory=1G,slots=2,maxmem=4G
    local backend=memory-backend-file,id=nvmem,share=on,mem-path=$image,size=256M,align=2M
    local device=nvdimm,id=nvdimm0,memdev=nvmem
    machine=(-machine "$with_nvdimm" -m "$memory" -object "$backend" -device "$device")
  fi
  boot_started=$(now)
  status=0
  timeout --kill-after=10 "$boot_timeout" qemu-system-x86_64 -accel "$accel" -cpu "$cpu" \
    -smp 1 "${machine[@]}" -kernel "$kernel/vmlinuz" -initrd "$initrd" \
    -append "console=ttyS0 panic=-1 quiet pmem2_size=$size pmem2_alignment=$alignment $*" \
    -serial stdio -display none -monitor none -nodefaults -no-reboot \
    </dev/null >"$log" 2>&1 || status=$?
  # QEMU exits 0 on any power-off: only the guest's RESULT line tells.
  result=$(tr -d '\r' <"$log" | grep -a '^RESULT: ' | tail -n 1 || true)
  # The tests' REPORT lines (libtest may print one after "test NAME ... ").
  tr -d '\r' <"$log" | grep -ao 'REPORT .*' | sed "s/^REPORT /devdax-vm: [$name] /" || true
  if [ "$result" = "RESULT: PASS" ]; then
    say "[$name] PASS in $(since "$boot_started") s"
    return 0
  fi
  local why="qemu exit status $status"
  [ "$status" = 124 ] && why="$why (timed out after $boot_timeout s)"
  {
    echo "devdax-vm: [$name] FAIL after $(since "$boot_started") s: $why," \
      "result line: ${result:-none}"
    echo "devdax-vm: [$name] failed checks:"
    tr -d '\r' <"$log" | grep -a '^CHECK FAIL' || true
    echo "devdax-vm: [$name] last 80 lines of the serial log ($log):"
    tr -d '\r' <"$log" | tail -n 80
  } >&2
  return 1
}

vm_started=$(now)
boot devdax-2M yes 262144000 2097152 pmem2_mode=create "pmem2_persist=write:$token" ||
  die "boot devdax-2M failed; serial logs in $logs"
boot devdax-2M-again yes 262144000 2097152 pmem2_mode=reuse "pmem2_persist=read:$token" \
  pmem2_pmdk=all ||
  die "boot devdax-2M-again failed; serial logs in $logs"
boot devdax-4K yes 262144000 4096 pmem2_mode=create pmem2_align=4K pmem2_pmdk=aligned ||
  die "boot devdax-4K failed; serial logs in $logs"
boot memmap no 130023424 2097152 pmem2_mode=create 'memmap=128M!768M' ||
  die "boot memmap failed; serial logs in $logs"
say "all boots passed: VM stage $(since "$vm_started") s, $(since "$started") s in all" \
  "(serial logs in $logs)"
