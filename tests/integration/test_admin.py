#!/usr/bin/env python3
"""The admin listener through the real binary: /health/live, /health (and 503
when the only upstream is down), /metrics (Prometheus text that parses, and
counters that move with traffic), /status, limits of the admin server, the
admin endpoints never answered on the public listener, and weirctl against a
running weir."""

import json
import math
import os
import re
import signal
import socket
import subprocess
import time

import sys
sys.dont_write_bytecode = True
import harness as h  # noqa: E402

N = 25


class Env:
    pass


def weirctl_bin():
    return h._bin("WEIRCTL_BIN", "build-it/tools/weirctl")


def admin_config(port_placeholder, admin_port, upstreams, routes, workers=2):
    cfg = h.simple_config(port_placeholder, top={"workers": workers},
                          upstreams=upstreams, routes=routes)
    return cfg + "admin:\n  address: 127.0.0.1:%d\n" % admin_port


def setup():
    if not os.access(weirctl_bin(), os.X_OK):
        raise h.Skip("WEIRCTL_BIN not found: %s" % weirctl_bin())
    e = Env()
    e.origin = h.start_origin()
    e.admin = h.free_port()
    cfg = admin_config("{port}", e.admin,
                       {"app": {"servers": [e.origin.addr], "keepalive": 8}},
                       ["{name: proxy, path_prefix: /o/, upstream: app}",
                        '{name: hello, path: /hello, return: {status: 200, body: "hi"}}'])
    e.weir = h.start_weir(cfg)
    e.port = e.weir.port
    h.wait_accepting(e.admin, e.weir.proc)
    return e


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def admin_get(port, path, method="GET"):
    return h.request(port, method, path)


def get_json(port, path, expect=200):
    r = admin_get(port, path)
    h.status(r, expect, "GET %s" % path)
    h.eq(r.get("Content-Type"), "application/json", "%s Content-Type" % path)
    try:
        return json.loads(r.body.decode("utf-8"))
    except ValueError as ex:
        h.fail("%s is not JSON (%s): %r" % (path, ex, r.body[:300]))


SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


def parse_labels(text, line):
    labels = {}
    pos = 0
    while pos < len(text):
        m = LABEL_RE.match(text, pos)
        h.check(m is not None, "bad label list in %r" % line)
        value = re.sub(r'\\(.)', lambda x: "\n" if x.group(1) == "n" else x.group(1),
                       m.group(2))
        h.check(m.group(1) not in labels, "label %s twice in %r" % (m.group(1), line))
        labels[m.group(1)] = value
        pos = m.end()
    return labels


