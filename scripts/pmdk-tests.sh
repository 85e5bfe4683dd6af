#!/usr/bin/env bash
# PMDK 1.12.1's own unit tests and libpmem2 example programs, run against our library: the
# verdict of every runnable test with ours must be libpmem2's. What runs, in which modes, what
# is not run and why: docs/pmdk-tests.md.
#
# 1. Takes PMDK's source from ../shared/third_party/pmdk-1.12.1.tar.gz (or $PMDK_TARBALL),
#    checked with the .sha256 beside it, unpacked into target/pmdk/ (never into the repo).
# 2. Builds PMDK's unit-test framework (libut) and the test programs of the groups below
#    against the installed -lpmem2 (Debian's libpmem2.so.1), with the few internal functions
#    they call supplied by tests/pmdk/shim/; builds the src/examples/libpmem2 programs with
#    -lpmem2 as a user would. The unpacked tree and the build are reused while the tarball,
#    this script and tests/pmdk/ are unchanged.
# 3. Runs them with PMDK's RUNTESTS.py in these modes:
#      a  libpmem2 alone (the reference)
#      b  ours LD_PRELOADed over libpmem2
#      c  ours alone as libpmem2.so.1 (LD_LIBRARY_PATH), for the programs whose pmem2_*
#         imports (nm -D --undefined-only) are all exported by ours
#      memcheck  the source groups under valgrind memcheck, with ours preloaded (and, for
#         reference, with libpmem2 alone)
#    and runs the example programs on the inputs of tests/pmdk/example-cases.txt (normal and
#    error paths) in modes a, b (and c where possible), comparing stdout, stderr and status.
# 4. tests/pmdk/report.py compares: every verdict must equal mode a's, except the deliberate
#    differences of tests/pmdk/differences.txt; prints the table and exits non-zero otherwise.
#
# Usage: scripts/pmdk-tests.sh        (as root; installs what it needs with apt-install.sh)
#   PMDK_TARBALL=path   another copy of pmdk-1.12.1.tar.gz (its .sha256 must be beside it)
#   CI=true             a missing tarball fails instead of skipping
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH="$HOME/.cargo/bin:$PATH"

say() { printf 'pmdk-tests: %s\n' "$*"; }
die() {
	printf 'pmdk-tests: error: %s\n' "$*" >&2
	exit 1
}

tarball=${PMDK_TARBALL:-$root/../shared/third_party/pmdk-1.12.1.tar.gz}
if [ ! -f "$tarball" ]; then
	if [ "${CI:-}" = true ]; then
		die "PMDK's source $tarball is missing (CI=true: nothing may be skipped; set PMDK_TARBALL)"
	fi
	say "SKIPPED: PMDK's source $tarball is not there (set PMDK_TARBALL to run these tests)"
	exit 0
fi
tarball=$(realpath "$tarball")
[ -f "$tarball.sha256" ] || die "$tarball.sha256 is missing: the tarball cannot be checked"
(cd "$(dirname "$tarball")" && sha256sum --check --quiet "$(basename "$tarball").sha256") ||
	die "$tarball does not match $tarball.sha256"

debian_packages=(
	gcc libc6-dev binutils # the test programs; nm
	libpmem2-dev           # the reference, Debian's libpmem2 1.12.1: -lpmem2 and its headers
	python3 perl           # RUNTESTS.py, and its "match" script
	valgrind               # the memcheck pass
)
./scripts/apt-install.sh "${debian_packages[@]}"
python=/usr/bin/python3 # Debian's, not whatever python3 comes first in PATH
reference=$(realpath "$(gcc -print-file-name=libpmem2.so.1)")
# The test programs build libpmem2 1.12.1's structs by hand (its internal source.h, config.h):
# the installed library must be that release.
version=$(dpkg-query -W -f='${Version}' libpmem2)
case "$version" in
1.12.1-*) ;;
*) die "the installed libpmem2 is $version, not 1.12.1: the test programs would not fit it" ;;
esac

say "building our library (scripts/build-capi.sh)"
./scripts/build-capi.sh --quiet
ours=$root/target/release/libpmem2_source.so
[ -f "$ours" ] || die "scripts/build-capi.sh did not make $ours"

# The groups of src/test that run, and those (the source groups) that also run under memcheck.
groups=(pmem2_source pmem2_source_size pmem2_source_alignment pmem2_perror pmem2_integration
	pmem2_map_from_existing pmem2_vm_reservation ex_libpmem2)
