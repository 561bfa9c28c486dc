#!/bin/sh
# weir: model-check the SPSC ring wake-up protocol (tests/ring/ring.pml)
# with spin. The correct model must verify with no error (safety, invalid
# end states, LTL `live`); every -DBROKEN=n variant must be caught, which
# shows the check can fail. Exit 0: as expected; 77: spin (or a C
# compiler) missing, skipped; 1: any unexpected result.
#
# usage: spin_check.sh [path/to/ring.pml]

set -u

model=${1:-$(dirname "$0")/ring.pml}
CC=${CC:-cc}

if ! command -v spin >/dev/null 2>&1; then
	echo "spin_check: SKIP: spin is not installed (apt-get install spin)"
	exit 77
fi
if ! command -v "$CC" >/dev/null 2>&1; then
	echo "spin_check: SKIP: no C compiler ($CC) to build spin's verifier"
	exit 77
fi
if [ ! -r "$model" ]; then
	echo "spin_check: FAIL: cannot read $model"
	exit 1
fi
model=$(cd "$(dirname "$model")" && pwd)/$(basename "$model")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/weir-spin.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM PIPE
cd "$tmp" || exit 1
cp "$model" ring.pml || exit 1

fail=0

# run NAME MODE EXPECT SPIN_DEFINES...
#   MODE:   safety (assertions + invalid end states, no never claim)
#           ltl    (the `live` claim, acceptance cycles, weak fairness)
#   EXPECT: ok, or the pan message that must appear ("invalid end state",
#           "assertion violated", "acceptance cycle")
run() {
	name=$1 mode=$2 expect=$3
	shift 3
	rm -f pan pan.* ring.pml.trail _spin_nvr.tmp
	if ! spin -a "$@" ring.pml >spin.out 2>&1; then
		echo "FAIL $name: spin -a $*"
		cat spin.out
		fail=1
		return
	fi
	if [ "$mode" = safety ]; then
		cflags="-DNOCLAIM" pflags=""
	else
		cflags="" pflags="-a -f -N live"
	fi
	# -DVECTORSZ etc. not needed: the state vector is tiny
	if ! $CC -O1 -w $cflags -o pan pan.c >cc.out 2>&1; then
		echo "FAIL $name: cc pan.c"
		cat cc.out
		fail=1
		return
	fi
	# shellcheck disable=SC2086 # word splitting wanted
	./pan -m100000 $pflags >pan.out 2>&1
	errs=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' pan.out | head -n 1)
	stored=$(sed -n 's/^ *\([0-9][0-9]*\) states, stored.*/\1/p' pan.out | head -n 1)
	summary="states stored ${stored:-?}, errors ${errs:-?}"
	if [ -z "$errs" ]; then
		echo "FAIL $name ($mode): no result from pan"
		cat pan.out
		fail=1
	elif grep -q "max search depth too small" pan.out; then
		echo "FAIL $name ($mode): search depth exceeded, the check is incomplete"
		fail=1
	elif [ "$expect" = ok ]; then
		if [ "$errs" -eq 0 ]; then
			echo "ok   $name ($mode): $summary"
		else
			echo "FAIL $name ($mode): $summary (expected none)"
			grep -E '^pan:' pan.out
			spin -t "$@" ring.pml 2>&1 | tail -n 30
			fail=1
		fi
	else
		if [ "$errs" -gt 0 ] && grep -q "$expect" pan.out; then
			echo "ok   $name ($mode): $summary, found: $(grep -m1 '^pan:1:' pan.out)"
		else
			echo "FAIL $name ($mode): $summary, expected \"$expect\" (the check did not catch the bug)"
			grep -E '^pan:' pan.out
			fail=1
		fi
	fi
}

echo "spin_check: $(spin -V 2>&1 | head -n 1)"

# the protocol as implemented: must verify
run correct safety ok
run correct ltl ok
run correct-3x6 safety ok -DSIZE=3 -DITEMS=6 -DBATCH=3

# deliberately broken variants: must be caught
run broken1-consumer-no-recheck safety "invalid end state" -DBROKEN=1
run broken1-consumer-no-recheck ltl "acceptance cycle" -DBROKEN=1
run broken2-flag-before-publish safety "invalid end state" -DBROKEN=2
run broken3-producer-no-recheck safety "invalid end state" -DBROKEN=3
run broken4-flag-before-release safety "invalid end state" -DBROKEN=4
run broken5-room-off-by-one safety "assertion violated" -DBROKEN=5

if [ $fail -ne 0 ]; then
	echo "spin_check: FAIL"
	exit 1
fi
echo "spin_check: PASS"
exit 0