def parse_prom(text):
    """Strict parse of the text exposition format. Returns
    {family: {"type": t, "help": s, "samples": [(name, labels, value)]}} and
    checks HELP/TYPE order, sample names, histogram buckets (sorted le,
    cumulative, +Inf == _count) and that no series appears twice."""
    h.check(text.endswith("\n"), "/metrics does not end with a newline")
    fams = {}
    cur = None
    seen = set()
    for line in text.split("\n")[:-1]:
        if line.startswith("# HELP "):
            name, _, help_ = line[7:].partition(" ")
            h.check(name not in fams, "family %s announced twice" % name)
            fams[name] = {"help": help_, "type": None, "samples": []}
            cur = name
            continue
        if line.startswith("# TYPE "):
            name, _, typ = line[7:].partition(" ")
            h.eq(name, cur, "TYPE line follows its HELP line")
            h.check(typ in ("counter", "gauge", "histogram"), "type %r" % typ)
            fams[name]["type"] = typ
            continue
        h.check(not line.startswith("#"), "unexpected comment %r" % line)
        m = SAMPLE_RE.match(line)
        h.check(m is not None, "malformed sample line %r" % line)
        name, labels, value = m.group(1), parse_labels(m.group(2) or "", line), m.group(3)
        h.check(cur is not None and fams[cur]["type"] is not None,
                "sample before any TYPE: %r" % line)
        typ = fams[cur]["type"]
        if typ == "histogram":
            h.check(name in (cur + "_bucket", cur + "_sum", cur + "_count"),
                    "histogram sample %s in family %s" % (name, cur))
        else:
            h.eq(name, cur, "sample name in family %s" % cur)
        v = float(value)
        h.check(not math.isnan(v), "NaN in %r" % line)
        if typ == "counter" or name.endswith("_bucket") or name.endswith("_count"):
            h.check(v >= 0 and v == int(v), "counter value %r" % line)
        key = (name, tuple(sorted(labels.items())))
        h.check(key not in seen, "series twice: %r" % line)
        seen.add(key)
        fams[cur]["samples"].append((name, labels, v))
    for fam, f in fams.items():
        if f["type"] != "histogram":
            continue
        series = {}
        for name, labels, v in f["samples"]:
            base = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
            s = series.setdefault(base, {"buckets": [], "sum": None, "count": None})
            if name.endswith("_bucket"):
                s["buckets"].append((labels["le"], v))
            elif name.endswith("_sum"):
                s["sum"] = v
            else:
                s["count"] = v
        for base, s in series.items():
            les = [le for le, _ in s["buckets"]]
            h.check(les and les[-1] == "+Inf", "%s%s: last bucket is not +Inf" % (fam, base))
            bounds = [float(le) for le in les[:-1]]
            h.check(bounds == sorted(bounds) and len(set(bounds)) == len(bounds),
                    "%s%s: le not increasing" % (fam, base))
            counts = [v for _, v in s["buckets"]]
            h.check(all(a <= b for a, b in zip(counts, counts[1:])),
                    "%s%s: buckets not cumulative: %r" % (fam, base, counts))
            h.eq(counts[-1], s["count"], "%s%s: +Inf bucket vs _count" % (fam, base))
            h.check(s["sum"] is not None and s["sum"] >= 0, "%s%s: _sum" % (fam, base))
    return fams


def scrape(port):
    r = admin_get(port, "/metrics")
    h.status(r, 200, "GET /metrics")
    h.check(r.get("Content-Type", "").startswith("text/plain; version=0.0.4"),
            "/metrics Content-Type: %r" % r.get("Content-Type"))
    return parse_prom(r.body.decode("utf-8"))


def value(fams, family, name=None, **labels):
    """Sum of the samples of family (sample name `name`, default the family)
    whose labels include `labels`."""
    name = name or family
    f = fams.get(family)
    h.check(f is not None, "family %s missing from /metrics" % family)
    return sum(v for n, l, v in f["samples"]
               if n == name and all(l.get(k) == x for k, x in labels.items()))


def has_sample(fams, family, **labels):
    f = fams.get(family, {"samples": []})
    return any(all(l.get(k) == x for k, x in labels.items()) for _, l, _ in f["samples"])


def weirctl(admin_port, *args, timeout=20):
    argv = [weirctl_bin(), "--admin", "127.0.0.1:%d" % admin_port] + list(args)
    try:
        cp = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                            timeout=timeout)
    except subprocess.TimeoutExpired:
        h.fail("weirctl %s did not exit within %ds" % (" ".join(args), timeout))
    return cp.returncode, cp.stdout.decode("utf-8", "replace"), cp.stderr.decode("utf-8", "replace")


FAMILIES = {
    "weir_requests_total": "counter",
    "weir_request_duration_seconds": "histogram",
    "weir_upstream_connect_seconds": "histogram",
    "weir_upstream_response_seconds": "histogram",
    "weir_upstream_failures_total": "counter",
    "weir_upstream_server_usable": "gauge",
    "weir_upstream_connections_total": "counter",
    "weir_upstream_retries_total": "counter",
    "weir_agent_calls_total": "counter",
    "weir_agent_latency_seconds": "histogram",
    "weir_agent_timeouts_total": "counter",
    "weir_agent_failures_total": "counter",
    "weir_agent_blocks_total": "counter",
    "weir_agent_rule_blocks_total": "counter",
    "weir_agent_in_flight": "gauge",
    "weir_agent_links_up": "gauge",
    "weir_agent_breaker_open": "gauge",
    "weir_bytes_received_total": "counter",
    "weir_bytes_sent_total": "counter",
    "weir_connections_open": "gauge",
    "weir_connections_total": "counter",
    "weir_connections_refused_total": "counter",
    "weir_uring_submissions_total": "counter",
    "weir_uring_completions_total": "counter",
    "weir_uring_loop_iterations_total": "counter",
    "weir_uring_cq_overflows_total": "counter",
    "weir_uring_cq_overflow_iterations_total": "counter",
    "weir_uring_buffer_exhaustions_total": "counter",
    "weir_uring_buffers_in_use": "gauge",
    "weir_reactors": "gauge",
    "weir_config_generation": "gauge",
    "weir_start_time_seconds": "gauge",
}


