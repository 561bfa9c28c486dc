#!/usr/bin/env bash
# Runs weir's whole test suite: unit, integration (real binaries), fuzz
# corpus replay and the slow tests.
#   bash tests/run.sh               # build/ (debugoptimized)
#   bash tests/run.sh --sanitize    # build-asan/ with -Db_sanitize=address,undefined
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build
# extra meson options, e.g. WEIR_MESON_OPTS=-Dwerror=true (CI)
read -r -a opts <<< "${WEIR_MESON_OPTS:-}"
if [ "${1:-}" = "--sanitize" ]; then
	dir=build-asan
	opts+=(-Db_sanitize=address,undefined -Db_lundef=false)
	# Undefined behaviour must fail the tests, not just print a line that
	# nobody reads: stop the process (the integration tests notice a dead
	# weir) and say where.
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
	shift
fi
if [ -f "$dir/build.ninja" ]; then
	[ ${#opts[@]} -eq 0 ] || meson configure "$dir" "${opts[@]}" >/dev/null
else
	meson setup "$dir" "${opts[@]}" >/dev/null
fi
ninja -C "$dir"
meson test -C "$dir" --print-errorlogs --num-processes 2 "$@"
