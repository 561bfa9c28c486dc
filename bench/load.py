#!/usr/bin/env python3
"""bench/load.py — weir and its peers under load, side by side, in one run.

    python3 bench/load.py                        # the full sweep (long)
    python3 bench/load.py --quick                # a smoke run: GET tiny, c=64, 2 s
    python3 bench/load.py --scenarios get-tiny --concurrency 16,256 --duration 3
    python3 bench/load.py --save main            # also store as baseline "main"
    python3 bench/load.py --compare main         # regression table; exit 1 past 10 %
    python3 bench/load.py --from FILE --compare main   # compare without running
    python3 bench/load.py --report               # run, then regenerate docs/PERFORMANCE.md
    python3 bench/load.py --memory-only          # idle-connection memory only

Every proxy (weir, nginx, HAProxy, h2o, and the kernel-floor relay) runs
for the whole benchmark on the proxy CPU (default 0) against one weir-origin;
the load client and the origin share the client CPU (default 1). Points are
interleaved: for each scenario and concurrency every proxy takes its turn
before the next point, so drift on this shared machine hits all of them alike.
Per point: requests, errors (non-2xx, resets/read errors, timeouts, connect
errors), req/s, latency p50/p95/p99/p99.9/max, the proxy's CPU µs per request
(utime+stime of the whole process from /proc/PID/stat, before and after),
CPU busy %, RSS, and the upstream connections the origin accepted.

Closed loop: wrk (-t1 by default) with bench/load/wrk.lua. Open loop: weir-rate
(bench/load/weir-rate.c) at a constant rate, latency from the intended send
time. See bench/README.md for all options and docs/PERFORMANCE.md for results.

Python 3 standard library only.
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from benchlib import cpu_ticks, free_port  # noqa: E402

SCENARIOS = {
    # name: (method, path, request body bytes, default open-loop rate)
    "get-tiny": ("GET", "/?size=16", 0, 10000),
    "get-16k": ("GET", "/?size=16384", 0, 5000),
    "get-1m": ("GET", "/?size=1048576", 0, 200),
    "post-4k": ("POST", "/?size=16", 4096, 5000),
    "post-64k": ("POST", "/?size=16", 65536, 1000),
}
ALL_PROXIES = ["weir", "nginx", "haproxy", "h2o", "floor"]
PEERS = ["nginx", "haproxy", "h2o"]
HZ = os.sysconf("SC_CLK_TCK")
SCHEMA = 1


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def die(msg, code=2):
    print(f"load.py: {msg}", file=sys.stderr)
    sys.exit(code)


# ---------------------------------------------------------------- system ---

def sched_ns(pid):
    """On-CPU nanoseconds of the live threads (schedstat: exact, unlike the
    tick-sampled utime/stime; threads that exit between two reads are lost,
    so it is a cross-check, not the main figure)."""
    total = 0
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        return None
    return total


def mem_kib(pid):
    rss = hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


def wait_port(port, proc, name, logfile, timeout=10):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            die(f"{name} exited during start-up:\n{read_tail(logfile)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    die(f"{name} did not listen on {port} within {timeout} s:\n{read_tail(logfile)}")


def read_tail(path, n=20):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def http_get(port, path, timeout=5):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""
    except OSError:
        return 0, b""


def run_out(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (p.stdout + p.stderr).strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_list(spec):
    out = []
    for part in spec.split(","):
        if "-" in part:
            a, b = part.split("-")
            out.extend(range(int(a), int(b) + 1))
        elif part:
            out.append(int(part))
    return out


def environment(args):
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    commit = run_out(["git", "-C", ROOT, "rev-parse", "--short=12", "HEAD"]) or "unknown"
    dirty = bool(run_out(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"]))
    deb = ""
    try:
        with open("/etc/debian_version") as f:
            deb = f.read().strip()
    except OSError:
        pass
    versions = {
        "nginx": run_out([args.nginx, "-v"]).replace("nginx version: ", ""),
        "haproxy": run_out([args.haproxy, "-v"]).splitlines()[0] if shutil.which(args.haproxy) else "",
        "h2o": run_out([args.h2o, "-v"]).splitlines()[0] if shutil.which(args.h2o) else "",
        "wrk": run_out(["wrk", "-v"]).splitlines()[0] if shutil.which("wrk") else "",
        "gcc": run_out(["cc", "--version"]).splitlines()[0] if shutil.which("cc") else "",
    }
    versions = {k: re.sub(r"\s*Copyright.*", "", v) for k, v in versions.items()}
    return {
        "cpu": cpu,
        "cpus_online": os.cpu_count(),
        "kernel": platform.release(),
        "os": f"Debian {deb}" if deb else platform.platform(),
        "commit": commit,
        "dirty": dirty,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "hz": HZ,
        "loadavg_start": os.getloadavg()[0],
        "versions": versions,
    }


# ------------------------------------------------------------------ build ---

def build(args):
    b = args.build
    if not os.path.isfile(os.path.join(b, "build.ninja")):
        log(f"meson setup {b} (release)")
        r = subprocess.run(["meson", "setup", b, ROOT, "--buildtype=release"],
                           stdout=subprocess.DEVNULL)
        if r.returncode != 0:
            die(f"meson setup {b} failed")
    targets = ["src/weir", "tools/weir-origin", "bench/load/weir-rate",
               "bench/floor/weir-floor", "bench/micro/bench-micro"]
    r = subprocess.run(["ninja", "-C", b] + targets, stdout=subprocess.DEVNULL)
    if r.returncode != 0:
        die(f"ninja -C {b} failed")
    bins = {
        "weir": os.path.join(b, "src/weir"),
        "origin": os.path.join(b, "tools/weir-origin"),
        "rate": os.path.join(b, "bench/load/weir-rate"),
        "floor": os.path.join(b, "bench/floor/weir-floor"),
        "micro": os.path.join(b, "bench/micro/bench-micro"),
    }
    return bins


# -------------------------------------------------------------- processes ---

class Proc:
    """One server process we started (a proxy or the origin)."""

    def __init__(self, name, kind, port, popen, logfile):
        self.name, self.kind, self.port, self.popen, self.logfile = name, kind, port, popen, logfile

    @property
    def pid(self):
        return self.popen.pid

    def alive(self):
        return self.popen.poll() is None


class Bench:
    def __init__(self, args, bins):
        self.args, self.bins = args, bins
        self.tmp = tempfile.mkdtemp(prefix="weir-load.")
        self.procs = []
        self.origin = None
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        self.nofile = hard

    def close(self):
        for p in self.procs:
            if p.alive():
                p.popen.terminate()
        for p in self.procs:
            try:
                p.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.popen.kill()
                p.popen.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def spawn(self, name, kind, cmd, port, cwd=None):
        logfile = os.path.join(self.tmp, f"{name}.log")
        with open(logfile, "w") as lf:
            pop = subprocess.Popen(cmd, stdout=lf, stderr=subprocess.STDOUT, cwd=cwd,
                                   start_new_session=True)
        p = Proc(name, kind, port, pop, logfile)
        self.procs.append(p)
        wait_port(port, pop, name, logfile)
        return p

    def taskset(self, cpus):
        return ["taskset", "-c", cpus]

    def start_origin(self):
        port = free_port()
        cmd = self.taskset(self.args.client_cpus) + [
            self.bins["origin"], "--listen", f"127.0.0.1:{port}", "--quiet",
            "--threads", str(self.args.origin_threads)]
        self.origin = self.spawn("origin", "origin", cmd, port)
        code, _ = http_get(port, "/?size=16")
        if code != 200:
            die(f"weir-origin answered {code}")

    def origin_conns(self):
        code, body = http_get(self.origin.port, "/_stats")
        try:
            return json.loads(body)["connections"] if code == 200 else None
        except ValueError:
            return None

    def maxconn(self, kind):
        """Client connections a proxy may accept: every one is a descriptor
        (HAProxy counts two per connection, client and server side)."""
        n = self.nofile - 200
        return max(1024, n // 2 if kind == "haproxy" else n)

    def start(self, name, workers=1, cpus=None, maxconn=None):
        """Start proxy `name` (weir, weir-N, nginx, haproxy, h2o, floor);
        maxconn overrides the connection limits of its configuration."""
        a = self.args
        cpus = cpus or a.proxy_cpus
        kind = "weir" if name.startswith("weir") else name
        port = free_port()
        origin = f"127.0.0.1:{self.origin.port}"
        d = os.path.join(self.tmp, name)
        os.makedirs(d, exist_ok=True)
        subst = {
            "@PREFIX@": d, "@LISTEN@": f"127.0.0.1:{port}", "@LISTEN_HOST@": "127.0.0.1",
            "@LISTEN_PORT@": str(port), "@ORIGIN@": origin, "@KEEPALIVE@": str(a.keepalive),
            "@CPU@": str(cpu_list(cpus)[0]), "@MAXCONN@": str(maxconn or self.maxconn(kind)),
            "@WORKER_CONNECTIONS@": str(maxconn or self.maxconn(kind)),
            "@NOFILE@": str(self.nofile),
        }

        def fill(template, out):
            with open(os.path.join(HERE, "peers", template)) as f:
                text = f.read()
            for k, v in subst.items():
                text = text.replace(k, v)
            path = os.path.join(d, out)
            with open(path, "w") as f:
                f.write(text)
            return path

        if kind == "weir":
            conf = os.path.join(d, "weir.yaml")
            with open(conf, "w") as f:
                f.write(f"workers: {workers}\n"
                        f"cpus: \"{cpus}\"\n"
                        f"max_connections: {self.maxconn(kind)}\n"
                        "upstreams:\n"
                        f"  origin: {{ servers: [{origin}], keepalive: {a.keepalive} }}\n"
                        "routes:\n"
                        "  - name: default\n"
                        "    upstream: origin\n")
            cmd = self.taskset(cpus) + [self.bins["weir"], "--listen", f"127.0.0.1:{port}",
                                        "-c", conf]
        elif kind == "nginx":
            conf = fill("nginx.conf.in", "nginx.conf")
            cmd = self.taskset(cpus) + [a.nginx, "-p", d, "-e", os.path.join(d, "error.log"),
                                        "-c", conf]
        elif kind == "haproxy":
            conf = fill("haproxy.cfg.in", "haproxy.cfg")
            cmd = self.taskset(cpus) + [a.haproxy, "-db", "-f", conf]
        elif kind == "h2o":
            conf = fill("h2o.conf.in", "h2o.conf")
            cmd = self.taskset(cpus) + [a.h2o, "-c", conf]
        elif kind == "floor":
            cmd = self.taskset(cpus) + [self.bins["floor"], "--listen", f"127.0.0.1:{port}",
                                        "--upstream", origin]
        else:
            die(f"unknown proxy {name}")
        p = self.spawn(name, kind, cmd, port, cwd=d)
        code, _ = http_get(port, "/?size=16")
        if code != 200:
            die(f"{name}: GET /?size=16 answered {code}\n{read_tail(p.logfile)}")
        return p

    # ----------------------------------------------------------- one point ---

    def point(self, proxy, scenario, mode, conc, duration, rate=None):
        """Run one measurement; returns a result dict."""
        a = self.args
        method, path, body, _ = SCENARIOS[scenario]
        url = f"http://127.0.0.1:{proxy.port}{path}"
        c0 = self.origin_conns()
        t0 = cpu_ticks(proxy.pid)
        s0 = sched_ns(proxy.pid)
        w0 = time.time()
        res = {"proxy": proxy.name, "scenario": scenario, "mode": mode, "concurrency": conc}
        if mode == "closed":
            cmd = self.taskset(a.client_cpus) + [
                "wrk", f"-t{min(a.wrk_threads, conc)}", f"-c{conc}",
                f"-d{max(1, math.ceil(duration))}s",
                "-T", f"{a.timeout}s", "-s", os.path.join(HERE, "load", "wrk.lua"), url,
                "--", method, str(body)]
            out = subprocess.run(cmd, capture_output=True, text=True)
            m = re.search(r"^WRKJSON (.*)$", out.stdout, re.M)
            if not m:
                res["failed"] = f"wrk: {out.stdout[-500:]} {out.stderr[-500:]}"
                return res
            w = json.loads(m.group(1))
            secs = w["duration_us"] / 1e6
            e = w["errors"]
            res.update({
                "requests": w["requests"], "duration_s": secs,
                "rps": w["requests"] / secs if secs else 0,
                "errors": {"status": e["status"], "reset": e["read"] + e["write"],
                           "timeout": e["timeout"], "connect": e["connect"], "unsent": 0},
                "latency_us": w["latency_us"],
            })
        else:
            rate = rate or SCENARIOS[scenario][3]
            cmd = self.taskset(a.client_cpus) + [
                self.bins["rate"], "--url", url, "--rate", str(rate),
                "--connections", str(conc), "--duration", str(duration), "--warmup", "1",
                "--timeout", str(int(a.timeout * 1000)), "--method", method,
                "--body", str(body), "--json"] + ([] if a.verbose else ["--quiet"])
            out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None if a.verbose
                                 else subprocess.PIPE, text=True)
            try:
                w = json.loads(out.stdout)
            except ValueError:
                res["failed"] = f"weir-rate: {out.stdout[-500:]} {out.stderr or ''}"
                return res
            res.update({
                "rate": rate, "requests": w["completed"], "duration_s": w["duration_s"],
                "rps": w["rps"], "errors": w["errors"], "latency_us": w["latency_us"],
                "spectrum_us": w["spectrum_us"],
            })
            # weir-rate's warm-up second is inside the CPU window: count its
            # requests too (they were sent at the same rate).
            res["cpu_requests"] = w["completed"] + int(rate)
        wall = time.time() - w0
        if not proxy.alive():
            res["failed"] = f"{proxy.name} died:\n{read_tail(proxy.logfile)}"
            return res
        t1 = cpu_ticks(proxy.pid)
        s1 = sched_ns(proxy.pid)
        c1 = self.origin_conns()
        rss, hwm = mem_kib(proxy.pid)
        cpu_s = (t1 - t0) / HZ
        nreq = res.get("cpu_requests", res["requests"])
        res.update({
            "cpu_s": cpu_s,
            "cpu_us_per_req": cpu_s * 1e6 / nreq if nreq else None,
            "cpu_busy": cpu_s / wall if wall else None,
            "cpu_us_per_req_sched": (s1 - s0) / 1e3 / nreq if nreq and s0 is not None
            and s1 is not None else None,
            "rss_kib": rss, "hwm_kib": hwm,
            # the /_stats request itself is one connection
            "upstream_connects": (c1 - c0 - 1) if c0 is not None and c1 is not None else None,
        })
        res["error_total"] = sum(res["errors"].values())
        return res


def fmt_point(r):
    if "failed" in r:
        return f"FAILED: {r['failed'][:300]}"
    lat = r["latency_us"]
    return (f"{r['rps']:9.0f} req/s  p50 {lat['p50']:7.0f}  p99 {lat['p99']:8.0f}  "
            f"max {lat['max']:8.0f} µs  cpu {r['cpu_us_per_req'] or 0:6.2f} "
            f"({r['cpu_us_per_req_sched'] or 0:.2f}) µs/req  "
            f"busy {100 * (r['cpu_busy'] or 0):3.0f}%  rss {r['rss_kib'] / 1024:6.1f} MiB  "
            f"errors {r['error_total']}  upconn {r['upstream_connects']}")


# ---------------------------------------------------------------- memory ---

def memory_scenario(bench, names, steps):
    """Idle keep-alive connections: RSS per connection for each proxy."""
    a = bench.args
    out = []
    margin = 300
    per_client = max(1000, min(15000, bench.nofile - 100))
    for name in names:
        def warm_baseline(p):
            # Warm up first (receive buffers, upstream pool, lazily touched
            # pages), so that the baseline holds the fixed costs.
            subprocess.run(bench.taskset(a.client_cpus) + [
                "wrk", "-t1", "-c64", "-d2s", f"http://127.0.0.1:{p.port}/?size=16"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
            return mem_kib(p.pid)[0]

        slot = None
        if name == "nginx":
            # nginx allocates and writes its whole connection table
            # (worker_connections entries) at start, so that per-connection
            # cost sits in its baseline. Measure it: the baseline with a
            # 1,024-entry table against the one with the full table.
            small = bench.start(name, maxconn=1024)
            b_small = warm_baseline(small)
            small.popen.terminate()
            small.popen.wait()
        p = bench.start(name)   # a fresh instance: no buffers left from load runs
        base = warm_baseline(p)
        if name == "nginx":
            big = bench.maxconn("nginx")
            slot = (base - b_small) * 1024 / (big - 1024)
            log(f"memory: nginx: {slot:.0f} bytes per connection-table entry, "
                f"preallocated ({big} entries in the baseline)")
        prev_n, prev_rss = 0, base
        clients, opened, ipbase = [], 0, 2
        log(f"memory: {name}: baseline RSS {base / 1024:.1f} MiB")
        for step in steps:
            if step + margin > bench.nofile:
                msg = (f"skipped: {step} connections need more than RLIMIT_NOFILE "
                       f"({bench.nofile}) descriptors in one process, and this machine "
                       "does not allow raising the hard limit")
                log(f"memory: {name}: {step}: {msg}")
                out.append({"proxy": name, "connections": step, "skipped": msg})
                continue
            need = step - opened
            answered = failed = 0
            while need > 0:
                n = min(need, per_client)
                cmd = bench.taskset(a.client_cpus) + [
                    bench.bins["rate"], "--url", f"http://127.0.0.1:{p.port}/?size=16",
                    "--idle", str(n), "--sources", "1", "--source-base", str(ipbase)]
                ipbase += 1
                c = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
                clients.append(c)
                line = c.stdout.readline()
                m = re.match(r"ready (.*)", line)
                if not m:
                    log(f"memory: {name}: client failed: {line!r}")
                    failed += n
                else:
                    j = json.loads(m.group(1))
                    answered += j["answered"]
                    failed += j["failed"]
                need -= n
                opened += n
            time.sleep(1.0)
            if not p.alive():
                out.append({"proxy": name, "connections": step, "skipped": "proxy died"})
                break
            rss, _ = mem_kib(p.pid)
            per = (rss - base) * 1024 / step if step else 0
            marginal = (rss - prev_rss) * 1024 / (step - prev_n) if step > prev_n else None
            out.append({"proxy": name, "connections": step, "baseline_rss_kib": base,
                        "rss_kib": rss, "bytes_per_conn": per,
                        "bytes_per_conn_marginal": marginal, "failed": failed,
                        "prealloc_bytes_per_slot": slot})
            log(f"memory: {name}: {step} idle connections: RSS {rss / 1024:.1f} MiB, "
                f"{per:.0f} bytes/connection over the baseline"
                + (f", {marginal:.0f} for the last {step - prev_n}" if marginal else "")
                + f", {failed} failed")
            prev_n, prev_rss = step, rss
        for c in clients:
            try:
                c.stdin.close()
            except OSError:
                pass
        for c in clients:
            try:
                c.wait(timeout=10)
            except subprocess.TimeoutExpired:
                c.kill()
                c.wait()
        p.popen.terminate()
        p.popen.wait()
    return out


# ----------------------------------------------------------------- sweep ---

def median_result(rs):
    """Median of each numeric metric over rounds (failed rounds dropped)."""
    ok = [r for r in rs if "failed" not in r]
    if not ok:
        return dict(rs[0])
    m = dict(ok[0])
    for k in ("rps", "cpu_us_per_req", "cpu_us_per_req_sched", "cpu_busy", "rss_kib", "hwm_kib", "requests",
              "upstream_connects", "error_total"):
        vals = [r[k] for r in ok if r.get(k) is not None]
        m[k] = statistics.median(vals) if vals else None
    m["latency_us"] = {k: statistics.median(r["latency_us"][k] for r in ok)
                       for k in ok[0]["latency_us"]}
    m["errors"] = {k: sum(r["errors"][k] for r in ok) for k in ok[0]["errors"]}
    m["error_total"] = sum(r["error_total"] for r in ok)
    m["rounds"] = len(ok)
    return m


def sweep(bench, proxies, args):
    results, points = [], []
    for sc in args.scenarios:
        for mode in args.modes:
            concs = args.concurrency if mode == "closed" else [args.open_connections]
            for c in concs:
                points.append((sc, mode, c))
    total = len(points) * len(proxies) * args.rounds
    per = (args.duration + args.warmup) if args.warmup else args.duration
    log(f"{len(points)} points x {len(proxies)} proxies x {args.rounds} round(s) = {total} runs, "
        f"about {total * (per + 1) / 60:.1f} min")
    n = 0
    t_start = time.time()
    for sc, mode, c in points:
        per_proxy = {p.name: [] for p in proxies}
        for rnd in range(args.rounds):
            order = proxies if rnd % 2 == 0 else list(reversed(proxies))
            for p in order:
                n += 1
                if args.warmup and mode == "closed":
                    bench.point(p, sc, mode, c, args.warmup)  # warm-up, dropped
                r = bench.point(p, sc, mode, c, args.duration if mode == "closed"
                                else args.open_duration, rate=args.rate)
                r["round"] = rnd
                per_proxy[p.name].append(r)
                results.append(r)
                eta = (time.time() - t_start) / n * (total - n)
                log(f"[{n}/{total}, {eta / 60:.1f} min left] {sc} {mode} c={c} "
                    f"{p.name:8s} {fmt_point(r)}")
    return results


def summarize(results):
    groups = {}
    for r in results:
        groups.setdefault((r["proxy"], r["scenario"], r["mode"], r["concurrency"]), []).append(r)
    return [median_result(v) for v in groups.values()]


# ------------------------------------------------------------- baselines ---

def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def ratio_table(run):
    """{(scenario, mode, metric, peer): {concurrency: weir/peer}}"""
    by = {}
    for r in run.get("summary", []):
        if "failed" in r:
            continue
        by[(r["proxy"], r["scenario"], r["mode"], r["concurrency"])] = r
    out = {}
    keys = {(s, m, c) for (_, s, m, c) in by}
    metrics = {"rps": lambda r: r["rps"], "cpu": lambda r: r["cpu_us_per_req"],
               "p99": lambda r: r["latency_us"]["p99"]}
    for peer in PEERS + ["floor"]:
        for metric, get in metrics.items():
            for (s, m, c) in keys:
                w, p = by.get(("weir", s, m, c)), by.get((peer, s, m, c))
                if w and p and get(w) and get(p):
                    out.setdefault((s, m, metric, peer), {})[c] = get(w) / get(p)
    return out


# Higher is better for rps ratios; lower is better for cpu and p99 ratios.
BETTER_HIGH = {"rps": True, "cpu": False, "p99": False, "micro": False}


def with_peer_mean(table):
    """Adds peer "peers": per point, the geometric mean of weir/peer over
    nginx, HAProxy and h2o (those measured at that point)."""
    out = dict(table)
    groups = {}
    for (s, m, metric, peer), per_c in table.items():
        if peer in PEERS:
            for c, v in per_c.items():
                groups.setdefault((s, m, metric), {}).setdefault(c, {})[peer] = v
    for (s, m, metric), per_c in groups.items():
        out[(s, m, metric, "peers")] = {c: v for c, v in per_c.items()}
    return out


def compare(base, cur, threshold, gate, per_peer=False):
    """Regression rows. Gated rows: weir/peers (all peers together) unless
    per_peer, then every weir/peer row."""
    rows, bad = [], 0
    rb, rc = with_peer_mean(ratio_table(base)), with_peer_mean(ratio_table(cur))
    order = {p: i for i, p in enumerate(["peers"] + PEERS + ["floor"])}
    for k in sorted(set(rb) & set(rc), key=lambda k: (k[0], k[1], k[2], order[k[3]])):
        s, m, metric, peer = k
        common = sorted(set(rb[k]) & set(rc[k]))
        if peer == "peers":
            # the same peers on both sides, at each concurrency
            pts_b, pts_c = [], []
            for x in common:
                both = set(rb[k][x]) & set(rc[k][x])
                if both:
                    pts_b.append(geomean([rb[k][x][p] for p in both]))
                    pts_c.append(geomean([rc[k][x][p] for p in both]))
            b, c = geomean(pts_b), geomean(pts_c)
        else:
            # geometric means over the concurrencies both runs measured
            b = geomean([rb[k][x] for x in common])
            c = geomean([rc[k][x] for x in common])
        if not b or not c:
            continue
        change = (c - b) / b * 100
        worse = -change if BETTER_HIGH[metric] else change
        gated = metric in gate and (peer == "peers" or (per_peer and peer in PEERS))
        flag = ""
        if worse > threshold:
            flag = "REGRESSION" if gated else "worse"
            bad += gated
        elif -worse > threshold:
            flag = "better"
        rows.append((f"{s} {m} {metric} weir/{peer}", f"{b:.3f}", f"{c:.3f}", f"{change:+.1f}%", flag))
    mb = {x["name"]: x for x in (base.get("micro") or {}).get("benchmarks", []) if "ns_per_op" in x}
    mc = {x["name"]: x for x in (cur.get("micro") or {}).get("benchmarks", []) if "ns_per_op" in x}
    for name in sorted(set(mb) & set(mc)):
        b, c = mb[name]["ns_per_op"]["median"], mc[name]["ns_per_op"]["median"]
        change = (c - b) / b * 100 if b else 0
        flag = ""
        if change > threshold:
            flag = "REGRESSION" if "micro" in gate else "worse"
            bad += "micro" in gate
        elif -change > threshold:
            flag = "better"
        rows.append((f"micro {name} ns/op", f"{b:.1f}", f"{c:.1f}", f"{change:+.1f}%", flag))
    return rows, bad


def busy_regimes(base, cur):
    """Median CPU busy of the peers over the closed-loop points both runs
    have: how hard the peers were driven. CPU per request falls as a proxy
    gets busier (more work per wake-up), so weir/peer CPU ratios are
    comparable only between runs in a similar regime."""
    def points(run):
        return {(r["proxy"], r["scenario"], r["concurrency"]): r["cpu_busy"]
                for r in run.get("summary", [])
                if r.get("proxy") in PEERS and r.get("mode") == "closed" and r.get("cpu_busy")}
    pb, pc = points(base), points(cur)
    common = set(pb) & set(pc)
    if not common:
        return None, None
    return (statistics.median(pb[k] for k in common), statistics.median(pc[k] for k in common))


def print_compare(rows, base_name, threshold, gate):
    w = max([len(r[0]) for r in rows] + [6])
    print(f"\nRegression check against baseline '{base_name}' (threshold {threshold:g} %, "
          f"gating: {', '.join(sorted(gate))}). Ratios are weir/peer from the same run, "
          "geometric means over the concurrencies both runs have; weir/peers is weir "
          "against nginx, HAProxy and h2o together.")
    print(f"{'metric':{w}}  {'baseline':>10}  {'current':>10}  {'change':>8}  verdict")
    for r in rows:
        print(f"{r[0]:{w}}  {r[1]:>10}  {r[2]:>10}  {r[3]:>8}  {r[4]}")
    if not rows:
        print("(nothing in common to compare)")


# ------------------------------------------------------------------ main ---

def parse_args():
    ap = argparse.ArgumentParser(
        description="weir and its peers under load, side by side (see bench/README.md)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench"),
                    help="build directory (default build-bench; created as release)")
    ap.add_argument("--proxies", default=",".join(ALL_PROXIES),
                    help="comma list of weir,nginx,haproxy,h2o,floor (default all)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS),
                    help="comma list of " + ",".join(SCENARIOS))
    ap.add_argument("--concurrency", default="1,16,64,256,1024",
                    help="closed-loop connections to sweep (default 1,16,64,256,1024)")
    ap.add_argument("--modes", default="closed,open", help="closed,open (default both)")
    ap.add_argument("--duration", type=float, default=5, help="seconds per closed-loop point")
    ap.add_argument("--open-duration", type=float, help="seconds per open-loop point "
                    "(default --duration; plus 1 s warm-up)")
    ap.add_argument("--warmup", type=float, default=1,
                    help="closed-loop warm-up seconds before each point (0: none)")
    ap.add_argument("--rate", type=float, help="open-loop rate for every scenario "
                    "(default per scenario: " +
                    ", ".join(f"{k} {v[3]}" for k, v in SCENARIOS.items()) + ")")
    ap.add_argument("--open-connections", type=int, default=64,
                    help="open-loop connections (default 64)")
    ap.add_argument("--rounds", type=int, default=1, help="rounds per point (medians)")
    ap.add_argument("--keepalive", type=int, help="idle upstream connections every proxy "
                    "keeps (default: the largest concurrency)")
    ap.add_argument("--timeout", type=float, default=5, help="request timeout, seconds")
    ap.add_argument("--proxy-cpus", default="0", help="CPU list for the proxy (default 0)")
    ap.add_argument("--client-cpus", default="1", help="CPU list for client+origin (default 1)")
    ap.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1)")
    ap.add_argument("--origin-threads", type=int, default=1)
    ap.add_argument("--workers", default="1",
                    help="weir reactor counts; more than one (e.g. 1,2,4,8) runs weir-N for "
                    "each, pinned to the first N CPUs of --proxy-cpus (scaling)")
    ap.add_argument("--memory", action="store_true", help="also run the idle-connection "
                    "memory scenario")
    ap.add_argument("--memory-only", action="store_true", help="only the memory scenario")
    ap.add_argument("--memory-proxies", default="weir,nginx")
    ap.add_argument("--idle-steps", default="10000,50000",
                    help="idle connections, cumulative steps (default 10000,50000)")
    ap.add_argument("--micro", action="store_true", help="also run bench-micro")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: get-tiny, c=64, closed, 2 s, no warm-up")
    ap.add_argument("--json", help="results file (default bench/results/load-DATE.json)")
    ap.add_argument("--from", dest="from_file", help="do not run: load this results file")
    ap.add_argument("--save", metavar="NAME", help="store the results as bench/baselines/NAME.json")
    ap.add_argument("--compare", metavar="NAME", help="compare with baseline NAME (or a file)")
    ap.add_argument("--threshold", type=float, default=10, help="regression threshold, %%")
    ap.add_argument("--gate", default="rps,cpu",
                    help="metrics whose regression fails the run: rps,cpu,p99,micro "
                    "(default rps,cpu)")
    ap.add_argument("--gate-per-peer", action="store_true",
                    help="gate every weir/peer ratio, not only weir against all peers "
                    "together (weir/peers)")
    ap.add_argument("--report", action="store_true",
                    help="regenerate docs/PERFORMANCE.md and its plots from these results")
    ap.add_argument("--nginx", default=os.environ.get("NGINX", "/usr/sbin/nginx"))
    ap.add_argument("--haproxy", default=os.environ.get("HAPROXY", "/usr/sbin/haproxy"))
    ap.add_argument("--h2o", default=os.environ.get("H2O", "/usr/bin/h2o"))
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="pass weir-rate's per-second progress through")
    a = ap.parse_args()
    if a.quick:
        a.scenarios, a.concurrency, a.modes, a.duration, a.warmup = \
            "get-tiny", "64", "closed", 2, 0
    a.scenarios = [s for s in a.scenarios.split(",") if s]
    for s in a.scenarios:
        if s not in SCENARIOS:
            die(f"unknown scenario {s}")
    a.concurrency = [int(x) for x in a.concurrency.split(",") if x]
    a.modes = [m for m in a.modes.split(",") if m]
    for m in a.modes:
        if m not in ("closed", "open"):
            die(f"unknown mode {m}")
    a.proxies = [p for p in a.proxies.split(",") if p]
    for p in a.proxies:
        if p not in ALL_PROXIES:
            die(f"unknown proxy {p}")
    a.workers = [int(x) for x in a.workers.split(",") if x]
    a.idle_steps = [int(x) for x in a.idle_steps.split(",") if x]
    a.memory_proxies = [p for p in a.memory_proxies.split(",") if p]
    a.open_duration = a.open_duration or a.duration
    a.keepalive = a.keepalive or max(a.concurrency + [a.open_connections])
    a.gate = set(g for g in a.gate.split(",") if g)
    return a


def baseline_path(name):
    if os.path.sep in name or name.endswith(".json"):
        return name
    return os.path.join(HERE, "baselines", f"{name}.json")


def main():
    a = parse_args()
    if a.from_file:
        with open(a.from_file) as f:
            run = json.load(f)
    else:
        run = run_all(a)
    if a.save:
        path = baseline_path(a.save)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(run, f, indent=1)
        log(f"baseline saved: {path}")
    code = 0 if run.get("clean", True) else 1
    if a.report:
        import report
        report.write(run, run.get("results_file") or a.from_file)
    if a.compare:
        path = baseline_path(a.compare)
        try:
            with open(path) as f:
                base = json.load(f)
        except OSError as e:
            die(f"baseline {a.compare}: {e}")
        rows, bad = compare(base, run, a.threshold, a.gate, a.gate_per_peer)
        print_compare(rows, a.compare, a.threshold, a.gate)
        rb, rc = busy_regimes(base, run)
        if rb and rc and abs(rb - rc) > 0.2:
            print(f"\nwarning: the peers were {100 * rb:.0f} % busy (median) in the baseline "
                  f"and {100 * rc:.0f} % in this run: CPU-per-request ratios shift with the "
                  "load regime (busier proxies do more work per wake-up); re-measure the "
                  "baseline under similar load, or compare with --rounds 3 on a quiet machine")
        if bad:
            print(f"\n{bad} regression(s) past {a.threshold:g} %")
            code = 1
    sys.exit(code)


def run_all(a):
    for tool in ["wrk", "taskset"]:
        if not shutil.which(tool):
            die(f"{tool} not found (apt-get install -y wrk util-linux)")
    avail = {"nginx": a.nginx, "haproxy": a.haproxy, "h2o": a.h2o}
    proxies = []
    for p in a.proxies:
        if p in avail and not (os.access(avail[p], os.X_OK)):
            log(f"{p}: {avail[p]} not found, skipped (apt-get install -y "
                f"{'nginx-light' if p == 'nginx' else p})")
            continue
        proxies.append(p)
    bins = build(a)
    env = environment(a)
    run = {"schema": SCHEMA, "env": env, "config": {
        k: (sorted(v) if isinstance(v, set) else v) for k, v in vars(a).items()
        if k not in ("from_file", "save", "compare", "report", "json")}}
    bench = Bench(a, bins)

    def on_term(sig, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    clean = True
    try:
        if a.micro:
            log("micro benchmarks (bench-micro)")
            mj = os.path.join(bench.tmp, "micro.json")
            r = subprocess.run(bench.taskset(a.proxy_cpus) + [bins["micro"], "--json", mj],
                               stdout=sys.stderr)
            if r.returncode == 0:
                with open(mj) as f:
                    run["micro"] = json.load(f)
            else:
                clean = False
        bench.start_origin()
        if not a.memory_only:
            started = []
            for p in proxies:
                if p == "weir" and len(a.workers) > 1:
                    cpus = cpu_list(a.proxy_cpus)
                    for n in a.workers:
                        if n > len(cpus):
                            log(f"weir-{n}: only {len(cpus)} proxy CPUs, skipped")
                            continue
                        sub = ",".join(str(c) for c in cpus[:n])
                        pr = bench.start(f"weir-{n}", workers=n, cpus=sub)
                        started.append(pr)
                else:
                    started.append(bench.start(p))
            log("started: " + ", ".join(f"{p.name} (pid {p.pid}, port {p.port})" for p in started))
            results = sweep(bench, started, a)
            run["results"] = results
            run["summary"] = summarize(results)
            for r in results:
                if "failed" in r or r.get("error_total"):
                    clean = False
            for p in started:
                if not p.alive():
                    clean = False
                    log(f"{p.name} died: {read_tail(p.logfile)}")
                p.popen.terminate()
                p.popen.wait()
        if a.memory or a.memory_only:
            run["memory"] = memory_scenario(bench, a.memory_proxies, a.idle_steps)
            run["memory_nofile"] = bench.nofile
    except KeyboardInterrupt:
        log("interrupted")
        bench.close()
        sys.exit(130)
    finally:
        bench.close()
    env["loadavg_end"] = os.getloadavg()[0]
    run["clean"] = clean
    path = a.json or os.path.join(
        HERE, "results", f"load-{time.strftime('%Y%m%d-%H%M%S')}.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rd = os.path.join(HERE, "results")
    if os.path.isdir(rd) and not os.path.exists(os.path.join(rd, ".gitignore")):
        with open(os.path.join(rd, ".gitignore"), "w") as f:
            f.write("*\n")
    run["results_file"] = os.path.relpath(os.path.abspath(path), ROOT)
    with open(path, "w") as f:
        json.dump(run, f, indent=1)
    log(f"results: {path}")
    print_summary(run)
    return run


def print_summary(run):
    s = run.get("summary") or []
    if not s:
        return
    print("\n| scenario | mode | conc | proxy | req/s | p50 µs | p99 µs | p99.9 µs | CPU µs/req "
          "| busy | RSS MiB | errors |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in s:
        if "failed" in r:
            print(f"| {r['scenario']} | {r['mode']} | {r['concurrency']} | {r['proxy']} | failed |")
            continue
        lat = r["latency_us"]
        print(f"| {r['scenario']} | {r['mode']} | {r['concurrency']} | {r['proxy']} "
              f"| {r['rps']:.0f} | {lat['p50']:.0f} | {lat['p99']:.0f} | {lat['p99_9']:.0f} "
              f"| {r['cpu_us_per_req']:.2f} | {100 * r['cpu_busy']:.0f}% "
              f"| {r['rss_kib'] / 1024:.1f} | {r['error_total']} |")


if __name__ == "__main__":
    main()
