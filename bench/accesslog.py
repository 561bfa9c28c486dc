#!/usr/bin/env python3
"""bench/accesslog.py BUILD_DIR [ROUNDS]: what the access log costs weir.

GET 16 B through weir (1 reactor pinned to CPU 0) to weir-origin, wrk
(bench/load/wrk.lua, 64 connections, 6 s) and the origin on CPU 1; access log
off, JSON and combined, ROUNDS rounds (default 3) interleaved. Prints the median
weir CPU µs per request (utime+stime from /proc) and req/s of each; fails on
any wrk error or non-2xx answer. The helpers are bench/benchlib.py's and bench/load.py's."""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from benchlib import TICK, cpu_ticks, free_port  # noqa: E402
from load import die, wait_port  # noqa: E402

MODES = ("off", "json", "combined")


def config(d, port, origin, mode):
    cfg = "workers: 1\nlisten:\n  - address: 127.0.0.1:%d\n" % port
    if mode != "off":
        cfg += "access_log:\n  path: %s/access.log\n  format: %s\n" % (d, mode)
    cfg += ("upstreams:\n  app:\n    servers: [127.0.0.1:%d]\n"
            "routes:\n  - {path_prefix: /, upstream: app}\n" % origin)
    path = os.path.join(d, "weir.yaml")
    with open(path, "w") as f:
        f.write(cfg)
    return path


def one(build, d, origin, mode):
    port = free_port()
    log = os.path.join(d, "weir.log")
    with open(log, "w") as lf:
        w = subprocess.Popen([os.path.join(build, "src", "weir"), "-c",
                              config(d, port, origin, mode), "--cpus", "0"],
                             stdout=lf, stderr=lf)
    try:
        wait_port(port, w, "weir", log)
        t0 = cpu_ticks(w.pid)
        out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c64", "-d6s", "-s",
                              os.path.join(HERE, "load", "wrk.lua"),
                              "http://127.0.0.1:%d/?size=16" % port],
                             capture_output=True, text=True, check=True).stdout
        cpu = cpu_ticks(w.pid) - t0
    finally:
        w.terminate()
        w.wait()
    m = re.search(r"^WRKJSON (.*)$", out, re.M)
    if m is None:
        die("no WRKJSON line from wrk:\n" + out)
    r = json.loads(m.group(1))
    if any(r["errors"].values()) or r["requests"] == 0:
        die("%s: wrk errors %r" % (mode, r["errors"]))
    try:
        os.unlink(os.path.join(d, "access.log"))
    except FileNotFoundError:
        pass
    return cpu / TICK * 1e6 / r["requests"], r["requests"] * 1e6 / r["duration_us"]


def main():
    if len(sys.argv) < 2:
        die("usage: bench/accesslog.py BUILD_DIR [ROUNDS]")
    build = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    d = tempfile.mkdtemp(prefix="weir-alog-")
    oport = free_port()
    olog = os.path.join(d, "origin.log")
    with open(olog, "w") as lf:
        origin = subprocess.Popen(["taskset", "-c", "1", os.path.join(build, "tools", "weir-origin"),
                                   "--listen", "127.0.0.1:%d" % oport], stdout=lf, stderr=lf)
    try:
        wait_port(oport, origin, "weir-origin", olog)
        res = {m: [] for m in MODES}
        for _ in range(rounds):
            for mode in MODES:
                res[mode].append(one(build, d, oport, mode))
    finally:
        origin.terminate()
        origin.wait()
    base = statistics.median(c for c, _ in res["off"])
    print("| access log | weir CPU µs/req | × off | req/s |")
    print("|---|---:|---:|---:|")
    for mode in MODES:
        cpu = statistics.median(c for c, _ in res[mode])
        rps = statistics.median(x for _, x in res[mode])
        print("| %s | %.2f | %.3f | %.0f |" % (mode, cpu, cpu / base, rps))


if __name__ == "__main__":
    main()
