#!/bin/busybox sh
# /init of the Device DAX guest that tests/devdax-vm/run.sh boots (busybox sh, PID 1).
#
# Loads the NVDIMM and Device DAX modules, makes namespace0.0 a Device DAX (or, in the
# `reuse` mode, finds the one an earlier boot of the same NVDIMM image made), runs the checks
# against /dev/dax0.0 (ours, then PMDK's own Device DAX tests with libpmem2 and with ours,
# except in the boot that writes the persistence record), prints one `RESULT: PASS` or
# `RESULT: FAIL` line and powers off.
#
# What to do comes from the kernel command line (run.sh sets it):
#   pmem2_mode=create|reuse   create the Device DAX, or expect it on the image already
#   pmem2_align=4K            `ndctl create-namespace -a` (create; default: ndctl's, 2M)
#   pmem2_size=N              the size the device must have, in bytes
#   pmem2_alignment=N         the alignment it must have, in bytes
#   pmem2_persist=write:T|read:T   the persistence stage of the C-ABI test (see
#                             shims/c/tests/real_devdax.rs); absent: within this boot only
#   pmem2_pmdk=all|aligned    PMDK's Device DAX tests: all of tests/pmdk/devdax-vm.txt, or only
#                             those requiring an alignment, which this device has; absent: none
# shellcheck shell=sh

/bin/busybox mkdir -p /proc /sys /dev /tmp /usr/bin /sbin
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/opt/pmem2/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp

checks=0
failures=0
pass() {
	checks=$((checks + 1))
	echo "CHECK ok - $1"
}
fail() {
	checks=$((checks + 1))
	failures=$((failures + 1))
	echo "CHECK FAIL - $1"
}
finish() {
	echo "== $checks checks, $failures failed"
	if [ "$failures" -eq 0 ] && [ "$checks" -gt 0 ]; then
		echo "RESULT: PASS"
	else
		echo "RESULT: FAIL"
	fi
	sync
	poweroff -f
	sleep 10 # poweroff -f does not return; if it ever did, init exiting panics the kernel
}

mode='' align='' size='' alignment='' persist='' pmdk_cases=none
# Word splitting of the command line is wanted here.
# shellcheck disable=SC2013
for word in $(cat /proc/cmdline); do
	case "$word" in
	pmem2_mode=*) mode=${word#*=} ;;
	pmem2_align=*) align=${word#*=} ;;
	pmem2_size=*) size=${word#*=} ;;
	pmem2_alignment=*) alignment=${word#*=} ;;
	pmem2_persist=*) persist=${word#*=} ;;
	pmem2_pmdk=*) pmdk_cases=${word#*=} ;;
	esac
done
echo "== guest: kernel $(uname -r), mode ${mode:-?}, align ${align:-default}," \
	"expecting size ${size:-?} and alignment ${alignment:-?}, persist ${persist:-none}"
if [ -z "$mode" ] || [ -z "$size" ] || [ -z "$alignment" ]; then
	fail "the command line names pmem2_mode, pmem2_size and pmem2_alignment"
	finish
fi

# --- modules: the package has no modules.dep, so a few passes until each loads -----------
modules="libnvdimm nfit nd_btt nd_pmem nd_e820 dax_pmem device_dax"
for _ in 1 2 3 4; do
	for m in $modules; do
		grep -q "^$m " /proc/modules || insmod "/modules/$m.ko" 2>/dev/null
	done
done
missing=
for m in $modules; do
	grep -q "^$m " /proc/modules || missing="$missing $m"
done
if [ -n "$missing" ]; then
	for m in $missing; do insmod "/modules/$m.ko"; done # once more, to show why
	fail "modules loaded (missing:$missing)"
	finish
fi
pass "modules loaded: $modules"

# --- the Device DAX ------------------------------------------------------------------------
wait_for() { # wait_for PATH SECONDS
	n=0
	while [ ! -e "$1" ] && [ "$n" -lt "$(($2 * 10))" ]; do
		sleep 0.1
		n=$((n + 1))
	done
	[ -e "$1" ]
}
wait_for /sys/bus/nd/devices/namespace0.0 10 || true
case "$mode" in
create)
	set -- create-namespace -f -e namespace0.0 -m devdax
	[ -n "$align" ] && set -- "$@" -a "$align"
	echo "== ndctl $*"
	if ndctl "$@"; then
		pass "ndctl $*"
	else
		fail "ndctl $*"
		ndctl list -NRDu
		finish
	fi
	;;
