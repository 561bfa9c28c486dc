#!/usr/bin/env bash
# tools/profile.sh — a perf profile of weir while a load scenario runs.
#
# Usage: bash tools/profile.sh [--scenario get-tiny] [--connections 64]
#                              [--duration 10] [--build DIR] [--out DIR]
#                              [--pid PID --port PORT] [--probes] [--no-graph]
#
# Starts weir-origin (CPU 1) and weir (CPU 0, one reactor, pool = connections)
# unless --pid/--port name a weir that already runs, warms it up for 2 s,
# then runs wrk for --duration seconds and, during the steady part of it,
# records `perf record -e cpu-clock -g -p PID` (frame-pointer call graphs;
# the release build keeps frame pointers). With --probes, a second run of the
# same length counts the USDT probes (sdt_weir:*, see docs/PROFILING.md):
# requests, upstream connects, buffer-ring exhaustion. (Attached probes cost a
# few µs per hit, so they stay out of the CPU profile's run.)
#
# Output (default bench/results/profile-DATE/): perf.data, summary.txt (by
# thread, by object — kernel vs user —, flat symbols, call graph) and, with
# --probes, probes.txt. See docs/PROFILING.md for reading them.
#
# Scenarios: get-tiny, get-16k, get-1m, post-4k, post-64k (as bench/load.py).
# Needs perf (apt-get install -y linux-perf), wrk; as root, or with
# kernel.perf_event_paranoid <= 1. Exit: 0 done, 1 wrk saw errors, 2 setup.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
scenario=get-tiny
connections=64
duration=10
build=$root/build-bench
out=''
pid=''
port=''
probes=0
graph=1

die() { echo "profile.sh: $*" >&2; exit 2; }
usage() { sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }

while [[ $# -gt 0 ]]; do
	case "$1" in
	--scenario) scenario=${2:?}; shift 2 ;;
	--connections) connections=${2:?}; shift 2 ;;
	--duration) duration=${2:?}; shift 2 ;;
	--build) build=${2:?}; shift 2 ;;
	--out) out=${2:?}; shift 2 ;;
	--pid) pid=${2:?}; shift 2 ;;
	--port) port=${2:?}; shift 2 ;;
	--probes) probes=1; shift ;;
	--no-graph) graph=0; shift ;;
	-h | --help) usage 0 ;;
	*) echo "profile.sh: unknown argument '$1'" >&2; usage 2 ;;
	esac
done

case $scenario in
get-tiny) method=GET path='/?size=16' body=0 ;;
get-16k) method=GET path='/?size=16384' body=0 ;;
get-1m) method=GET path='/?size=1048576' body=0 ;;
post-4k) method=POST path='/?size=16' body=4096 ;;
post-64k) method=POST path='/?size=16' body=65536 ;;
*) die "unknown scenario '$scenario'" ;;
esac
[[ $duration =~ ^[0-9]+$ && $duration -ge 4 ]] || die "--duration: whole seconds >= 4"
[[ -n $pid && -z $port || -z $pid && -n $port ]] && die "--pid and --port go together"
for t in perf wrk taskset; do
	command -v "$t" >/dev/null || die "$t not found (apt-get install -y linux-perf wrk)"
