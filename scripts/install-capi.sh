#!/usr/bin/env bash
# Builds and installs the C ABI of pmem2-source: libpmem2_source.so.1 (+ the
# libpmem2_source.so development symlink), libpmem2_source.a, include/pmem2_source.h and
# lib/pkgconfig/pmem2_source.pc.
#
# Usage: scripts/install-capi.sh [--no-build] [PREFIX]      (PREFIX defaults to /usr/local)
#
#   --no-build        install what is already built (fails if it is missing)
#   DESTDIR=dir       stage the files under dir (packaging); the .pc file still names PREFIX
#   PROFILE=debug     install the debug build instead of the release build
#   CARGO_TARGET_DIR  where cargo builds (default: <repository>/target)
#
# Then: cc prog.c $(pkg-config --cflags --libs pmem2_source)
# (set PKG_CONFIG_PATH=PREFIX/lib/pkgconfig if PREFIX is not searched by pkg-config).
set -euo pipefail

usage() {
	sed -n '6,12p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit "$1"
}

build=1
prefix=/usr/local
prefix_given=0
for arg in "$@"; do
	case "$arg" in
	--no-build) build=0 ;;
	-h | --help) usage 0 ;;
	-*)
		echo "install-capi.sh: unknown option $arg" >&2
		usage 2
		;;
	*)
		if [ "$prefix_given" = 1 ]; then
			echo "install-capi.sh: more than one PREFIX" >&2
			usage 2
		fi
		prefix=$arg
		prefix_given=1
		;;
	esac
done
case "$prefix" in
/*) ;;
*)
	echo "install-capi.sh: PREFIX must be an absolute path, not '$prefix'" >&2
	exit 2
	;;
esac
prefix=${prefix%/}

repo=$(cd "$(dirname "$0")/.." && pwd)
profile=${PROFILE:-release}
case "$profile" in
release) profile_flag=(--release) ;;
debug) profile_flag=() ;;
*)
	echo "install-capi.sh: PROFILE must be release or debug, not '$profile'" >&2
	exit 2
	;;
esac
target_dir=${CARGO_TARGET_DIR:-$repo/target}
cargo=${CARGO:-cargo}

if [ "$build" = 1 ]; then
	if [ "$profile" = release ]; then
		# The release library's own codegen (64-byte function alignment): see build-capi.sh.
		CARGO_TARGET_DIR=$target_dir "$repo/scripts/build-capi.sh"
	else
		"$cargo" build ${profile_flag[@]+"${profile_flag[@]}"} --locked \
			--manifest-path "$repo/Cargo.toml" -p pmem2-source-capi --lib
	fi
fi

# The package version, from Cargo (e.g. "path+file:///…/shims/c#pmem2-source-capi@0.1.0").
pkgid=$("$cargo" pkgid --locked --manifest-path "$repo/Cargo.toml" -p pmem2-source-capi)
version=${pkgid##*[#@]}
if ! [[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]]; then
	echo "install-capi.sh: cannot read the version from '$pkgid'" >&2
	exit 1
fi

built=$target_dir/$profile
for file in libpmem2_source.so libpmem2_source.a; do
	if [ ! -f "$built/$file" ]; then
		echo "install-capi.sh: $built/$file is missing (build it, or drop --no-build)" >&2
		exit 1
	fi
done

dest=${DESTDIR:-}$prefix
libdir=$dest/lib
includedir=$dest/include
pcdir=$libdir/pkgconfig
install -d "$libdir" "$includedir" "$pcdir"
install -m 0755 "$built/libpmem2_source.so" "$libdir/libpmem2_source.so.1"
ln -sfn libpmem2_source.so.1 "$libdir/libpmem2_source.so"
install -m 0644 "$built/libpmem2_source.a" "$libdir/libpmem2_source.a"
install -m 0644 "$repo/shims/c/include/pmem2_source.h" "$includedir/pmem2_source.h"

# Escape what sed's replacement treats specially: \, & and the | delimiter.
sed_escape() { printf '%s' "$1" | sed 's/[\\&|]/\\&/g'; }
sed -e "s|@PREFIX@|$(sed_escape "$prefix")|g" \
	-e "s|@VERSION@|$(sed_escape "$version")|g" \
	"$repo/shims/c/pmem2_source.pc.in" >"$pcdir/pmem2_source.pc.tmp"
chmod 0644 "$pcdir/pmem2_source.pc.tmp"
mv "$pcdir/pmem2_source.pc.tmp" "$pcdir/pmem2_source.pc"

echo "installed libpmem2_source $version ($profile build) into $dest"
if [ -z "${DESTDIR:-}" ]; then
	echo "(if $libdir is in the dynamic loader's search path, run ldconfig as root)"
fi