memcheck_groups=(pmem2_source pmem2_source_size pmem2_source_alignment pmem2_perror)
examples=(basic advanced log map_multiple_files redo ringbuf unsafe_shutdown)

cache=$root/target/pmdk
tree=$cache/pmdk-1.12.1
results=$cache/results
scratch=$cache/scratch
key=$(cat "$tarball.sha256" scripts/pmdk-tests.sh tests/pmdk/shim/*.c tests/pmdk/*.c \
	tests/pmdk/*.txt tests/pmdk/*.py | sha256sum | cut -d' ' -f1)

# ---- unpack and build (skipped when the stamp says it was done for the same inputs) --------
build() {
	local src=$tree/src
	local test=$src/test
	local ut=$test/unittest
	local obj=$cache/obj
	rm -rf "$obj"
	mkdir -p "$obj/ut" "$obj/shim"

	# libut as PMDK's src/test/unittest/Makefile builds it (its objects, its warnings).
	local ut_cflags=(-std=gnu99 -ggdb -Wall -Werror -Wmissing-prototypes -Wpointer-arith
		-Wsign-conversion -Wsign-compare -Wunused-macros -Wmissing-field-initializers
		-pthread -fno-common -I"$src/include" -I"$src/common" -I"$src/core"
		-I"$src/libpmem2")
	local f
	for f in ut ut_alloc ut_file ut_pthread ut_signal ut_backtrace ut_fh; do
		gcc "${ut_cflags[@]}" -c "$ut/$f.c" -o "$obj/ut/$f.o"
	done
	for f in core/os_posix core/os_thread_posix core/util core/alloc common/rand; do
		gcc "${ut_cflags[@]}" -c "$src/$f.c" -o "$obj/ut/${f#*/}.o"
	done
	ar rcs "$obj/libut.a" "$obj"/ut/*.o

	# The test programs as src/test/Makefile.inc compiles them, plus -DDEBUG: the assertions of
	# PMDK's out.h (ASSERT, ASSERTeq, ...) in the tests' own code are checked, not compiled
	# out. The ut_pmem2_* helpers go into an archive, so a program pulls in only those it
	# calls (and so imports only the pmem2_* functions it uses).
	local test_cflags=(-std=gnu99 -ggdb -Wall -Werror -Wmissing-prototypes -Wpointer-arith
		-Wsign-conversion -Wunused-macros -fno-common -pthread -DDEBUG
		-I"$ut" -I"$src/include" -I"$src/common" -I"$src/core" -I"$src/libpmem2"
		-I"$src/deps/miniasync/src/include")
	mkdir -p "$obj/ut_pmem2"
	for f in ut_pmem2_config ut_pmem2_utils ut_pmem2_source ut_pmem2_setup \
		ut_pmem2_setup_integration; do
		gcc "${test_cflags[@]}" -c "$ut/$f.c" -o "$obj/ut_pmem2/$f.o"
	done
	ar rcs "$obj/ut_pmem2.a" "$obj"/ut_pmem2/*.o
	for f in "$root"/tests/pmdk/shim/*.c; do
		gcc "${test_cflags[@]}" -c "$f" -o "$obj/shim/$(basename "$f" .c).o"
	done
	ar rcs "$obj/shim.a" "$obj"/shim/*.o

	local group
	for group in "${groups[@]}"; do
		[ "$group" = ex_libpmem2 ] && continue
		gcc "${test_cflags[@]}" -c "$test/$group/$group.c" -o "$obj/$group.o"
		gcc -o "$test/$group/$group" "$obj/$group.o" "$obj/ut_pmem2.a" "$obj/libut.a" \
			"$obj/shim.a" -lpmem2 -pthread
	done

	# RUNTESTS.py's granularity check runs this tool of PMDK's on the test directory (always
	# with libpmem2 alone: its environment is not the tests').
	gcc -std=gnu99 -ggdb -Wall -Werror -I"$src/include" -I"$src/core" -I"$src/common" \
		-o "$test/tools/gran_detecto/gran_detecto" "$test/tools/gran_detecto/gran_detecto.c" \
		"$src/core/os_posix.c" -lpmem2
	# ...and, when a test fails, pmemdetect -z on its log files: tests/pmdk/pmemdetect.c.
	gcc -std=gnu99 -Wall -Werror -o "$test/tools/pmemdetect/pmemdetect" \
		"$root/tests/pmdk/pmemdetect.c"

	# The examples as a user builds them: the installed libpmem2.h and -lpmem2.
	local example
	for example in "${examples[@]}"; do
		gcc -std=gnu99 -ggdb -Wall -Werror -Wmissing-prototypes -I"$src/examples" \
			-o "$src/examples/libpmem2/$example/$example" \
			"$src/examples/libpmem2/$example/$example.c" -lpmem2 -pthread
	done
}

if [ "$(cat "$cache/stamp" 2>/dev/null)" != "$key" ]; then
	say "unpacking $(basename "$tarball") into ${cache#"$root"/}"
	rm -rf "$cache"
	mkdir -p "$tree"
	tar -xzf "$tarball" -C "$tree" --strip-components=1
	say "building libut, the test programs and the examples against $reference"
	# The test programs compile with the tarball's headers, the examples with the installed ones:
	# the same text, or this is not the release the library was built from.
	if ! diff -r "$tree/src/include/libpmem2" /usr/include/libpmem2 >/dev/null ||
		! cmp -s "$tree/src/include/libpmem2.h" /usr/include/libpmem2.h; then
		die "the installed libpmem2 headers differ from PMDK 1.12.1's src/include"
	fi
	build
	echo "$key" >"$cache/stamp"
else
	say "reusing the build in ${cache#"$root"/} (same tarball, script and tests/pmdk/)"
fi

# ---- which programs can run with ours alone -------------------------------------------------
ours_exports=$(nm -D --defined-only "$ours" | awk '{print $3}' | sed 's/@.*//' | sort -u)
source_only() { # program: true when every pmem2_* function it imports is exported by ours
	local missing
	missing=$(nm -D --undefined-only "$1" | awk '{print $2}' | sed 's/@.*//' |
		grep '^pmem2_' | sort -u | comm -23 - <(echo "$ours_exports"))
	[ -z "$missing" ]
}
mode_c_groups=()
for group in "${groups[@]}"; do
	[ "$group" = ex_libpmem2 ] && continue
	if source_only "$tree/src/test/$group/$group"; then
		mode_c_groups+=("$group")
	fi