reuse)
	echo "== no create-namespace: the kernel must find the Device DAX on the image"
	;;
*)
	fail "unknown pmem2_mode=$mode"
	finish
	;;
esac
if ! wait_for /sys/bus/dax/devices/dax0.0/dev 10; then
	fail "/sys/bus/dax/devices/dax0.0 appears"
	ndctl list -NRDu
	finish
fi
devnum=$(cat /sys/bus/dax/devices/dax0.0/dev)
wait_for /dev/dax0.0 5 || mknod /dev/dax0.0 c "${devnum%:*}" "${devnum#*:}"
node=$(stat -c '%t:%T' /dev/dax0.0)
want=$(printf '%x:%x' "${devnum%:*}" "${devnum#*:}")
if [ -c /dev/dax0.0 ] && [ "$node" = "$want" ]; then
	pass "/dev/dax0.0 is character device $devnum (from /sys/bus/dax/devices/dax0.0/dev)"
else
	fail "/dev/dax0.0 is character device $devnum (found ${node:-nothing}, hex)"
	finish
fi
echo "== ndctl list -NRDu"
ndctl list -NRDu
echo "== daxctl list"
daxctl list
echo "== sysfs of dax0.0: size $(cat /sys/bus/dax/devices/dax0.0/size)," \
	"align $(cat /sys/bus/dax/devices/dax0.0/align 2>/dev/null)," \
	"numa_node $(cat /sys/bus/dax/devices/dax0.0/numa_node 2>/dev/null)"

# --- our CLI -------------------------------------------------------------------------------
json=$(pmem2-source --json /dev/dax0.0)
status=$?
echo "$json"
pmem2-source /dev/dax0.0
case "$status $json" in
"0 "*'"usable":true'*'"file_type":"devdax"'*"\"device\":\"$devnum\""*"\"size\":$size,"*"\"alignment\":$alignment"[,'}']*)
	pass "pmem2-source --json /dev/dax0.0: devdax $devnum, size $size, alignment $alignment"
	;;
*)
	fail "pmem2-source --json /dev/dax0.0 (exit $status): want devdax $devnum, size $size," \
		"alignment $alignment"
	;;
esac
listing=$(pmem2-source --json)
status=$?
echo "$listing"
case "$status $listing" in
"0 "*'"dax_device":"dax0.0"'*"\"size\":$size,"*) pass "pmem2-source --json lists dax0.0" ;;
*) fail "pmem2-source --json lists dax0.0 (exit $status)" ;;
esac

# --- our Rust tests that need a real Device DAX ------------------------------------------
export CI=true PMEM2_DEVDAX=/dev/dax0.0 PMEM2_DEVDAX_SIZE="$size" \
	PMEM2_DEVDAX_ALIGN="$alignment" PMEM2_SOURCE_SO=/opt/pmem2/lib/libpmem2_source.so.1
if [ -n "$persist" ]; then
	export PMEM2_DEVDAX_PERSIST="$persist"
fi
for test in /opt/pmem2/tests/*; do
	name=${test##*/}
	echo "== $name"
	"$test" --test-threads=1 --nocapture >"/tmp/$name.log" 2>&1
	status=$?
	cat "/tmp/$name.log"
	if [ "$status" -ne 0 ]; then
		fail "$name (exit $status)"
	elif grep -q SKIPPED "/tmp/$name.log"; then
		fail "$name: a test skipped"
	elif ! grep -q '^test result: ok\. [1-9][0-9]* passed; 0 failed' "/tmp/$name.log"; then
		fail "$name: no passing test result"
	else
		pass "$name: $(grep '^test result:' "/tmp/$name.log")"
	fi
done

# --- the C scenario program, linked to our library --------------------------------------
echo "== scenarios"
mkdir -p /tmp/scenarios
scenarios /tmp/scenarios /dev/dax0.0 "$size" "$alignment" >/tmp/scenarios.out 2>/tmp/scenarios.err
status=$?
cat /tmp/scenarios.out
echo "-- stderr:"
cat /tmp/scenarios.err
summary=$(tail -n 1 /tmp/scenarios.out)
case "$status $summary" in
"0 "*" checks, 0 failed")
	if grep -q FAIL /tmp/scenarios.out; then
		fail "scenarios: a check failed"
	else
		pass "scenarios: $summary"
	fi
	;;
