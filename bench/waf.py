#!/usr/bin/env python3
"""bench/waf.py — the OWASP CRS as a weir agent vs inside nginx.

    python3 bench/waf.py [--duration 6] [--rounds 2] [--connections 16]
                         [--build build-bench-waf] [--json FILE]
                         [--perf FILE]

Two scenarios, both benign (nothing blocked: a non-2xx fails the run):
GET /?size=16 with browser-like headers, and a POST of a 4 KiB
application/x-www-form-urlencoded form (64 fields). Two stacks, each with
CRS 3.3.4 (Debian's modsecurity-crs) at paranoia level 1 on libmodsecurity
3.0.9, the same directives (nginx loads `weir-waf --print-directives`):

  weir + weir-waf   weir with one reactor and weir-waf with one worker
                    thread, both pinned to CPU 0 (taskset)
  nginx + modsec    nginx 1.22 + libnginx-mod-http-modsecurity, one process
                    (master_process off) pinned to CPU 0

wrk (-t1) and weir-origin share CPU 1 (a 2-core machine: the proxy stack
gets one core, the load and the origin the other). Per run: wrk's req/s and
p99, and CPU µs per request of the whole proxy stack from /proc/PID/stat
(utime+stime): weir + weir-waf summed, nginx alone. Medians over the
rounds; the stacks alternate within each round. --perf FILE records weir-waf
with `perf record -e cpu-clock -g` during the first POST run.

Needs wrk, nginx, libnginx-mod-http-modsecurity, modsecurity-crs,
libmodsecurity-dev. Nothing here asserts a timing.
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

HEADERS = {
    "Host": "bench.example",
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0",
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "en-GB,en;q=0.7",
    "Accept-Encoding": "gzip, deflate",
    "Cookie": "session=9f8e7d6c5b4a3210; theme=dark",
}


def form_4k():
    """64 fields of plain words, exactly 4096 bytes."""
    words = "apple banana cherry orange melon pear plum peach grape lime kiwi mango".split()
    fields = []
    i = 0
    while True:
        f = "field%02d=%s" % (len(fields), "+".join(words[(i + k) % len(words)] for k in range(6)))
        i += 1
        if sum(len(x) + 1 for x in fields) + len(f) > 4096 or len(fields) == 64:
            break
        fields.append(f)
    body = "&".join(fields)
    pad = 4096 - len(body) - len("&pad=")
    return body + "&pad=" + "x" * pad


SCENARIOS = [("GET", None), ("POST 4 KiB form", form_4k())]
STACKS = ["weir + weir-waf", "nginx + modsec"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--build", default=os.path.join(ROOT, "build-bench-waf"))
    ap.add_argument("--nginx", default=os.environ.get("NGINX", "/usr/sbin/nginx"))
    ap.add_argument("--json")
    ap.add_argument("--perf", help="perf.data path: profile weir-waf in the first POST run")
    a = ap.parse_args()

    for tool in ("wrk", "taskset", a.nginx):
        if shutil.which(tool) is None:
            raise SystemExit("waf.py: %s not found" % tool)
    if not os.path.exists("/usr/lib/nginx/modules/ngx_http_modsecurity_module.so"):
        raise SystemExit("waf.py: apt-get install libnginx-mod-http-modsecurity")
    if not os.path.exists(os.path.join(a.build, "build.ninja")):
        subprocess.check_call(["meson", "setup", "--buildtype=release", a.build, ROOT],
                              stdout=subprocess.DEVNULL)
    subprocess.check_call(["ninja", "-C", a.build], stdout=subprocess.DEVNULL)
    weir = os.path.join(a.build, "src", "weir")
    origin = os.path.join(a.build, "tools", "weir-origin")
    waf = os.path.join(a.build, "tools", "weir-waf")
    for b in (weir, origin, waf):
        if not os.path.exists(b):
            raise SystemExit("waf.py: %s was not built (libmodsecurity-dev?)" % b)

    tmp = tempfile.mkdtemp(prefix="weir-bench-waf-")
    rules = os.path.join(tmp, "modsec.conf")
    with open(rules, "w") as f:
        subprocess.check_call([waf, "--print-directives"], stdout=f)
    procs = []

    def start(cmd, cpu, name):
        p = subprocess.Popen(["taskset", "-c", str(cpu)] + cmd, stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(tmp, "%s.stderr" % name), "a"))
        procs.append(p)
        return p

    def stop(p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        procs.remove(p)

    oport = free_port()
    start([origin, "--listen", "127.0.0.1:%d" % oport, "--quiet"], 1, "origin")
    wait_listen(oport, 15.0, "waf.py")
    results = {}
    profiled = False
    try:
        for rnd in range(a.rounds):
            for sname, body in SCENARIOS:
                lua = os.path.join(tmp, "wrk-%s.lua" % ("post" if body else "get"))
                with open(lua, "w") as f:
                    for k, v in HEADERS.items():
                        f.write('wrk.headers["%s"] = "%s"\n' % (k, v))
                    if body:
                        f.write('wrk.method = "POST"\nwrk.body = "%s"\n' % body)
                        f.write('wrk.headers["Content-Type"] = '
                                '"application/x-www-form-urlencoded"\n')
                for stack in STACKS:
                    port = free_port()
                    pids = []
                    if stack.startswith("weir"):
                        sock = os.path.join(tmp, "waf.sock")
                        wp = start([waf, "--listen", "unix:" + sock, "--workers", "1",
                                    "--quiet"], 0, "weir-waf")
                        end = time.time() + 15
                        while not os.path.exists(sock) and time.time() < end:
                            time.sleep(0.05)
                        conf = os.path.join(tmp, "weir.yaml")
                        with open(conf, "w") as f:
                            f.write("\n".join([
                                "workers: 1", "listen:", "  - address: 127.0.0.1:%d" % port,
                                "upstreams:", "  app:", "    servers: [127.0.0.1:%d]" % oport,
                                "    keepalive: 64", "agents:", "  waf:",
                                "    socket: %s" % sock,
                                "    events: [request_headers, request_body]",
                                "    timeout: 5s", "    max_body: 1m",
                                "routes:", "  - path_prefix: /", "    upstream: app",
                                "    agents: [waf]"]) + "\n")
                        wr = start([weir, "-c", conf, "--cpus", "0"], 0, "weir")
                        pids = [wr, wp]
                    else:
                        d = os.path.join(tmp, "nginx")
                        os.makedirs(d, exist_ok=True)
                        with open(os.path.join(HERE, "peers", "nginx-modsec.conf.in")) as f:
                            text = f.read()
                        for k, v in (("PREFIX", d), ("RULES", rules),
                                     ("ORIGIN", "127.0.0.1:%d" % oport),
                                     ("LISTEN", "127.0.0.1:%d" % port)):
                            text = text.replace("@%s@" % k, v)
                        with open(os.path.join(d, "nginx.conf"), "w") as f:
                            f.write(text)
                        ng = start([a.nginx, "-p", d, "-e", os.path.join(d, "error.log"),
                                    "-c", os.path.join(d, "nginx.conf")], 0, "nginx")
                        pids = [ng]
                    wait_listen(port, 15.0, "waf.py")
                    url = "http://127.0.0.1:%d/?size=16" % port
                    cmd = ["taskset", "-c", "1", "wrk", "-t1", "-c%d" % a.connections,
                           "--latency", "-s", lua]
                    warm = subprocess.run(cmd + ["-d2", url], capture_output=True, text=True)
                    if parse_wrk(warm.stdout)[3]:
                        raise SystemExit("waf.py: %s %s: errors in the warm-up (blocked?):\n%s"
                                         % (stack, sname, warm.stdout))
                    perf = None
                    if a.perf and body and stack.startswith("weir") and not profiled:
                        perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-g",
                                                 "-o", a.perf, "-p", str(pids[1].pid)],
                                                stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL)
                        profiled = True
                        time.sleep(0.5)
                    t0 = [cpu_ticks(p.pid) for p in pids]
                    out = subprocess.run(cmd + ["-d%d" % a.duration, url], capture_output=True,
                                         text=True).stdout
                    t1 = [cpu_ticks(p.pid) for p in pids]
                    if perf is not None:
                        perf.send_signal(signal.SIGINT)
                        perf.wait(30)
                    rps, reqs, p99, errs = parse_wrk(out)
                    us = [(y - x) / TICK * 1e6 / max(reqs, 1) for x, y in zip(t0, t1)]
                    r = {"rps": rps, "p99_us": p99, "cpu_us": sum(us), "proxy_cpu_us": us[0],
                         "agent_cpu_us": us[1] if len(us) > 1 else 0.0, "errors": errs}
                    results.setdefault(sname, {}).setdefault(stack, []).append(r)
                    print("round %d  %-16s %-16s %7.0f req/s  p99 %8.0f us  CPU %7.1f us/req"
                          " (proxy %6.1f, agent %6.1f)%s" % (
                              rnd + 1, sname, stack, rps, p99, r["cpu_us"], r["proxy_cpu_us"],
                              r["agent_cpu_us"], "  ERRORS %d" % errs if errs else ""),
                          flush=True)
                    for p in reversed(pids):
                        stop(p)
    finally:
        for p in list(procs):
            stop(p)
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print("| scenario | stack | req/s | p99 µs | CPU µs/req (total) | of which agent | "
          "CPU × nginx+modsec |")
    print("|---|---|---:|---:|---:|---:|---:|")
    summary = {}
    for sname, _ in SCENARIOS:
        for stack in STACKS:
            rs = results[sname][stack]
            summary.setdefault(sname, {})[stack] = {
                k: statistics.median(x[k] for x in rs) for k in rs[0]}
        ng = summary[sname]["nginx + modsec"]["cpu_us"]
        for stack in STACKS:
            m = summary[sname][stack]
            print("| %s | %s | %.0f | %.0f | %.1f | %.1f | %.2f |" % (
                sname, stack, m["rps"], m["p99_us"], m["cpu_us"], m["agent_cpu_us"],
                m["cpu_us"] / ng if ng else float("nan")))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rounds": results, "median": summary, "duration": a.duration,
                       "connections": a.connections}, f, indent=1)
    bad = sum(x["errors"] for s in results.values() for c in s.values() for x in c)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
