#!/usr/bin/env python3
"""The same agent assertions over three transports: the Python test agent
on a socket (python-socket), the C test agent on libweir-agent over the
socket (c-socket, --no-shm) and over shared memory (c-shm, uapi/weir/ring.h).

Per transport: body integrity (SHA-256 at the origin and, for the agent,
from the agent itself) for 0 B - 8 MiB bodies, Content-Length and chunked,
body_mode buffer and stream; verdicts (allow, block with status and body,
delay, a held request running into the agent timeout); an agent killed with
requests in flight (failure outcome, every buffer given back, weir serves
on, and again once the agent is back). That shm was really used (or not) is
checked from weir's metrics. Then hostile shm agents (tests/agent/
shm_hostile.py) write garbage into the agent -> weir ring: weir drops the
connection, applies the failure mode, and keeps serving."""

import os
import signal
import sys
import time

sys.dont_write_bytecode = True
import harness as h  # noqa: E402
sys.path.insert(0, os.path.join(h.REPO, "tests", "agent"))
import agent_it as ai  # noqa: E402

MiB = 1 << 20
SIZES = [0, 1, 1000, 16384, 70000, MiB, 8 * MiB]
C_AGENT = os.environ.get("C_AGENT_BIN")
HOSTILE = os.path.join(h.REPO, "tests", "agent", "shm_hostile.py")


class CAgent:
    def __init__(self, name, shm):
        self.name = name
        self.shm = shm
        self.unix = os.path.join(h.tmpdir(), "%s.sock" % name)
        self.proc = None

    def start(self):
        argv = [C_AGENT, "--listen", "unix:" + self.unix] + ([] if self.shm else ["--no-shm"])
        self.proc = h.Proc("c-agent-" + self.name, argv)
        deadline = time.monotonic() + 10
        while "ready" not in self.proc.stdout():
            if not self.proc.alive() or time.monotonic() > deadline:
                raise h.TestFailure("c-test-agent did not start: %s" % self.proc.describe())
            time.sleep(0.02)
        return self

    def kill(self):
        self.proc.signal(signal.SIGKILL)
        self.proc.wait(5)


def agent_metric(e, name, agent):
    return h.agent_metric(e.admin, name, agent)


def agent_metric_wait(e, name, agent):
    """agent_metric while the admin listener may still be starting"""
    try:
        return agent_metric(e, name, agent)
    except OSError:
        return 0


class Env:
    pass


def start(kind):
    e = Env()
    e.kind = kind
    e.origin = h.start_origin()
    if kind == "python-socket":
        e.agent = ai.start_agent("py", events="request_headers,request_body")
        e.unix = e.agent.unix
    else:
        if C_AGENT is None:
            raise h.Skip("C_AGENT_BIN not set (meson sets it)")
        e.agent = CAgent(kind, kind == "c-shm").start()
        e.unix = e.agent.unix
    e.admin = h.free_port()
    agents = {
        "buf": {"socket": e.unix, "timeout": "2s", "max_body": "16m", "body_mode": "buffer",
                "reconnect_max": "100ms"},
        "str": {"socket": e.unix, "timeout": "2s", "max_body": "16m", "body_mode": "stream",
                "reconnect_max": "100ms"},
        "short": {"socket": e.unix, "timeout": "300ms", "body_mode": "buffer",
                  "reconnect_max": "100ms"},
    }
    routes = ["{path_prefix: /buf/, upstream: app, agents: [buf]}",
              "{path_prefix: /str/, upstream: app, agents: [str]}",
              "{path_prefix: /short/, upstream: app, agents: [short]}",
              "{path_prefix: /plain/, upstream: app}"]
    cfg = ai.config(e.origin, agents, routes, top={"admin": "{address: 127.0.0.1:%d}" % e.admin})
    e.weir = h.start_weir(cfg)
    wait_links(e, 3)
    return e