done
mode_c_examples=()
for example in "${examples[@]}"; do
	if source_only "$tree/src/examples/libpmem2/$example/$example"; then
		mode_c_examples+=("$example")
	fi
done
ours_alone=$cache/ours-as-libpmem2
mkdir -p "$ours_alone"
ln -sfn "$ours" "$ours_alone/libpmem2.so.1"

# ---- RUNTESTS.py in each mode ----------------------------------------------------------------
rm -rf "$results" "$scratch"
mkdir -p "$results"
{
	echo "# written by scripts/pmdk-tests.sh"
	echo "config = {"
	echo "    'unittest_log_level': 1,"
	# One ordinary directory for each granularity; the cache line and byte ones are forced
	# (PMEM2_FORCE_GRANULARITY), as PMDK's testconfig.py.example describes, so that the tests
	# that require them run too.
	echo "    'page_fs_dir': '$scratch/fs/page', 'force_page': False,"
	echo "    'cacheline_fs_dir': '$scratch/fs/cacheline', 'force_cacheline': True,"
	echo "    'byte_fs_dir': '$scratch/fs/byte', 'force_byte': True,"
	echo "    'tm': False, 'test_type': 'all', 'build': 'debug', 'granularity': 'all',"
	echo "    'keep_going': True, 'fail_on_skip': False, 'timeout': '3m', 'dump_lines': 30,"
	echo "    'force_enable': None, 'device_dax_path': [], 'enable_admin_tests': False,"
	echo "}"
} >"$tree/src/test/testconfig.py"

# The test numbers of a group that tests/pmdk/not-run.txt does not exclude, as RUNTESTS.py's
# -u wants them ("0,1,5"); empty when it excludes none.
selected_tests() {
	local group=$1 excluded
	excluded=$(awk -v group="$group" '$1 ~ "^" group "/TEST[0-9]+$" {
		sub(".*/TEST", "", $1); print $1 }' tests/pmdk/not-run.txt)
	[ -n "$excluded" ] || return 0
	(cd "$tree/src/test" && "$python" RUNTESTS.py --list-testcases "$group") |
		sed -n 's/^TEST\([0-9]*\)$/\1/p' | grep -vxF "$excluded" | paste -sd, -
}