# --------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------

def test_live(e):
    r = admin_get(e.admin, "/health/live")
    h.status(r, 200, "GET /health/live")
    h.eq(r.body, b"ok\n", "/health/live body")
    h.eq(r.get("Connection"), "close", "/health/live Connection")
    r = admin_get(e.admin, "/health/live", method="HEAD")
    h.status(r, 200, "HEAD /health/live")
    h.eq(r.body, b"", "HEAD /health/live body")
    h.eq(r.get("Content-Length"), "3", "HEAD /health/live Content-Length")


def test_not_on_public_listener(e):
    for path in ("/health/live", "/health", "/metrics", "/status"):
        r = h.request(e.port, "GET", path)
        h.status(r, 404, "GET %s on the public listener" % path)
        h.check(b"# TYPE" not in r.body and b"reactors" not in r.body,
                "admin content on the public listener for %s" % path)
    r = h.request(e.port, "POST", "/reload")
    h.status(r, 404, "POST /reload on the public listener")


def test_metrics_format(e):
    h.request(e.port, "GET", "/o/warm?size=10")
    fams = scrape(e.admin)
    for fam, typ in FAMILIES.items():
        h.check(fam in fams, "family %s missing" % fam)
        h.eq(fams[fam]["type"], typ, "type of %s" % fam)
        h.check(fams[fam]["help"], "%s has no HELP text" % fam)
    h.eq(value(fams, "weir_reactors"), 2, "weir_reactors")
    h.eq(value(fams, "weir_config_generation"), 1, "weir_config_generation")
    h.check(abs(value(fams, "weir_start_time_seconds") - time.time()) < 600,
            "weir_start_time_seconds is not about now")
    # every configured route and upstream has its histogram series
    for route in ("proxy", "hello", "_unmatched"):
        h.check(has_sample(fams, "weir_request_duration_seconds", route=route),
                "no duration series for route %s" % route)
    h.check(has_sample(fams, "weir_upstream_failures_total", upstream="app", reason="connect"),
            "no failure series for upstream app")
    h.eq(value(fams, "weir_upstream_server_usable", upstream="app", server=e.origin.addr), 1,
         "weir_upstream_server_usable for the origin")