def wait_links(e, n, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        up = sum(agent_metric_wait(e, "weir_agent_links_up", a) for a in ("buf", "str", "short"))
        if up >= n:
            return
        if time.monotonic() > deadline:
            raise h.TestFailure("%s: %d of %d agent links up" % (e.kind, up, n))
        time.sleep(0.05)


def stop(e):
    for p in (e.weir.proc, e.agent.proc, e.origin.proc):
        try:
            p.stop()
        except Exception:
            pass


def body_of(n):
    return h.rand_bytes(n, seed=n + 7)


def check_bodies(e):
    for route in ("buf", "str"):
        for chunked in (False, True):
            for n in SIZES:
                body = body_of(n)
                what = "%s: %s %s %d B" % (e.kind, route, "chunked" if chunked else "CL", n)
                tag = "t-%s-%d-%d" % (route, chunked, n)
                r = h.request(e.weir.port, "POST", "/%s/x" % route, body=body, chunked=chunked,
                              chunk_sizes=[100000, 4096, 1, 65535, 300000],
                              headers=[("X-Test-Id", tag)], timeout=60)
                h.status(r, 200, what)
                h.eq(r.get("X-Request-Sha256"), h.sha256(body), what + ": SHA-256 at the origin")
                if e.kind == "python-socket":
                    rec = e.agent.wait_tag(tag)
                    h.eq(rec["body_bytes"], n, what + ": bytes the agent saw")
                    h.eq(rec["body_sha256"], h.sha256(body), what + ": SHA-256 the agent saw")
                elif n != 0 or chunked:
                    h.eq(r.get("X-Agent-Body-Bytes"), str(n), what + ": bytes the agent saw")
                    h.eq(r.get("X-Agent-Body-Sha256"), h.sha256(body),
                         what + ": SHA-256 the agent saw")
                    if n >= 70000:
                        h.eq(r.get("X-Agent-Transport"), "shm" if e.kind == "c-shm" else "socket",
                             what + ": transport the body came through")


def check_verdicts(e):
    r = h.request(e.weir.port, "GET", "/buf/v", headers=ai.hdrs(action="block", status=451,
                                                                body="no entry"))
    h.status(r, 451, e.kind + ": block status")
    h.check(b"no entry" in r.body, e.kind + ": block body")
    body = body_of(50000)
    r = h.request(e.weir.port, "POST", "/buf/v", body=body,
                  headers=ai.hdrs(action="block", status=403))
    h.status(r, 403, e.kind + ": block after the body")
    r = h.request(e.weir.port, "POST", "/str/v", body=body, headers=ai.hdrs(delay_ms=50))
    h.status(r, 200, e.kind + ": delayed allow")
    h.eq(r.get("X-Request-Sha256"), h.sha256(body), e.kind + ": delayed allow body")
    r = h.request(e.weir.port, "POST", "/short/v", body=body, headers=ai.hdrs(action="stall"))
    h.status(r, 504, e.kind + ": held past the agent timeout")


def check_transport(e):
    shm_links = sum(agent_metric(e, "weir_agent_shm_links_up", a) for a in ("buf", "str"))
    shm_bytes = sum(agent_metric(e, "weir_agent_shm_body_bytes_total", a)
                    for a in ("buf", "str"))
    if e.kind == "c-shm":
        h.check(shm_links >= 2, "c-shm: shm links up: %r" % shm_links)
        h.check(shm_bytes >= 8 * MiB, "c-shm: body bytes by shm reference: %r" % shm_bytes)
    else:
        h.eq(shm_links, 0, e.kind + ": shm links")
        h.eq(shm_bytes, 0, e.kind + ": shm body bytes")


def bufs_in_use(e):
    return h.metrics(e.admin).get(("weir_uring_buffers_in_use", ""), -1)


def check_agent_killed(e):
    """Requests held by the agent when it dies: 503 (failure closed); every
    buffer comes back; weir serves on; with the agent back, inspection too."""
    import threading
    results = []
    body = body_of(2 * MiB)

    def one():
        try:
            results.append(h.request(e.weir.port, "POST", "/buf/k", body=body,
                                     headers=ai.hdrs(action="stall"), timeout=20).status)
        except Exception as ex:      # noqa: BLE001
            results.append(repr(ex))
    ts = [threading.Thread(target=one) for _ in range(3)]
    for t in ts:
        t.start()
    time.sleep(0.7)
    e.agent.kill()
    for t in ts:
        t.join(30)
    h.eq(sorted(results), [503, 503, 503], e.kind + ": held requests when the agent died")
    deadline = time.monotonic() + 5
    while bufs_in_use(e) > 16 and time.monotonic() < deadline:
        time.sleep(0.05)
    h.check(bufs_in_use(e) <= 16, "%s: buffers still held after the agent died: %r" %
            (e.kind, bufs_in_use(e)))
    r = h.request(e.weir.port, "GET", "/plain/x")
    h.status(r, 200, e.kind + ": weir serves on")
    e.agent.start()
    wait_links(e, 3)
    body = body_of(200000)
    r = h.request(e.weir.port, "POST", "/buf/again", body=body)
    h.status(r, 200, e.kind + ": inspected again after the agent came back")
    h.eq(r.get("X-Request-Sha256"), h.sha256(body), e.kind + ": body after the restart")


def check_reload(e):
    """A reload that keeps the agents' address and connections keeps their
    connections (no new handshake), even with other settings and routes
    changed; requests through the agent during it all succeed; a reload that
    changes `connections` connects anew and requests go on succeeding."""
    import threading
    before = e.weir.proc.stderr().count("connected to")
    path = e.weir.config_path
    with open(path) as f:
        text = f.read()
    stop_ev = threading.Event()
    bad, ok = [], [0]

    def load():
        while not stop_ev.is_set():
            try:
                body = body_of(20000)
                r = h.request(e.weir.port, "POST", "/buf/r", body=body, timeout=10)
                if r.status != 200 or r.get("X-Request-Sha256") != h.sha256(body):
                    bad.append(r.status)
                else:
                    ok[0] += 1
            except Exception as ex:  # noqa: BLE001 - every failure counts
                bad.append(repr(ex))

    th = threading.Thread(target=load)
    th.start()
    try:
        new = text.replace('timeout: 300ms', 'timeout: 400ms') + \
            "  - {path_prefix: /extra/, upstream: app}\n"
        with open(path, "w") as f:
            f.write(new)
        e.weir.proc.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while e.weir.proc.stderr().count("is live") < 1:
            h.check(time.monotonic() < deadline and "reload refused" not in
                    e.weir.proc.stderr(), "%s: reload 1: %s" % (e.kind, e.weir.proc.stderr()[-800:]))
            time.sleep(0.05)
        time.sleep(0.5)
        h.status(h.request(e.weir.port, "GET", "/extra/x"), 200, e.kind + ": route of the reload")
        h.eq(e.weir.proc.stderr().count("connected to"), before,
             e.kind + ": agent connections after a reload that keeps the agents")
        with open(path, "w") as f:
            f.write(new.replace('timeout: 400ms', 'timeout: 400ms\n    connections: 2'))
        e.weir.proc.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while e.weir.proc.stderr().count("is live") < 2:
            h.check(time.monotonic() < deadline, e.kind + ": reload 2")
            time.sleep(0.05)
        deadline = time.monotonic() + 10
        while e.weir.proc.stderr().count("connected to") < before + 2:
            h.check(time.monotonic() < deadline, e.kind + ": the changed agent connected anew")
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        stop_ev.set()
        th.join(30)
    h.check(not bad, "%s: requests failed across reloads: %r" % (e.kind, bad[:5]))
    h.check(ok[0] > 5, "%s: requests during the reloads: %d" % (e.kind, ok[0]))


def run_kind(kind):
    def t(_env):
        e = start(kind)
        try:
            check_bodies(e)
            check_verdicts(e)
            check_transport(e)
            check_reload(e)
            check_agent_killed(e)
            e.weir.check_alive(kind)
        finally:
            stop(e)
    t.__name__ = "test_" + kind.replace("-", "_")
    return t


def test_hostile_shm(_env):
    origin = h.start_origin()
    for mode in ("huge-prod", "bad-record", "release-oob", "release-unheld", "two-frames"):
        unix = os.path.join(h.tmpdir(), "hostile-%s.sock" % mode)
        p = h.Proc("hostile-" + mode, [sys.executable, HOSTILE, "--unix", unix, "--mode", mode])
        deadline = time.monotonic() + 10
        while "ready" not in p.stdout():
            h.check(p.alive() and time.monotonic() < deadline, "hostile agent start")
            time.sleep(0.02)
        admin = h.free_port()
        cfg = ai.config(origin, {"evil": {"socket": unix, "timeout": "2s"}},
                        ["{path_prefix: /a/, upstream: app, agents: [evil]}",
                         "{path_prefix: /plain/, upstream: app}"],
                        top={"admin": "{address: 127.0.0.1:%d}" % admin})
        w = h.start_weir(cfg)
        e = Env()
        e.admin = admin
        deadline = time.monotonic() + 10
        while agent_metric_wait(e, "weir_agent_shm_links_up", "evil") < 1:
            h.check(time.monotonic() < deadline, mode + ": the hostile agent got shm")
            time.sleep(0.05)
        r = h.request(w.port, "GET", "/a/x", timeout=10)
        h.status(r, 503, mode + ": failure closed once the agent broke the ring")
        h.eq(agent_metric(e, "weir_agent_timeouts_total", "evil"), 0,
             mode + ": dropped at once, not by the timeout")
        h.check("shm" in w.proc.stderr() or "RELEASE" in w.proc.stderr(),
                mode + ": weir logged the shm violation: " + w.proc.stderr()[-500:])
        r = h.request(w.port, "GET", "/plain/x")
        h.status(r, 200, mode + ": weir serves on")
        w.check_alive(mode)
        w.proc.stop()
        p.kill()


if __name__ == "__main__":
    h.main([run_kind("python-socket"), run_kind("c-socket"), run_kind("c-shm"),
            test_hostile_shm])
