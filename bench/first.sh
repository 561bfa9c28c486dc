#!/usr/bin/env bash
# bench/first.sh — weir against nginx, side by side, one core each.
#
# Usage: bash bench/first.sh [--duration 10] [--connections 64] [--rounds 3]
#                            [--path '/?size=16'] [--build DIR] [--json FILE]
#                            [--only weir|nginx] [--keepalive 64] [--embedded]
#                            [--perf]
#
# The proxy under test owns CPU 0; weir-origin and wrk share CPU 1 (the machine
# has two cores). weir and nginx take turns (A B A B A B) against the same
# origin; for each run we record wrk's requests/s and p50/p99 latency, and the
# proxy's own CPU time (utime+stime from /proc/PID/stat, all threads) read
# just before and just after wrk. The table shows the median over the rounds
# and the ratio weir/nginx. See bench/README.md.
#
# Both proxies keep the same number of idle upstream connections (--keepalive,
# default 64 = --connections): weir gets a generated configuration equal to its
# embedded one (one catch-all route, one upstream) except for that pool size.
# --embedded runs weir exactly as `weir --upstream HOST:PORT` instead, whose
# pool keeps 128 idle connections per reactor (nginx then gets keepalive 128);
# with more client connections than the pool, a proxy reconnects under load.
#
# Exit status: 0 when every run was clean; 1 when any run saw socket errors,
# non-2xx/3xx responses, or a proxy died; 2 on a usage or setup error.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

duration=10
connections=64
rounds=3
path='/?size=16'
build=''
json=''
do_perf=0
proxies=(weir nginx)
keepalive=''
embedded=0
wrk_threads=1

usage() {
	sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
	exit "${1:-2}"
}

die() {
	echo "first.sh: $*" >&2
	exit 2
}

while [[ $# -gt 0 ]]; do
	case "$1" in
	--duration) duration=${2:?}; shift 2 ;;
	--connections) connections=${2:?}; shift 2 ;;
	--rounds) rounds=${2:?}; shift 2 ;;
	--path) path=${2:?}; shift 2 ;;
	--build) build=${2:?}; shift 2 ;;
	--json) json=${2:?}; shift 2 ;;
	--perf) do_perf=1; shift ;;
	--keepalive) keepalive=${2:?}; shift 2 ;;
	--embedded) embedded=1; shift ;;
	--only)
		case ${2:-} in
		weir | nginx) proxies=("$2") ;;
		*) die "--only: weir or nginx" ;;
		esac
		shift 2 ;;
	-h | --help) usage 0 ;;
	*) echo "first.sh: unknown argument '$1'" >&2; usage 2 ;;
	esac
done