done
out=${out:-$root/bench/results/profile-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
[[ -f $root/bench/results/.gitignore ]] || printf '*\n' >"$root/bench/results/.gitignore"

tmp=$(mktemp -d /tmp/weir-profile.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	local p
	for _ in $(seq 100); do
		p=$((10000 + RANDOM % 20000))
		[[ -z $(ss -Htan "sport = :$p") ]] && { echo "$p"; return 0; }
	done
	die "no free port"
}
wait_port() {
	for _ in $(seq 200); do
		kill -0 "$2" 2>/dev/null || { cat "$3" >&2; die "$4 exited during start-up"; }
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	die "$4 did not listen on $1"
}

if [[ -z $pid ]]; then
	[[ -f $build/build.ninja ]] || meson setup "$build" "$root" --buildtype=release >/dev/null
	ninja -C "$build" src/weir tools/weir-origin >/dev/null || die "ninja -C $build failed"
	oport=$(free_port)
	taskset -c 1 "$build/tools/weir-origin" --listen "127.0.0.1:$oport" --quiet \
		>"$tmp/origin.log" 2>&1 &
	pids+=($!)
	wait_port "$oport" "$!" "$tmp/origin.log" weir-origin
	port=$(free_port)
	cat >"$tmp/weir.yaml" <<-YAML
		upstreams:
		  origin: { servers: [127.0.0.1:$oport], keepalive: $connections }
		routes:
		  - name: default
		    upstream: origin
	YAML
	taskset -c 0 "$build/src/weir" --cpus 0 --workers 1 --listen "127.0.0.1:$port" \
		-c "$tmp/weir.yaml" >"$tmp/weir.log" 2>&1 &
	pid=$!
	pids+=("$pid")
	wait_port "$port" "$pid" "$tmp/weir.log" weir
	bin=$build/src/weir
else
	bin=$(readlink -f "/proc/$pid/exe") || die "no process $pid"
fi

url="http://127.0.0.1:$port$path"
lua=$root/bench/load/wrk.lua
echo "profile.sh: warming up ($scenario, $connections connections)" >&2
taskset -c 1 wrk -t1 -c"$connections" -T 5s -d2s -s "$lua" "$url" -- "$method" "$body" >/dev/null 2>&1 || true

echo "profile.sh: wrk for ${duration}s, perf record for $((duration - 2))s of it" >&2
taskset -c 1 wrk -t1 -c"$connections" -T 5s -d"${duration}s" -s "$lua" "$url" -- "$method" "$body" \
	>"$out/wrk.txt" 2>&1 &
wrk_pid=$!
pids+=("$wrk_pid")
sleep 1
perf record -q -e cpu-clock -g -p "$pid" -o "$out/perf.data" -- sleep $((duration - 2)) \
	>/dev/null 2>"$tmp/perf.log" || { cat "$tmp/perf.log" >&2; die "perf record failed"; }
wait "$wrk_pid" || true

# Probe counts come from a second run of the same scenario: an attached
# uprobe costs a few µs per hit, so it is kept out of the CPU profile.
if [[ $probes -eq 1 ]]; then
	echo "profile.sh: counting USDT probes during a second ${duration}s run" >&2
	taskset -c 1 wrk -t1 -c"$connections" -T 5s -d"${duration}s" -s "$lua" "$url" -- "$method" \
		"$body" >"$out/wrk-probes.txt" 2>&1 &
	wrk_pid=$!
	pids+=("$wrk_pid")
	sleep 1
	# Probe definitions are created for this binary and removed at the end.
	perf buildid-cache --add "$bin" >/dev/null 2>&1 || true
	events=()
	for p in request_start request_end upstream_connect upstream_connected bufring_exhausted; do
		if perf probe -q -x "$bin" -a "sdt_weir:$p" 2>/dev/null ||
			perf probe -l 2>/dev/null | grep -q "sdt_weir:$p "; then
			events+=(-e "sdt_weir:$p")
		fi
	done
	if [[ ${#events[@]} -gt 0 ]]; then
		perf stat -x, "${events[@]}" -p "$pid" -o "$out/probes.txt" -- sleep $((duration - 2)) \
			>/dev/null 2>&1 || true
	else
		echo "profile.sh: no USDT probes in $bin (built without sys/sdt.h?)" >&2
	fi
	wait "$wrk_pid" || true
	perf probe -q -d 'sdt_weir:*' >/dev/null 2>&1 || true
fi

rep() { perf report -i "$out/perf.data" --stdio --no-children "$@" 2>/dev/null; }
{
	echo "# perf profile of weir (pid $pid, $bin), $(date -u +%FT%TZ)"
	echo "# scenario $scenario: wrk -t1 -c$connections $method $path (body $body bytes);" \
		"$(awk '/^Requests\/sec:/ { print $2 }' "$out/wrk.txt") req/s under perf"
	echo "# perf record -e cpu-clock -g -p $pid -- sleep $((duration - 2))"
	if [[ -s $out/probes.txt ]]; then
		echo "# USDT probe counts, $((duration - 2)) s of a second run with the probes attached" \
			"($(awk '/^Requests\/sec:/ { print $2 }' "$out/wrk-probes.txt") req/s):"
		grep sdt_weir "$out/probes.txt" | awk -F, '{ printf "#   %s %s\n", $3, $1 }'
	fi
	echo
	echo "## by thread"
	rep --sort comm -g none | grep -v -e '^#' -e '^$' | sed -n '1,10p'
	echo
	echo "## by object (kernel vs user)"
	rep --sort dso -g none | grep -v -e '^#' -e '^$' | sed -n '1,12p'
	echo
	echo "## top symbols, flat (>= 0.5%)"
	rep --sort dso,sym -g none --percent-limit 0.5 | grep -v -e '^#' -e '^$' | sed -n '1,60p'
	if [[ $graph -eq 1 ]]; then
		echo
		echo "## call graph (--percent-limit 2), first 120 lines"
		rep --percent-limit 2 | sed -n '1,120p'
	fi
} >"$out/summary.txt"

errors=$(awk '/Socket errors:|Non-2xx/ { print }' "$out/wrk.txt")
echo "profile.sh: $out/summary.txt ($(grep -c . "$out/summary.txt") lines), perf.data in $out" >&2
if [[ -n $errors ]]; then
	echo "profile.sh: wrk reported errors: $errors" >&2
	exit 1
fi
