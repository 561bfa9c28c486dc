#!/usr/bin/env python3
"""Hot reload (SIGHUP) and the access log, through the real binaries.

- constant load through 20 reloads that add and remove routes, upstreams and a
  listener: every request answered, none failed
- a request in flight when its route and upstream are removed finishes on the
  configuration it started with
- a bad config is refused with file:line:column and the old one keeps serving
- listeners: an added address serves, a removed one stops accepting
- access log: JSON lines with the fields operators need; combined format;
  SIGUSR1 reopens the file after rotation; a reload changes the format
"""
import json
import os
import re
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


def wait_for(pred, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise h.TestFailure("timed out waiting for " + what)


def config(port, origins, extra_routes=(), extra_listen=None, log=None, log_format="json"):
    lines = ["workers: 2", "listen:", "  - address: 127.0.0.1:%d" % port]
    if extra_listen:
        lines.append("  - address: 127.0.0.1:%d" % extra_listen)
    if log:
        lines += ["access_log:", "  path: %s" % log, "  format: %s" % log_format,
                  "  flush: 50ms"]
    lines.append("upstreams:")
    for name, o in origins.items():
        lines += ["  %s:" % name, "    servers: [%s]" % o.addr, "    keepalive: 16"]
    lines.append("routes:")
    lines.append("  - {name: stable, path_prefix: /stable/, upstream: app}")
    lines.append("  - {name: local, path: /local, return: {status: 200, body: \"local\\n\"}}")
    for r in extra_routes:
        lines.append("  - " + r)
    return "\n".join(lines) + "\n"


def reloaded(w, n, timeout=10.0, refusals=0):
    """Wait for the n-th 'is live' line (or one more refusal) in weir's stderr."""
    def done():
        err = w.proc.stderr()
        return err.count("reload: configuration") >= n or err.count("reload refused") > refusals
    wait_for(done, "reload %d" % n, timeout)
    err = w.proc.stderr()
    if err.count("reload: configuration") < n:
        raise h.TestFailure("reload %d refused: %s" % (n, err[-2000:]))


def load_worker(port, stop, stats, idx):
    """Keep-alive requests, and now and then a fresh connection."""
    conn = None
    i = 0
    while not stop.is_set():
        i += 1
        try:
            if conn is None or i % 25 == 0:
                if conn is not None:
                    conn.close()
                conn = h.Conn(port)
            target = "/stable/%d-%d" % (idx, i) if i % 5 else "/local"
            conn.send(h.build_request("GET", target))
            r = conn.read_response()
            want = b"local\n" if target == "/local" else None
            if r.status != 200 or (want is not None and r.body != want):
                stats["bad"].append((target, r.status, r.body[:100]))
            else:
                stats["ok"] += 1
            if r.get("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except Exception as ex:  # noqa: BLE001 - every failure counts
            stats["bad"].append((target, "exception", repr(ex)))
            if conn is not None:
                conn.close()
            conn = None
    if conn is not None:
        conn.close()


def test_reload_under_load(origins):
    port = h.free_port()
    extra = h.free_port()
    w = h.start_weir(config(port, origins), port=port)
    path = w.config_path
    stop = threading.Event()
    stats = {"ok": 0, "bad": []}
    threads = [threading.Thread(target=load_worker, args=(port, stop, stats, k)) for k in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        for n in range(1, 21):
            routes, ups, listen = [], {"app": origins["app"]}, None
            if n % 2:   # add a route and an upstream
                ups["other%d" % n] = origins["other"]
                routes.append("{name: extra%d, path_prefix: /extra/, upstream: other%d}" % (n, n))
            if n % 4 == 1:  # and a listener
                listen = extra
            if n % 3 == 0:  # the stable upstream under a new definition (timeouts)
                ups = dict(ups)
            with open(path, "w") as f:
                f.write(config(port, ups, routes, listen))
            w.proc.signal(signal.SIGHUP)
            reloaded(w, n)
            if n % 2:
                r = h.request(port, "GET", "/extra/x")
                h.status(r, 200, "route added by reload %d" % n)
            else:
                r = h.request(port, "GET", "/extra/x")
                h.status(r, 404, "route removed by reload %d" % n)
            if listen:
                r = h.request(extra, "GET", "/local")
                h.status(r, 200, "listener added by reload %d" % n)
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    h.check(not stats["bad"], "failed requests during 20 reloads: %d, e.g. %r" %
            (len(stats["bad"]), stats["bad"][:5]))
    h.check(stats["ok"] > 200, "requests during the reloads: %d" % stats["ok"])
    # the last config has no extra listener: it no longer accepts
    with open(path, "w") as f:
        f.write(config(port, {"app": origins["app"]}))
    w.proc.signal(signal.SIGHUP)
    reloaded(w, 21)
    refused = False
    try:
        socket.create_connection(("127.0.0.1", extra), timeout=2).close()
    except OSError:
        refused = True
    h.check(refused, "the removed listener still accepts connections")
    w.check_alive("20 reloads")
    print("reload under load: %d requests, 0 failed, 21 reloads" % stats["ok"])
    h.eq(w.proc.stop(), 0, "weir exit status")


def test_inflight_keeps_old_config(origins):
    port = h.free_port()
    slow = origins["other"]
    w = h.start_weir(config(port, {"app": origins["app"], "slow": slow},
                            ["{name: slow, path_prefix: /slow/, upstream: slow}"]), port=port)
    result = {}

    def slow_request():
        # the origin holds the response 1.5 s (delay=, see weir-origin)
        result["r"] = h.request(port, "GET", "/slow/x?delay=1500", timeout=10)

    t = threading.Thread(target=slow_request)
    t.start()
    time.sleep(0.4)
    with open(w.config_path, "w") as f:
        f.write(config(port, {"app": origins["app"]}))
    w.proc.signal(signal.SIGHUP)
    reloaded(w, 1)
    r = h.request(port, "GET", "/slow/y")
    h.status(r, 404, "route gone after the reload")
    t.join(15)
    h.check("r" in result, "the in-flight request got no response")
    h.status(result["r"], 200, "in-flight request across the reload")
    h.eq(w.proc.stop(), 0, "weir exit status")


def test_bad_config_refused(origins):
    port = h.free_port()
    w = h.start_weir(config(port, {"app": origins["app"]}), port=port)
    with open(w.config_path, "w") as f:
        f.write(config(port, {"app": origins["app"]}) + "  - {path: /x, upstream: nowhere}\n")
    w.proc.signal(signal.SIGHUP)
    wait_for(lambda: "reload refused" in w.proc.stderr(), "the refusal")
    err = w.proc.stderr()
    h.check(re.search(r"reload refused, configuration 1 keeps serving: .*weir-\d+\.yaml:\d+:\d+: "
                      r".*nowhere", err) is not None, "refusal message: %r" % err[-600:])
    r = h.request(port, "GET", "/local")
    h.status(r, 200, "old config after a refused reload")
    r = h.request(port, "GET", "/stable/a")
    h.status(r, 200, "old upstream after a refused reload")
    # a good one afterwards applies
    with open(w.config_path, "w") as f:
        f.write(config(port, {"app": origins["app"]},
                       ["{name: new, path: /new, return: {status: 201}}"]))
    w.proc.signal(signal.SIGHUP)
    reloaded(w, 1, refusals=1)
    h.status(h.request(port, "GET", "/new"), 201, "route of the good reload")
    h.eq(w.proc.stop(), 0, "weir exit status")


def read_lines(path, n, what):
    def got():
        try:
            with open(path) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return None
        return lines if len(lines) >= n else None
    return wait_for(got, "%d access log lines in %s (%s)" % (n, path, what))


def test_access_log(origins):
    port = h.free_port()
    d = h.tmpdir()
    log = os.path.join(d, "access.log")
    w = h.start_weir(config(port, {"app": origins["app"]}, log=log), port=port)
    r = h.request(port, "GET", "/stable/q?a=1", headers=[("User-Agent", 'ua"/1 \\x'),
                                                        ("Referer", "http://r/")])
    h.status(r, 200, "proxied request")
    h.status(h.request(port, "GET", "/nothing"), 404, "unrouted request")
    h.status(h.request(port, "POST", "/local", body=b"x" * 1000), 200, "local with a body")
    lines = read_lines(log, 3, "three requests")
    # every line is valid JSON; reactors flush their own buffers, so lines
    # of different reactors may come in any order
    recs = {}
    for line in lines:
        rec = json.loads(line)
        recs[rec["target"]] = rec
    a, b, c = recs["/stable/q?a=1"], recs["/nothing"], recs["/local"]
    h.eq(a["method"], "GET", "method")
    h.eq(a["target"], "/stable/q?a=1", "target")
    h.eq(a["status"], 200, "status")
    h.eq(a["route"], "stable", "route")
    h.eq(a["upstream"], origins["app"].addr, "upstream")
    h.check(isinstance(a["upstream_time"], float) and a["upstream_time"] >= 0, "upstream_time")
    h.eq(a["bytes"], len(r.body), "bytes = response body length")
    h.eq(a["user_agent"], 'ua"/1 \\x', "user agent, escaped and read back")
    h.eq(a["referer"], "http://r/", "referer")
    h.check(a["client"].startswith("127.0.0.1:"), "client %r" % a["client"])
    h.check(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", a["time"]) is not None,
            "time %r" % a["time"])
    h.check(a["request_id"] and a["request_id"] != b["request_id"], "request ids differ")
    h.eq(b["status"], 404, "404 logged")
    h.eq(b["route"], None, "no route")
    h.eq(b["upstream"], None, "no upstream")
    h.eq(c["request_bytes"], 1000, "request body bytes")

    # rotation: move the file away, SIGUSR1, new lines go to a new file
    os.rename(log, log + ".1")
    w.proc.signal(signal.SIGUSR1)
    time.sleep(0.3)
    h.status(h.request(port, "GET", "/local"), 200, "after SIGUSR1")
    new = read_lines(log, 1, "after reopen")
    h.eq(json.loads(new[0])["target"], "/local", "line in the reopened file")
    with open(log + ".1") as f:
        h.eq(len(f.read().splitlines()), 3, "the rotated file kept its lines")

    # a reload switches to the combined format
    with open(w.config_path, "w") as f:
        f.write(config(port, {"app": origins["app"]}, log=log, log_format="combined"))
    w.proc.signal(signal.SIGHUP)
    reloaded(w, 1)
    h.status(h.request(port, "GET", "/stable/c", headers=[("User-Agent", "curl/8")]), 200, "c")
    lines = read_lines(log, 2, "combined")
    h.check(any(re.match(r'^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] '
                         r'"GET /stable/c HTTP/1\.1" 200 \d+ "-" "curl/8"$', x) for x in lines),
            "combined line in %r" % lines)
    # lines still buffered at exit are written
    h.status(h.request(port, "GET", "/local"), 200, "last")
    h.eq(w.proc.stop(), 0, "weir exit status")
    lines = read_lines(log, 3, "at exit")
    h.check(any('"GET /local HTTP/1.1" 200' in x for x in lines), "last line in %r" % lines)


def setup():
    return {"app": h.start_origin(), "other": h.start_origin()}


if __name__ == "__main__":
    h.main([test_access_log, test_bad_config_refused, test_inflight_keeps_old_config,
            test_reload_under_load], setup=setup)