[[ $duration =~ ^[0-9]+$ && $duration -ge 2 ]] || die "--duration: whole seconds >= 2"
[[ $connections =~ ^[0-9]+$ && $connections -ge 1 ]] || die "--connections: a positive number"
[[ $rounds =~ ^[0-9]+$ && $rounds -ge 1 ]] || die "--rounds: a positive number"
[[ $path == /* ]] || die "--path must start with '/'"
keepalive=${keepalive:-$connections}
[[ $keepalive =~ ^[0-9]+$ ]] || die "--keepalive: a number"
[[ $embedded -eq 0 ]] || keepalive=128 # what weir's embedded configuration keeps

for tool in wrk taskset ss awk curl; do
	command -v "$tool" >/dev/null || die "$tool not found"
done
nginx_bin=${NGINX:-/usr/sbin/nginx}
[[ -x $nginx_bin ]] || die "$nginx_bin not found (apt-get install -y nginx-light)"
[[ $(nproc --all) -ge 2 ]] || die "needs at least 2 CPUs (proxy on CPU 0, client+origin on CPU 1)"

# ---------------------------------------------------------------- build ----
if [[ -z $build ]]; then
	build=$root/build-bench
	if [[ ! -f $build/build.ninja ]]; then
		meson setup "$build" "$root" --buildtype=release >/dev/null ||
			die "meson setup $build failed"
	fi
fi
build=$(cd "$build" && pwd) || die "no build directory $build"
if [[ -f $build/build.ninja ]]; then
	targets=(tools/weir-origin)
	[[ ${proxies[*]} == *weir* ]] && targets+=(src/weir)
	ninja -C "$build" "${targets[@]}" >/dev/null || die "ninja -C $build failed"
fi
weir_bin=$build/src/weir
origin_bin=$build/tools/weir-origin
[[ ${proxies[*]} != *weir* || -x $weir_bin ]] || die "$weir_bin not built"
[[ -x $origin_bin ]] || die "$origin_bin not built"

# -------------------------------------------------------------- helpers ----
tmp=$(mktemp -d /tmp/weir-bench.XXXXXX)
pids=()

cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

hz=$(getconf CLK_TCK)

# A free TCP port on 127.0.0.1: random, below the ephemeral range (so no
# client connection can hold it), and not used by any socket in any state.
# weir and weir-origin set SO_REUSEPORT, so binding a port another test's
# listener holds would "work" and split the load: hence the check.
free_port() {
	local p lo
	read -r lo _ </proc/sys/net/ipv4/ip_local_port_range
	[[ $lo -gt 12000 ]] || lo=32768
	for _ in $(seq 100); do
		p=$((10000 + RANDOM % (lo - 10000)))
		if [[ -z $(ss -Htan "sport = :$p") ]]; then
			echo "$p"
			return 0
		fi
	done
	die "no free port"
}

# wait_port PORT PID NAME LOG: wait up to 10 s for a listener, failing early if PID exits.
wait_port() {
	local port=$1 pid=$2 name=$3 log=$4
	for _ in $(seq 200); do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "first.sh: $name exited during start-up; its output:" >&2
			cat "$log" >&2
			exit 2
		fi
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		sleep 0.05
	done
	echo "first.sh: $name did not listen on port $port within 10 s; its output:" >&2
	cat "$log" >&2
	exit 2
}

# utime+stime of a process (all its threads) in clock ticks. Fields after the
# last ')' so a command name with spaces cannot shift them.
cpu_ticks() {
	local stat
	stat=$(<"/proc/$1/stat") || return 1
	stat=${stat##*) }
	# shellcheck disable=SC2086
	set -- $stat
	# $1 is field 3 (state); utime is field 14, stime field 15.
	echo $((${12} + ${13}))
}

# wrk latency "461.00us" / "1.23ms" / "2.00s" -> microseconds.
to_us() {
	awk -v v="$1" 'BEGIN {
		n = v + 0
		if (v ~ /us$/) f = 1; else if (v ~ /ms$/) f = 1000; else if (v ~ /s$/) f = 1000000; else f = 1
		printf "%.1f", n * f
	}'
}

median() {
	printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END {
		if (NR % 2) print a[(NR + 1) / 2]; else printf "%.6g\n", (a[NR / 2] + a[NR / 2 + 1]) / 2
	}'
}

# Smoke test: one request through the proxy must return 200.
smoke() {
	local name=$1 port=$2 code
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port$path") || code=000
	if [[ $code != 200 ]]; then
		echo "first.sh: $name answered $code to GET $path (expected 200)" >&2
		exit 1
	fi
}

# ------------------------------------------------------------- processes ---
origin_port=$(free_port)
taskset -c 1 "$origin_bin" --listen "127.0.0.1:$origin_port" --quiet >"$tmp/origin.log" 2>&1 &
origin_pid=$!
pids+=("$origin_pid")
wait_port "$origin_port" "$origin_pid" weir-origin "$tmp/origin.log"
smoke weir-origin "$origin_port"

declare -A port_of pid_of log_of

start_weir() {
	local conf=()
	port_of[weir]=$(free_port)
	log_of[weir]=$tmp/weir.log
	if [[ $embedded -eq 1 ]]; then
		conf=(--upstream "127.0.0.1:$origin_port")
	else
		# The embedded --upstream configuration, with the pool size spelt out
		# (and no admin listener, so no fixed port is taken).
		cat >"$tmp/weir.yaml" <<-YAML
			upstreams:
			  origin: { servers: [127.0.0.1:$origin_port], keepalive: $keepalive }
			routes:
			  - name: default
			    upstream: origin
		YAML
		conf=(-c "$tmp/weir.yaml")
	fi
	taskset -c 0 "$weir_bin" --cpus 0 --workers 1 --listen "127.0.0.1:${port_of[weir]}" \
		"${conf[@]}" >"${log_of[weir]}" 2>&1 &
	pid_of[weir]=$!
	pids+=("${pid_of[weir]}")
}

start_nginx() {
	port_of[nginx]=$(free_port)
	log_of[nginx]=$tmp/nginx/error.log
	mkdir -p "$tmp/nginx"
	sed -e "s|@PREFIX@|$tmp/nginx|g" \
		-e "s|@LISTEN@|127.0.0.1:${port_of[nginx]}|g" \
		-e "s|@ORIGIN@|127.0.0.1:$origin_port|g" \
		-e "s|@KEEPALIVE@|$keepalive|g" \
		-e "s|@WORKER_CONNECTIONS@|16384|g" \
		-e "s|@NOFILE@|$(ulimit -Hn)|g" \
		"$here/peers/nginx.conf.in" >"$tmp/nginx/nginx.conf"
	# master_process off: this PID is the process that serves requests.
	taskset -c 0 "$nginx_bin" -p "$tmp/nginx" -e "${log_of[nginx]}" \
		-c "$tmp/nginx/nginx.conf" >"$tmp/nginx.log" 2>&1 &
	pid_of[nginx]=$!
	pids+=("${pid_of[nginx]}")
}

for name in "${proxies[@]}"; do
	"start_$name"
	wait_port "${port_of[$name]}" "${pid_of[$name]}" "$name" "$tmp/$name.log"
	smoke "$name" "${port_of[$name]}"
done

declare -A rps p50 p99 cpuus reqs util upconn
failures=()

# run_wrk NAME SECONDS OUTFILE: wrk on CPU 1 against NAME's port.
run_wrk() {
	taskset -c 1 wrk -t"$wrk_threads" -c"$connections" -d"${2}s" --latency \
		"http://127.0.0.1:${port_of[$1]}$path" >"$3" 2>&1 || true
}

# Errors in a wrk output, as one line; empty when clean.
wrk_errors() {
	awk '
		/Socket errors:/ { sub(/^ +/, ""); if ($0 !~ /connect 0, read 0, write 0, timeout 0/) e = e $0 "; " }
		/Non-2xx or 3xx responses:/ { sub(/^ +/, ""); e = e $0 "; " }
		END { printf "%s", e }
	' "$1"
}

# Connections the origin has accepted so far (its X-Origin-Conns header; the
# asking connection included). Compared before and after a run, it tells how
# many upstream connections the proxy opened: a working keep-alive pool opens
# none once warm.
origin_conns() {
	curl -s -D - -o /dev/null --max-time 5 "http://127.0.0.1:$origin_port/" |
		awk -F': *' 'tolower($1) == "x-origin-conns" { print $2 + 0 }'
}

# measure NAME ROUND: one measured run; fills the arrays.
measure() {
	local name=$1 round=$2 pid=${pid_of[$1]} out="$tmp/wrk-$1-$2.txt"
	local t0 t1 n r l50 l99 err c0 c1
	c0=$(origin_conns)
	t0=$(cpu_ticks "$pid") || { failures+=("$name round $round: process gone before the run"); return; }
	run_wrk "$name" "$duration" "$out"
	c1=$(origin_conns)
	if ! t1=$(cpu_ticks "$pid"); then
		failures+=("$name round $round: process died during the run")
		cat "$out" >&2
		return
	fi
	n=$(awk '/requests in/ { print $1 }' "$out")
	r=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
	l50=$(awk '$1 == "50%" { print $2 }' "$out")
	l99=$(awk '$1 == "99%" { print $2 }' "$out")
	if [[ -z $n || -z $r || -z $l50 || -z $l99 || $n -eq 0 ]]; then
		failures+=("$name round $round: wrk gave no result")
		cat "$out" >&2
		return
	fi
	err=$(wrk_errors "$out")
	[[ -z $err ]] || failures+=("$name round $round: $err")
	rps[$name,$round]=$r
	[[ -n $c0 && -n $c1 ]] && upconn[$name,$round]=$((c1 - c0 - 1))
	reqs[$name,$round]=$n
	p50[$name,$round]=$(to_us "$l50")
	p99[$name,$round]=$(to_us "$l99")
	cpuus[$name,$round]=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v n="$n" \
		'BEGIN { printf "%.3f", t / hz * 1e6 / n }')
	# Share of CPU 0 the proxy used: near 100 means the proxy was the bottleneck.
	util[$name,$round]=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v d="$duration" \
		'BEGIN { printf "%.1f", t / hz / d * 100 }')
	printf '  %-5s round %d: %10.0f req/s  p50 %7.1f us  p99 %7.1f us  %6.2f CPU us/req  proxy CPU %5.1f%%  upstream connects %s%s\n' \
		"$name" "$round" "$r" "${p50[$name,$round]}" "${p99[$name,$round]}" \
		"${cpuus[$name,$round]}" "${util[$name,$round]}" "${upconn[$name,$round]:-?}" \
		"${err:+  ERRORS: $err}" >&2
}

# ------------------------------------------------------------------ runs ---
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')
echo "${proxies[*]} (weir $commit, $("$nginx_bin" -v 2>&1 | sed 's/.*: //')):" \
	"wrk -t$wrk_threads -c$connections -d${duration}s GET $path, $rounds rounds," \
	"upstream pool $keepalive" >&2
for name in "${proxies[@]}"; do # warm-up: pools filled, pages touched
	run_wrk "$name" 2 "$tmp/warm-$name.txt"
	err=$(wrk_errors "$tmp/warm-$name.txt")
	[[ -z $err ]] || failures+=("$name warm-up: $err")
done
for round in $(seq "$rounds"); do
	for name in "${proxies[@]}"; do
		measure "$name" "$round"
	done
done

# ---------------------------------------------------------------- report ---
col() { # col ARRAY NAME -> median over rounds (empty if none)
	local -n arr=$1
	local vals=() round
	for round in $(seq "$rounds"); do
		[[ -n ${arr[$2,$round]:-} ]] && vals+=("${arr[$2,$round]}")
	done
	[[ ${#vals[@]} -gt 0 ]] && median "${vals[@]}"
	return 0
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "n/a"; else printf "%.2f", a / b }'; }
# shellcheck disable=SC2059
fmt() { if [[ -n $2 ]]; then printf "$1" "$2"; else printf "n/a"; fi; }

declare -A med
for name in "${proxies[@]}"; do
	for m in rps p50 p99 cpuus util upconn; do
		med[$m,$name]=$(col "$m" "$name")
	done
done
both=0
[[ ${#proxies[@]} -eq 2 ]] && both=1

echo
echo "| proxy | req/s | p50 (µs) | p99 (µs) | CPU µs/request | proxy CPU busy | upstream connects/run |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for name in "${proxies[@]}"; do
	echo "| $name | $(fmt %.0f "${med[rps,$name]}") | $(fmt %.0f "${med[p50,$name]}")" \
		"| $(fmt %.0f "${med[p99,$name]}") | $(fmt %.2f "${med[cpuus,$name]}")" \
		"| $(fmt %.0f%% "${med[util,$name]}") | $(fmt %.0f "${med[upconn,$name]}") |"
done
if [[ $both -eq 1 ]]; then
	echo "| weir/nginx | $(ratio "${med[rps,weir]}" "${med[rps,nginx]}")" \
		"| $(ratio "${med[p50,weir]}" "${med[p50,nginx]}") | $(ratio "${med[p99,weir]}" "${med[p99,nginx]}")" \
		"| $(ratio "${med[cpuus,weir]}" "${med[cpuus,nginx]}") | | |"
fi
echo
echo "Medians of $rounds rounds; proxy on CPU 0, weir-origin + wrk on CPU 1;" \
	"wrk -t$wrk_threads -c$connections -d${duration}s GET $path;" \
	"upstream keep-alive pool: $keepalive idle connections$([[ $embedded -eq 1 ]] && echo ' (weir: embedded configuration)')."

if [[ -n $json ]]; then
	{
		printf '{\n  "commit": "%s",\n  "date": "%s",\n' \
			"$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)" "$(date -u +%FT%TZ)"
		printf '  "duration_s": %s, "connections": %s, "rounds": %s, "path": "%s", "keepalive": %s, "weir_embedded_config": %s,\n' \
			"$duration" "$connections" "$rounds" "$path" "$keepalive" "$([[ $embedded -eq 1 ]] && echo true || echo false)"
		printf '  "proxies": {\n'
		sep=''
		for name in "${proxies[@]}"; do
			printf '%s    "%s": {\n' "$sep" "$name"
			printf '      "median": {"rps": %s, "p50_us": %s, "p99_us": %s, "cpu_us_per_req": %s, "cpu_busy_pct": %s, "upstream_connects": %s},\n' \
				"${med[rps,$name]:-null}" "${med[p50,$name]:-null}" "${med[p99,$name]:-null}" \
				"${med[cpuus,$name]:-null}" "${med[util,$name]:-null}" "${med[upconn,$name]:-null}"
			printf '      "rounds": ['
			rsep=''
			for round in $(seq "$rounds"); do
				printf '%s{"rps": %s, "p50_us": %s, "p99_us": %s, "cpu_us_per_req": %s, "cpu_busy_pct": %s, "upstream_connects": %s, "requests": %s}' \
					"$rsep" "${rps[$name,$round]:-null}" "${p50[$name,$round]:-null}" \
					"${p99[$name,$round]:-null}" "${cpuus[$name,$round]:-null}" \
					"${util[$name,$round]:-null}" "${upconn[$name,$round]:-null}" "${reqs[$name,$round]:-null}"
				rsep=', '
			done
			printf ']\n    }'
			sep=$',\n'
		done
		printf '\n  },\n'
		if [[ $both -eq 1 ]]; then
			printf '  "ratio_weir_nginx": {"rps": %s, "cpu_us_per_req": %s},\n' \
				"$(ratio "${med[rps,weir]}" "${med[rps,nginx]}" | sed 's|n/a|null|')" \
				"$(ratio "${med[cpuus,weir]}" "${med[cpuus,nginx]}" | sed 's|n/a|null|')"
		fi
		printf '  "errors": %d\n}\n' "${#failures[@]}"
	} >"$json"
	echo "JSON written to $json" >&2
fi

# ------------------------------------------------------------------ perf ---
# profile NAME: one extra run of NAME under perf; summary in results/perf-NAME.txt.
profile() {
	local name=$1 data=$results/perf-$1.data out=$results/perf-$1.txt wrk_pid err
	echo "perf: profiling $name (cpu-clock, call graphs) during one extra ${duration}s run" >&2
	run_wrk "$name" "$duration" "$tmp/wrk-$name-perf.txt" &
	wrk_pid=$!
	pids+=("$wrk_pid")
	sleep 1 # connections up; the profile covers the steady state only
	rm -f "$data" "$data.old"
	perf record -q -e cpu-clock -g -p "${pid_of[$name]}" -o "$data" \
		-- sleep $((duration - 2)) >/dev/null 2>"$tmp/perf.log" ||
		{ cat "$tmp/perf.log" >&2; die "perf record failed"; }
	wait "$wrk_pid" || true
	err=$(wrk_errors "$tmp/wrk-$name-perf.txt")
	[[ -z $err ]] || failures+=("$name perf run: $err")
	report() { perf report -i "$data" --stdio --no-children "$@" 2>/dev/null; }
	report --sort comm -g none >"$tmp/perf-comm.txt"
	report --sort dso -g none >"$tmp/perf-dso.txt"
	report --sort dso,sym -g none --percent-limit 0.5 >"$tmp/perf-flat.txt"
	report --percent-limit 1.5 >"$tmp/perf-graph.txt"
	{
		echo "# perf profile of $name (weir commit $commit), $(date -u +%FT%TZ)"
		echo "# perf record -e cpu-clock -g -p PID -- sleep $((duration - 2)), during"
		echo "# wrk -t$wrk_threads -c$connections GET $path:" \
			"$(awk '/^Requests\/sec:/ { print $2 }' "$tmp/wrk-$name-perf.txt") req/s under perf"
		echo
		echo "## by thread"
		grep -v -e '^#' -e '^$' "$tmp/perf-comm.txt" | sed -n '1,10p'
		echo
		echo "## by object (kernel vs user)"
		grep -v -e '^#' -e '^$' "$tmp/perf-dso.txt" | sed -n '1,10p'
		echo
		echo "## top symbols, flat (>= 0.5%)"
		grep -v -e '^#' -e '^$' "$tmp/perf-flat.txt" | sed -n '1,60p'
		echo
		echo "## perf report --stdio --no-children --percent-limit 1.5 | head -80"
		sed -n '1,80p' "$tmp/perf-graph.txt"
	} >"$out"
	echo "perf: summary in $out" >&2
}

if [[ $do_perf -eq 1 ]]; then
	command -v perf >/dev/null || die "perf not found (apt-get install -y linux-perf)"
	results=$here/results
	mkdir -p "$results"
	[[ -f $results/.gitignore ]] || printf '*\n' >"$results/.gitignore"
	for name in "${proxies[@]}"; do
		profile "$name"
	done
fi

# ---------------------------------------------------------------- verdict --
if [[ ${#failures[@]} -gt 0 ]]; then
	echo >&2
	echo "first.sh: ${#failures[@]} run(s) had errors:" >&2
	printf '  %s\n' "${failures[@]}" >&2
	for name in "${proxies[@]}"; do
		if [[ -s ${log_of[$name]} ]]; then
			echo "--- $name log (last 20 lines) ---" >&2
			tail -20 "${log_of[$name]}" >&2
		fi
	done
	exit 1
fi