def test_counters_move(e):
    before = scrape(e.admin)
    st0 = get_json(e.admin, "/status")
    for i in range(N):
        r = h.request(e.port, "GET", "/o/count?size=100&i=%d" % i)
        h.status(r, 200, "proxied request %d" % i)
    with h.Conn(e.port) as c:          # and N more on one keep-alive connection
        for i in range(N):
            h.status(c.request("GET", "/hello"), 200, "keep-alive request %d" % i)
    after = scrape(e.admin)
    st1 = get_json(e.admin, "/status")

    def delta(fam, name=None, **labels):
        return value(after, fam, name, **labels) - value(before, fam, name, **labels)

    # what reactor.c records itself
    h.eq(delta("weir_connections_total", peer="client"), N + 1, "client connections accepted")
    h.check(delta("weir_bytes_received_total", peer="client") > 2 * N * 30,
            "client bytes received moved by %d" % delta("weir_bytes_received_total", peer="client"))
    h.check(delta("weir_bytes_sent_total", peer="client") > N * 100,
            "client bytes sent moved by %d" % delta("weir_bytes_sent_total", peer="client"))
    h.check(delta("weir_bytes_sent_total", peer="upstream") > 0, "upstream bytes sent")
    h.check(delta("weir_bytes_received_total", peer="upstream") > N * 100,
            "upstream bytes received")
    for fam in ("weir_uring_completions_total", "weir_uring_loop_iterations_total",
                "weir_uring_submissions_total"):
        h.check(delta(fam) >= 2 * N, "%s moved by %d for %d requests" % (fam, delta(fam), 2 * N))
    # the last client's close reaches weir a moment after its response
    deadline = time.monotonic() + 5
    while value(after, "weir_connections_open", peer="client") != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
        after = scrape(e.admin)
    h.eq(value(after, "weir_connections_open", peer="client"), 0, "client connections open")
    h.check(value(after, "weir_connections_open", peer="upstream") >= 1,
            "upstream keep-alive connections open")
    h.eq(delta("weir_uring_buffer_exhaustions_total"), 0, "buffer ring exhaustions")
    # reactor stats (client.c / upstream.c), through /status and /metrics
    h.eq(st1["totals"]["requests"] - st0["totals"]["requests"], 2 * N, "/status requests delta")
    h.eq(st1["totals"]["responses"]["2xx"] - st0["totals"]["responses"]["2xx"], 2 * N,
         "/status 2xx delta")
    h.check(delta("weir_upstream_connections_total") >= N,
            "upstream connections (new + reused) moved by %d" % delta("weir_upstream_connections_total"))
    # per-route counters (client.c)
    h.eq(delta("weir_requests_total", route="proxy", method="GET", status_class="2xx"), N,
         "weir_requests_total{route=proxy,GET,2xx}")
    h.eq(delta("weir_requests_total", route="hello", method="GET", status_class="2xx"), N,
         "weir_requests_total{route=hello,GET,2xx}")
    h.eq(delta("weir_request_duration_seconds", "weir_request_duration_seconds_count",
               route="proxy"), N, "request duration count for route proxy")


def test_status(e):
    st = get_json(e.admin, "/status")
    h.eq(st["generation"], 1, "generation")
    h.eq(st["pid"], e.weir.proc.pid, "pid")
    h.check(st["uptime_seconds"] > 0, "uptime_seconds > 0")
    h.eq(st["admin"], "127.0.0.1:%d" % e.admin, "admin address")
    h.check(st["config"].endswith(".yaml"), "config source %r" % st["config"])
    h.check(re.match(r"^\d+\.\d+\.\d+", st["version"]) is not None, "version %r" % st["version"])
    h.eq(len(st["reactors"]), 2, "reactors")
    for i, r in enumerate(st["reactors"]):
        h.eq(r["id"], i, "reactor id")
        h.eq(r["state"], "running", "reactor %d state" % i)
        for k in ("loops", "completions", "submissions", "cq_overflows", "buffers_in_use",
                  "buffer_exhaustions", "accepted", "requests", "bytes_received"):
            h.check(isinstance(r[k], int) and r[k] >= 0, "reactor %d %s = %r" % (i, k, r[k]))
        h.check(r["loops"] > 0, "reactor %d has looped" % i)
    h.eq(sum(r["requests"] for r in st["reactors"]), st["totals"]["requests"],
         "per-reactor requests add up to the total")
    t0 = st["uptime_seconds"]
    time.sleep(0.2)
    h.check(get_json(e.admin, "/status")["uptime_seconds"] > t0, "uptime grows")


def test_health(e):
    h.request(e.port, "GET", "/o/health?size=1")
    hl = get_json(e.admin, "/health")
    h.eq(hl["status"], "ok", "/health status")
    h.eq([r["state"] for r in hl["reactors"]], ["running", "running"], "reactor states")
    h.eq(len(hl["upstreams"]), 1, "upstreams")
    u = hl["upstreams"][0]
    h.eq(u["name"], "app", "upstream name")
    h.eq(u["state"], "up", "upstream state")
    h.eq(u["servers"][0]["address"], e.origin.addr, "server address")
    h.eq(u["servers"][0]["state"], "up", "server state")
    h.eq(hl["agents"], [], "agents")


