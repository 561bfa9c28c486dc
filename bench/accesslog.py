#!/usr/bin/env python3
"""bench/accesslog.py BUILD_DIR: weir CPU per request with the access log off, JSON and combined
(GET 16 B, 1 reactor on CPU 0, wrk and weir-origin on CPU 1, 3 rounds, medians)."""
import os, subprocess, sys, time, tempfile, re
B = sys.argv[1]
TICK = os.sysconf("SC_CLK_TCK")
def ticks(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])
d = tempfile.mkdtemp()
origin = subprocess.Popen(["taskset", "-c", "1", B + "/tools/weir-origin", "--listen", "127.0.0.1:19100"], stdout=subprocess.DEVNULL)
time.sleep(0.5)
res = {}
for rnd in range(3):
  for mode in ("off", "json", "combined"):
    cfg = "workers: 1\nlisten:\n  - address: 127.0.0.1:19101\n"
    if mode != "off":
        cfg += "access_log:\n  path: %s/a.log\n  format: %s\n" % (d, mode)
    cfg += "upstreams:\n  app:\n    servers: [127.0.0.1:19100]\nroutes:\n  - {path_prefix: /, upstream: app}\n"
    open(d + "/w.yaml", "w").write(cfg)
    w = subprocess.Popen([B + "/src/weir", "-c", d + "/w.yaml", "--cpus", "0"], stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    t0 = ticks(w.pid)
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c64", "-d6s", "http://127.0.0.1:19101/?size=16"], capture_output=True, text=True).stdout
    t1 = ticks(w.pid)
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    rps = float(m.group(1)); n = rps * 6
    res.setdefault(mode, []).append(((t1 - t0) / TICK * 1e6 / n, rps))
    w.terminate(); w.wait()
    try: os.unlink(d + "/a.log")
    except FileNotFoundError: pass
origin.terminate()
for mode, v in res.items():
    v.sort()
    cpu, rps = v[1]
    print("%-9s median CPU %.2f us/req  req/s %.0f   all: %s" % (mode, cpu, rps, ["%.2f" % x[0] for x in v]))