# runtests MODE [VAR=VALUE...] -- [RUNTESTS.py OPTIONS...] -- GROUPS...: RUNTESTS.py's output
# for the groups goes to target/pmdk/results/MODE.log. RUNTESTS.py's exit status is not
# looked at (it is 1 when a test fails): tests/pmdk/report.py judges the verdicts.
runtests() {
	local mode=$1
	shift
	local environment=() options=() plain=() group sequence
	while [ "$1" != -- ]; do
		environment+=("$1")
		shift
	done
	shift
	while [ "$1" != -- ]; do
		options+=("$1")
		shift
	done
	shift
	local started=$SECONDS
	say "RUNTESTS.py, mode $mode: ${options[*]}${options[*]:+ }$*"
	: >"$results/$mode.log"
	run() {
		rm -rf "$scratch/fs"
		mkdir -p "$scratch/fs/page" "$scratch/fs/cacheline" "$scratch/fs/byte"
		(cd "$tree/src/test" && env ${environment[@]+"${environment[@]}"} \
			"$python" RUNTESTS.py ${options[@]+"${options[@]}"} "$@" \
			>>"$results/$mode.log" 2>&1) || true
	}
	for group in "$@"; do
		sequence=$(selected_tests "$group")
		if [ -z "$sequence" ]; then
			plain+=("$group")
		else
			run -u "$sequence" "$group"
		fi
	done
	if ((${#plain[@]})); then
		run "${plain[@]}"
	fi
	grep -Eq ': .*(PASS|FAILED|SKIP)' "$results/$mode.log" ||
		die "RUNTESTS.py ran nothing in mode $mode: $(tail -5 "$results/$mode.log")"
	say "mode $mode took $((SECONDS - started)) s"
}

runtests a -- -- "${groups[@]}"
runtests b LD_PRELOAD="$ours" -- -- "${groups[@]}"
if ((${#mode_c_groups[@]})); then
	runtests c LD_LIBRARY_PATH="$ours_alone" -- -- "${mode_c_groups[@]}"
fi
runtests memcheck-a -- --force-enable memcheck -- "${memcheck_groups[@]}"
runtests memcheck LD_PRELOAD="$ours" -- --force-enable memcheck -- "${memcheck_groups[@]}"

# ---- the examples on the inputs of tests/pmdk/example-cases.txt -----------------------------
run_example_case() { # mode, case name, input kind, program, arguments...
	local mode=$1 name=$2 input=$3 program=$4
	shift 4
	local dir=$scratch/examples/$mode/$name
	mkdir -p "$dir"
	case "$input" in
	-) ;;
	empty) : >"$dir/file" ;;
	missing) ;;
	directory) mkdir "$dir/file" ;;
	holey:*) truncate -s "${input#holey:}" "$dir/file" ;;
	*) die "example-cases.txt: unknown input '$input' in case $name" ;;
	esac
	local environment=()
	case "$mode" in
	b) environment=(LD_PRELOAD="$ours") ;;
	c) environment=(LD_LIBRARY_PATH="$ours_alone") ;;
	esac
	local status=0
	(cd "$dir" && env ${environment[@]+"${environment[@]}"} \
		"$tree/src/examples/libpmem2/$program/$program" "$@" \
		>"$results/examples/$mode/$name.stdout" 2>"$results/examples/$mode/$name.stderr") ||
		status=$?
	echo "$status" >"$results/examples/$mode/$name.status"
}

started=$SECONDS
example_modes=(a b)
mkdir -p "$results/examples/a" "$results/examples/b" "$results/examples/c"
while read -r name input program arguments; do
	case "$name" in '' | '#'*) continue ;; esac
	read -r -a args <<<"$arguments"
	modes=("${example_modes[@]}")
	for example in ${mode_c_examples[@]+"${mode_c_examples[@]}"}; do
		[ "$example" = "$program" ] && modes+=(c)
	done
	for mode in "${modes[@]}"; do
		run_example_case "$mode" "$name" "$input" "$program" ${args[@]+"${args[@]}"}
	done
done <tests/pmdk/example-cases.txt
say "the example cases took $((SECONDS - started)) s"

# ---- the verdicts, compared ------------------------------------------------------------------
say "ran in $SECONDS s; logs in ${results#"$root"/}"
"$python" tests/pmdk/report.py --results "$results" \
	--differences tests/pmdk/differences.txt --not-run tests/pmdk/not-run.txt \
	--in-vm tests/pmdk/devdax-vm.txt \
	--mode-c-groups "${mode_c_groups[*]}" --memcheck-groups "${memcheck_groups[*]}" \
	--mode-c-examples "${mode_c_examples[*]}" --examples-cases tests/pmdk/example-cases.txt \
	--tests-dir "$tree/src/test" --groups "${groups[*]}"