def test_health_down_and_recovery(e):
    """A second weir whose only upstream does not listen: 503 once it failed,
    200 again after the server answers."""
    dead = h.free_port()
    admin = h.free_port()
    cfg = admin_config("{port}", admin, {"solo": {"servers": ["127.0.0.1:%d" % dead],
                                                  "connect_timeout": "1s"}},
                       ["{name: all, path_prefix: /, upstream: solo}"], workers=1)
    w = h.start_weir(cfg)
    h.wait_accepting(admin, w.proc)
    hl = get_json(admin, "/health")
    h.eq(hl["upstreams"][0]["servers"][0]["state"], "unknown", "server state before any request")
    h.eq(hl["status"], "ok", "status before any request")
    r = h.request(w.port, "GET", "/x")
    h.status(r, 502, "request to a dead upstream")
    hl = get_json(admin, "/health", expect=503)
    h.eq(hl["status"], "down", "/health status with the only upstream down")
    h.eq(hl["upstreams"][0]["state"], "down", "upstream state")
    h.eq(hl["upstreams"][0]["servers"][0]["state"], "down", "server state")
    h.check(hl["upstreams"][0]["servers"][0]["failures"] >= 1, "server failures")
    fams = scrape(admin)
    h.check(value(fams, "weir_upstream_failures_total", upstream="solo", reason="connect") >= 1,
            "weir_upstream_failures_total{reason=connect}")
    h.eq(value(fams, "weir_upstream_server_usable", upstream="solo"), 0, "server usable gauge")
    rc, out, err = weirctl(admin, "health")
    h.eq(rc, 1, "weirctl health exit status when down (stdout %r, stderr %r)" % (out, err))
    h.check("down" in out, "weirctl health output: %r" % out)
    # the server comes up: the next exchange marks it usable again
    origin = h.start_origin(port=dead)
    r = h.request(w.port, "GET", "/o/back?size=3")
    h.status(r, 200, "request after the upstream came back")
    hl = get_json(admin, "/health")
    h.eq(hl["status"], "ok", "/health after recovery")
    h.eq(hl["upstreams"][0]["servers"][0]["state"], "up", "server state after recovery")
    h.eq(w.proc.stop(), 0, "second weir exit status")
    origin.proc.stop()


def test_admin_http(e):
    r = admin_get(e.admin, "/nothing")
    h.status(r, 404, "unknown admin path")
    r = h.request(e.admin, "POST", "/metrics", body=b"x")
    h.status(r, 405, "POST /metrics")
    h.eq(r.get("Allow"), "GET, HEAD", "Allow")
    r = h.request(e.admin, "GET", "/reload")
    h.status(r, 405, "GET /reload")
    r = h.request(e.admin, "POST", "/reload")
    h.status(r, 202, "POST /reload")
    h.check(b'"generation"' in r.body, "POST /reload body: %r" % r.body)
    r = admin_get(e.admin, "/metrics?name[]=x")
    h.status(r, 200, "query string ignored")
    # a head over 8 KiB
    with h.Conn(e.admin) as c:
        c.send(b"GET /metrics HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n")
        r = c.read_response()
        h.status(r, 431, "admin head over 8 KiB")
    # a broken request line
    with h.Conn(e.admin) as c:
        c.send(b"GARBAGE\r\n\r\n")
        h.status(c.read_response(), 400, "garbage request")


def test_admin_concurrency_and_timeout(e):
    # idle connections (slowloris) do not stop the admin from answering:
    # up to 8 are served at once, the rest wait in the backlog
    idle = [socket.create_connection(("127.0.0.1", e.admin)) for _ in range(7)]
    try:
        for s in idle:
            s.sendall(b"GET /health/live HTTP/1.1\r\n")      # never finished
        t0 = time.monotonic()
        r = admin_get(e.admin, "/health/live")
        h.status(r, 200, "/health/live with 7 idle admin connections")
        h.check(time.monotonic() - t0 < 2, "answered at once next to idle connections")
        # the eighth slot taken too: a ninth connection waits, then is served
        # when the idle ones time out (WEIR_ADMIN_TIMEOUT_MS, 5 s)
        extra = socket.create_connection(("127.0.0.1", e.admin))
        extra.sendall(b"GET /health/live HTTP/1.1\r\n")
        t0 = time.monotonic()
        r = h.request(e.admin, "GET", "/health/live", timeout=12)
        waited = time.monotonic() - t0
        h.status(r, 200, "/health/live once a slot freed")
        h.check(waited > 2, "the ninth connection waited for a slot (%.1fs)" % waited)
        # the idle ones were closed by the admin's timeout
        for s in idle + [extra]:
            s.settimeout(8)
            try:
                data = s.recv(100)
            except ConnectionResetError:
                data = b""
            h.eq(data, b"", "idle admin connection closed by the timeout")
    finally:
        for s in idle:
            s.close()
    h.check(e.weir.alive(), "weir alive")


