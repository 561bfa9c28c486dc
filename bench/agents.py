#!/usr/bin/env python3
"""bench/agents.py — what an agent costs weir: CPU µs/request and req/s.

    python3 bench/agents.py [--duration 8] [--rounds 3] [--connections 32]
                            [--build build-bench-agents] [--json FILE]

For GET (16-byte response), POST 4 KiB and POST 64 KiB, weir runs with no
agent, with a no-op agent subscribed to request headers only, and with one
subscribed to request headers + body (buffer mode: the body is held until the
verdict, then forwarded), over the socket and over the shared-memory
transport (uapi/weir/ring.h; `transport: auto`); POST 1 MiB too. The no-op agent is tools/weir-agent-noop (libweir-
agent; callbacks on its I/O thread). weir owns CPU 0 (one reactor); wrk, weir-origin and the
agent share CPU 1. Per run: wrk's req/s and p99, weir's CPU time (utime+stime
from /proc/PID/stat) per request, and the agent's. The table shows medians
over the rounds (configurations interleaved within each round) and each
agent configuration's weir CPU/request as a ratio to no agent, measured in
the same round. Issue target: headers + 4 KiB body ≤ 1.3× no agent.

Needs wrk (apt-get install wrk). Nothing here asserts a timing.
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import TICK, cpu_ticks, free_port, parse_wrk, wait_listen  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


SCENARIOS = [
    ("GET", "/?size=16", 0),
    ("POST 4 KiB", "/?size=16", 4096),
    ("POST 64 KiB", "/?size=16", 65536),
    ("POST 1 MiB", "/?size=16", 1 << 20),
]
# (name, agent events, transport: weir's `transport:` for the agent)
CONFIGS = [
    ("no agent", None, None),
    ("no-op: headers", "request_headers", "socket"),
    ("no-op: headers+body", "request_headers,request_body", "socket"),
    ("no-op: headers+body, shm", "request_headers,request_body", "auto"),
]


def wait_path(path, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if os.path.exists(path):
            return
        time.sleep(0.05)
    raise SystemExit("agents.py: agent socket %s did not appear" % path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench-agents"))
    ap.add_argument("--json")
    a = ap.parse_args()

    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit("agents.py: %s not found (apt-get install -y %s)" % (tool, tool))
    if not os.path.exists(os.path.join(a.build, "build.ninja")):
        subprocess.check_call(["meson", "setup", "--buildtype=release", a.build, ROOT],
                              stdout=subprocess.DEVNULL)
    subprocess.check_call(["ninja", "-C", a.build], stdout=subprocess.DEVNULL)
    weir = os.path.join(a.build, "src", "weir")
    origin = os.path.join(a.build, "tools", "weir-origin")
    noop = os.path.join(a.build, "tools", "weir-agent-noop")
    for b in (weir, origin, noop):
        if not os.path.exists(b):
            raise SystemExit("agents.py: %s was not built" % b)

    tmp = tempfile.mkdtemp(prefix="weir-bench-agents-")
    procs = []

    def start(cmd, cpu, **kw):
        p = subprocess.Popen(["taskset", "-c", str(cpu)] + cmd, stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(tmp, "stderr-%d" % len(procs)), "w"), **kw)
        procs.append(p)
        return p

    def stop(p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    oport = free_port()
    start([origin, "--listen", "127.0.0.1:%d" % oport, "--quiet"], 1)
    wait_listen(oport, 10.0, "agents.py")
    results = {}
    try:
        for rnd in range(a.rounds):
            for sname, path, body in SCENARIOS:
                lua = None
                if body:
                    lua = os.path.join(tmp, "post%d.lua" % body)
                    with open(lua, "w") as f:
                        f.write('wrk.method = "POST"\nwrk.body = string.rep("a", %d)\n'
                                'wrk.headers["Content-Type"] = "application/octet-stream"\n'
                                % body)
                base = None
                for cname, events, transport in CONFIGS:
                    wport = free_port()
                    conf = os.path.join(tmp, "weir.yaml")
                    sock = os.path.join(tmp, "noop.sock")
                    y = ["workers: 1", "listen:", "  - address: 127.0.0.1:%d" % wport,
                         "upstreams:", "  app:", "    servers: [127.0.0.1:%d]" % oport,
                         "    keepalive: %d" % a.connections]
                    agent = None
                    if events:
                        if os.path.exists(sock):
                            os.unlink(sock)
                        agent = start([noop, "--listen", "unix:" + sock, "--events", events,
                                       "--quiet"], 1)
                        wait_path(sock)
                        y += ["agents:", "  noop:", "    socket: %s" % sock,
                              "    timeout: 1s", "    max_body: 2m",
                              "    transport: %s" % transport]
                    y += ["routes:", "  - path_prefix: /", "    upstream: app"]
                    if events:
                        y += ["    agents: [noop]"]
                    with open(conf, "w") as f:
                        f.write("\n".join(y) + "\n")
                    w = start([weir, "-c", conf, "--cpus", "0"], 0)
                    wait_listen(wport, 10.0, "agents.py")
                    time.sleep(0.3)
                    # warm-up
                    cmd = ["taskset", "-c", "1", "wrk", "-t1", "-c%d" % a.connections,
                           "--latency"]
                    if lua:
                        cmd += ["-s", lua]
                    url = "http://127.0.0.1:%d%s" % (wport, path)
                    subprocess.run(cmd + ["-d1", url], capture_output=True)
                    t0, a0 = cpu_ticks(w.pid), cpu_ticks(agent.pid) if agent else 0
                    out = subprocess.run(cmd + ["-d%d" % a.duration, url], capture_output=True,
                                         text=True).stdout
                    t1, a1 = cpu_ticks(w.pid), cpu_ticks(agent.pid) if agent else 0
                    rps, reqs, p99, errs = parse_wrk(out)
                    us = (t1 - t0) / TICK * 1e6 / max(reqs, 1)
                    aus = (a1 - a0) / TICK * 1e6 / max(reqs, 1)
                    if base is None:
                        base = us
                    r = results.setdefault(sname, {}).setdefault(cname, [])
                    r.append({"rps": rps, "p99_us": p99, "cpu_us": us, "agent_cpu_us": aus,
                              "body_MBps": rps * body / 1e6,
                              "ratio": us / base if base else float("nan"), "errors": errs})
                    print("round %d  %-12s %-20s %9.0f req/s  p99 %7.0f us  weir %6.2f us/req"
                          "  agent %6.2f us/req  x%.2f%s" % (rnd + 1, sname, cname, rps, p99, us,
                                                           aus, us / base,
                                                           "  ERRORS %d" % errs if errs else ""),
                          flush=True)
                    stop(w)
                    procs.remove(w)
                    if agent:
                        stop(agent)
                        procs.remove(agent)
    finally:
        for p in procs:
            stop(p)
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print("| scenario | configuration | req/s | body MB/s | p99 µs | weir CPU µs/req | × no agent | agent CPU µs/req |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    summary = {}
    for sname, _, _ in SCENARIOS:
        for cname, _, _ in CONFIGS:
            rs = results[sname][cname]
            med = {k: statistics.median(x[k] for x in rs) for k in rs[0]}
            summary.setdefault(sname, {})[cname] = med
            print("| %s | %s | %.0f | %.0f | %.0f | %.2f | %.2f | %.2f |" % (
                sname, cname, med["rps"], med["body_MBps"], med["p99_us"], med["cpu_us"],
                med["ratio"], med["agent_cpu_us"]))
        sock = summary[sname].get("no-op: headers+body")
        shm = summary[sname].get("no-op: headers+body, shm")
        if sock and shm and sock["rps"]:
            print("| %s | shm / socket inspected-body throughput | %.2f× | | | %.2f× CPU | | |" % (
                sname, shm["rps"] / sock["rps"], shm["cpu_us"] / sock["cpu_us"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rounds": results, "median": summary, "duration": a.duration,
                       "connections": a.connections}, f, indent=1)
    bad = sum(x["errors"] for s in results.values() for c in s.values() for x in c)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