*) fail "scenarios (exit $status): $summary" ;;
esac

# --- PMDK's own Device DAX tests, with libpmem2 and with ours ------------------------------
# The cases of tests/pmdk/devdax-vm.txt, invoked as their TESTS.py does (RUNTESTS.py cannot
# run here: no python), each with libpmem2 alone and with ours LD_PRELOADed: ours must give
# libpmem2's verdict, the exit status (0 is a pass).
pmdk=/opt/pmem2/pmdk
run_pmdk() { # run_pmdk LIBRARY TEST PROGRAM ARGUMENTS...: prints PASS or FAIL (exit N)
	lib=$1 test=$2 program=$3
	shift 3
	dir=/tmp/pmdk/$lib/$test
	mkdir -p "$dir"
	set -- "$pmdk/$program" "$@"
	if [ "$lib" = ours ]; then
		set -- LD_PRELOAD=/opt/pmem2/lib/libpmem2_source.so.1 "$@"
	fi
	# As RUNTESTS.py runs it: in the test's directory, with libut's settings in the environment.
	(cd "$dir" && timeout 60 env UNITTEST_NAME="$test" UNITTEST_NUM="${test##*/TEST}" \
		UNITTEST_LOG_LEVEL=1 "$@" </dev/null >"$dir/output" 2>&1)
	status=$?
	if [ "$status" -eq 0 ]; then
		echo PASS
	else
		echo "FAIL (exit $status)"
	fi
}
show_pmdk_logs() { # show_pmdk_logs LIBRARY TEST
	for log in "/tmp/pmdk/$1/$2"/*; do
		[ -s "$log" ] || continue
		echo "-- $1 $2: ${log##*/}"
		tail -n 20 "$log"
	done
}
if [ "$pmdk_cases" = none ]; then
	echo "== PMDK's Device DAX tests: not in this boot (run.sh runs them in devdax-2M-again," \
		"and those requiring a 4 KiB alignment in devdax-4K)"
elif [ ! -f "$pmdk/devdax-vm.txt" ]; then
	echo "== PMDK's Device DAX tests: not in this initramfs (run.sh found no PMDK build)"
else
	dd_size=$(cat /sys/bus/dax/devices/dax0.0/size)
	dd_align=$(cat /sys/bus/dax/devices/dax0.0/align)
	echo "== PMDK's Device DAX tests (tests/pmdk/devdax-vm.txt) on /dev/dax0.0:" \
		"size $dd_size, alignment $dd_align"
	while read -r test requires testcase arguments; do
		case "$test" in '' | '#'*) continue ;; esac
		case "$pmdk_cases $requires" in
		"aligned -") continue ;;
		*" align="*)
			if [ "${requires#align=}" != "$dd_align" ]; then
				echo "REPORT skip - pmdk $test: requires alignment ${requires#align=}," \
					"this device has $dd_align"
				continue
			fi
			;;
		esac
		set --
		# Word splitting of the arguments is wanted here.
		for word in $arguments; do
			case "$word" in
			DEVDAX) word=/dev/dax0.0 ;;
			SIZE) word=$dd_size ;;
			ALIGNMENT) word=$dd_align ;;
			esac
			set -- "$@" "$word"
		done
		program=${test%/*}
		t0=$(cut -d' ' -f1 /proc/uptime)
		theirs=$(run_pmdk libpmem2 "$test" "$program" "$testcase" "$@")
		ours=$(run_pmdk ours "$test" "$program" "$testcase" "$@")
		took=$(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { print b - a }')
		line="pmdk $test ($program $testcase $*) libpmem2 $theirs ours $ours (${took} s)"
		if [ "$theirs" != "$ours" ]; then
			echo "REPORT not ok - $line"
			fail "$line"
		elif [ "$theirs" != PASS ]; then
			# The reference failing means the invocation or the guest is wrong: the case
			# would compare nothing.
			echo "REPORT not ok - $line: libpmem2 itself fails it"
			fail "$line: libpmem2 itself fails it"
		else
			echo "REPORT ok - $line"
			pass "$line"
		fi
		if [ "$theirs" != PASS ] || [ "$ours" != PASS ]; then
			show_pmdk_logs libpmem2 "$test"
			show_pmdk_logs ours "$test"
		fi
	done <"$pmdk/devdax-vm.txt"
fi

finish