def test_admin_address_taken(e):
    """An admin address from a config file that cannot be bound stops weir
    at start (exit 1) instead of running without it."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    try:
        cfg = admin_config("{port}", holder.getsockname()[1],
                           {"app": {"servers": [e.origin.addr]}},
                           ["{path_prefix: /, upstream: app}"], workers=1)
        w = h.start_weir(cfg, wait=False)
        rc = w.proc.wait(15)
        h.eq(rc, 1, "weir exit status with its admin address taken")
        h.check("admin: cannot listen on 127.0.0.1:%d" % holder.getsockname()[1]
                in w.proc.stderr(), "weir's message: %r" % w.proc.stderr())
    finally:
        holder.close()


def test_weirctl(e):
    rc, out, err = weirctl(e.admin, "status")
    h.eq(rc, 0, "weirctl status exit status (stderr %r)" % err)
    # generation 1, or 2 after test_admin_http's POST /reload
    h.check(re.search(r"\(generation [12]\)", out) is not None and
            "pid %d" % e.weir.proc.pid in out,
            "weirctl status output: %r" % out)
    h.check(re.search(r"^1\s+\S+\s+running", out, re.M) is not None,
            "weirctl status shows reactor 1: %r" % out)
    rc, out, err = weirctl(e.admin, "health")
    h.eq(rc, 0, "weirctl health exit status (stderr %r)" % err)
    h.check(out.startswith("ok (HTTP 200)") and "upstream app: up" in out,
            "weirctl health output: %r" % out)
    rc, out, err = weirctl(e.admin, "metrics")
    h.eq(rc, 0, "weirctl metrics exit status (stderr %r)" % err)
    h.check(re.search(r"connections\s+accepted [1-9]\d*, refused 0", out) is not None,
            "weirctl metrics output: %r" % out)
    h.check(re.search(r"io_uring\s+loops [1-9]", out) is not None, "weirctl metrics io_uring: %r" % out)
    rc, out, err = weirctl(e.admin, "agents")
    h.eq(rc, 0, "weirctl agents exit status (stderr %r)" % err)
    h.check("no agents configured" in out, "weirctl agents output: %r" % out)
    rc, out, err = weirctl(e.admin, "get", "/metrics")
    h.eq(rc, 0, "weirctl get /metrics exit status")
    parse_prom(out)
    rc, out, err = weirctl(e.admin, "reload")
    h.eq(rc, 0, "weirctl reload exit status (stderr %r)" % err)
    h.check("reloaded: configuration generation" in out, "weirctl reload message: %r" % out)
    rc, out, err = weirctl(h.free_port(), "status")
    h.eq(rc, 1, "weirctl against nothing: exit status")
    h.check("cannot reach the admin listener" in err, "weirctl unreachable message: %r" % err)
    rc, out, err = weirctl(e.admin, "frobnicate")
    h.eq(rc, 2, "weirctl unknown command: exit status")


def test_clean_stop(e):
    h.eq(e.weir.proc.stop(timeout=15), 0, "weir exit status after SIGTERM")
    h.check("stopped" in e.weir.proc.stderr(), "weir logged 'stopped'")
    try:
        socket.create_connection(("127.0.0.1", e.admin), timeout=1).close()
        h.fail("the admin listener still accepts after weir stopped")
    except OSError:
        pass


if __name__ == "__main__":
    h.main([test_live, test_not_on_public_listener, test_metrics_format, test_counters_move,
            test_status, test_health, test_health_down_and_recovery, test_admin_http,
            test_admin_concurrency_and_timeout, test_admin_address_taken, test_weirctl,
            test_clean_stop],
           setup=setup)
