"""Small helpers the benchmark scripts share (bench/load.py, agents.py,
waf.py, accesslog.py): CPU ticks of a process, a free port, waiting for a
listener, wrk's text summary."""
import os
import random
import re
import socket
import time

TICK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid):
    """utime + stime of the whole process (all threads, exited ones too)."""
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])


def free_port():
    """A free port below the ephemeral range, bindable without SO_REUSEPORT
    (so nothing else, in any state, holds it)."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        lo = int(f.read().split()[0])
    lo = lo if lo > 12000 else 32768
    for _ in range(200):
        p = random.randint(10000, lo - 1)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
            return p
        except OSError:
            continue
        finally:
            s.close()
    raise SystemExit("no free port")


def wait_listen(port, timeout=10.0, who="bench"):
    """Until something accepts on 127.0.0.1:port; SystemExit after timeout."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("%s: nothing listening on port %d" % (who, port))


def parse_wrk(out):
    """wrk's text summary -> (req/s, requests, p99 µs, errors: socket errors
    plus non-2xx/3xx answers). p99 needs --latency."""
    def dur(v, unit):
        return float(v) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    errs = 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errs += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errs += sum(int(x) for x in m.groups())
    return rps, reqs, dur(*p99.groups()) if p99 else float("nan"), errs
