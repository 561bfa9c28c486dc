"""Helpers for the agent integration tests (tests/integration/test_agent_*.py):
start tests/agent/test_agent.py under a Python that has msgpack, read its log,
write weir configurations with `agents:`, and run many requests at once.

    import harness as h
    import agent_it as ai          # after sys.path.insert(0, ai_dir)

    a = ai.start_agent("waf", events="request_headers,request_body")
    cfg = ai.config(origin, {"waf": {"socket": a.unix, "timeout": "2s"}},
                    ["{path_prefix: /a/, upstream: app, agents: [waf]}"])
"""

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time

import harness as h

HERE = os.path.dirname(os.path.abspath(__file__))
AGENT = os.path.join(HERE, "test_agent.py")

_python = []


def agent_python():
    """An interpreter that can import msgpack: $WEIR_AGENT_PYTHON if set (and
    only it), else /usr/bin/python3 (Debian's python3-msgpack), this one,
    python3 on PATH. Raises h.Skip when none can."""
    if _python:
        return _python[0]
    tried = []
    env = os.environ.get("WEIR_AGENT_PYTHON")
    for cand in ([env] if env else ["/usr/bin/python3", sys.executable, "python3"]):
        if not cand or cand in tried:
            continue
        tried.append(cand)
        try:
            rc = subprocess.run([cand, "-c", "import msgpack"], capture_output=True,
                                timeout=20).returncode
        except (OSError, subprocess.TimeoutExpired):
            continue
        if rc == 0:
            _python.append(cand)
            return cand
    raise h.Skip("no Python interpreter with msgpack for the test agent (tried %s; "
                 "install python3-msgpack)" % ", ".join(tried))


class AgentProc:
    """One test_agent.py process. unix: socket path (default: a fresh one)."""

    def __init__(self, name, args=(), unix=None, tcp=None, log=None):
        self.name = name
        self.args = list(args)
        self.tcp = tcp
        self.unix = None if tcp else (unix or os.path.join(h.tmpdir(), "%s.sock" % name))
        self.log = log or os.path.join(h.tmpdir(), "%s.log" % name)
        self.proc = None
        self.starts = 0

    def argv(self):
        where = ["--tcp", str(self.tcp)] if self.tcp else ["--unix", self.unix]
        return [agent_python(), AGENT] + where + ["--log", self.log, "--name", self.name] + \
            self.args

    def start(self, timeout=10.0):
        self.starts += 1
        self.proc = h.Proc("agent-%s" % self.name, self.argv())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "ready" in self.proc.stdout():
                self.t_ready = time.monotonic()
                return self
            if not self.proc.alive():
                break
            time.sleep(0.02)
        raise h.TestFailure("test agent %s did not print 'ready' (rc %s): %s" %
                            (self.name, self.proc.returncode(), self.proc.stderr()[-2000:]))

    def kill(self):
        self.proc.signal(signal.SIGKILL)
        self.proc.wait(5)

    def stop(self):
        return self.proc.stop()

    def alive(self):
        return self.proc is not None and self.proc.alive()

    # -- the log
    def records(self, event="request"):
        out = []
        try:
            with open(self.log) as f:
                for line in f:
                    if not line.endswith("\n"):
                        break           # being written
                    r = json.loads(line)
                    if event is None or r.get("event") == event:
                        out.append(r)
        except FileNotFoundError:
            pass
        return out

    def by_tag(self, tag, event="request"):
        return [r for r in self.records(event) if r.get("tag") == tag]

    def wait(self, pred, timeout=5.0, event="request", what="a matching log record"):
        deadline = time.monotonic() + timeout
        while True:
            for r in self.records(event):
                if pred(r):
                    return r
            if time.monotonic() > deadline:
                raise h.TestFailure("agent %s: no %s (event %s) within %.1fs; last records: %s" %
                                    (self.name, what, event, timeout,
                                     json.dumps(self.records(None)[-6:])[:3000]))
            time.sleep(0.02)

    def wait_tag(self, tag, timeout=5.0):
        return self.wait(lambda r: r.get("tag") == tag, timeout,
                         what="request record tagged %r" % tag)

    def wait_count(self, event, n, timeout=10.0, pred=None):
        deadline = time.monotonic() + timeout
        while True:
            rs = [r for r in self.records(event) if pred is None or pred(r)]
            if len(rs) >= n:
                return rs
            if time.monotonic() > deadline:
                raise h.TestFailure("agent %s: %d %s records after %.1fs, expected %d" %
                                    (self.name, len(rs), event, timeout, n))
            time.sleep(0.02)

    def violations(self, ignore=()):
        return [v for v in self.records("violation")
                if not any(s in v.get("msg", "") for s in ignore)]

    def check_no_violations(self, ignore=(), what=""):
        v = self.violations(ignore)
        if v:
            raise h.TestFailure("agent %s saw %d protocol violation(s) by weir%s: %s" %
                                (self.name, len(v), " (" + what + ")" if what else "",
                                 json.dumps(v[:10])))


def start_agent(name, events="request_headers", args=(), **kw):
    a = AgentProc(name, ["--events", events] + list(args), **kw)
    return a.start()


def config(origin, agents, routes, workers=1, top=None, upstream=None, upstreams=None):
    """YAML text for weir: upstream `app` (the origin; upstream: its extra
    keys), more upstreams {name: {key: value}}, agents {name: {key: value}}
    (lists become flow sequences), routes (raw flow mappings)."""
    lines = ["workers: %d" % workers]
    for k, v in (top or {}).items():
        lines.append("%s: %s" % (k, v))
    lines += ["listen:", "  - address: 127.0.0.1:{port}", "upstreams:", "  app:",
              "    servers: [%s]" % (origin if isinstance(origin, str) else origin.addr)]
    up = {"keepalive": 64, "connect_timeout": "1s", "read_timeout": "10s"}
    up.update(upstream or {})
    for k, v in up.items():
        lines.append("    %s: %s" % (k, v))
    for name, u in (upstreams or {}).items():
        lines.append("  %s:" % name)
        for k, v in u.items():
            if isinstance(v, (list, tuple)):
                v = "[" + ", ".join(v) + "]"
            lines.append("    %s: %s" % (k, v))
    lines.append("agents:")
    for name, a in agents.items():
        lines.append("  %s:" % name)
        for k, v in a.items():
            if isinstance(v, (list, tuple)):
                v = "[" + ", ".join(v) + "]"
            lines.append("    %s: %s" % (k, v))
    lines.append("routes:")
    for r in routes:
        lines.append("  - " + r)
    return "\n".join(lines) + "\n"


def hdrs(**kw):
    """hdrs(action="block", status=403) -> [("X-Agent-Action", "block"), ...];
    list values repeat the field."""
    out = []
    for k, v in kw.items():
        name = "X-Agent-" + "-".join(p.capitalize() for p in k.split("_"))
        for x in (v if isinstance(v, (list, tuple)) else [v]):
            out.append((name, str(x)))
    return out


# ---------------------------------------------------------------------------
# many requests at once (one thread, non-blocking sockets)
# ---------------------------------------------------------------------------

class Result:
    def __init__(self, i):
        self.i = i
        self.status = None
        self.headers = []
        self.body = b""
        self.error = None
        self.t_done = None      # seconds after the start of many()
        self.t_abs = None       # time.monotonic() when it ended

    def get(self, name, default=None):
        n = name.lower()
        for k, v in self.headers:
            if k.lower() == n:
                return v
        return default


def _parse(buf):
    """-> (status, headers, body) once a whole response is in buf, else None.
    Content-Length or chunked."""
    i = buf.find(b"\r\n\r\n")
    if i < 0:
        return None
    head = buf[:i].decode("latin-1").split("\r\n")
    status = int(head[0].split(" ")[1])
    hs = []
    for line in head[1:]:
        k, _, v = line.partition(":")
        hs.append((k, v.strip()))
    rest = buf[i + 4:]
    cl = [v for k, v in hs if k.lower() == "content-length"]
    te = [v for k, v in hs if k.lower() == "transfer-encoding"]
    if te:
        body = b""
        p = 0
        while True:
            j = rest.find(b"\r\n", p)
            if j < 0:
                return None
            n = int(rest[p:j].split(b";")[0], 16)
            if n == 0:
                if rest.find(b"\r\n\r\n", j) < 0 and not rest[j:].startswith(b"\r\n\r\n"):
                    return None
                return status, hs, body
            if len(rest) < j + 2 + n + 2:
                return None
            body += rest[j + 2:j + 2 + n]
            p = j + 2 + n + 2
    n = int(cl[0]) if cl else 0
    if len(rest) < n:
        return None
    return status, hs, bytes(rest[:n])


def many(port, reqs, timeout=30.0, connect_batch=200):
    """Send each request (bytes) on its own connection, all at once; return
    [Result] in order. Errors (closed, reset, timeout) go to Result.error."""
    sel = selectors.DefaultSelector()
    results = [Result(i) for i in range(len(reqs))]
    state = {}
    pending = list(range(len(reqs)))
    t0 = time.monotonic()
    deadline = t0 + timeout
    open_n = 0

    def start(i):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        state[s] = {"i": i, "out": memoryview(reqs[i]), "in": bytearray()}
        sel.register(s, selectors.EVENT_WRITE | selectors.EVENT_READ)

    def finish(s, err=None):
        st = state.pop(s)
        r = results[st["i"]]
        r.t_abs = time.monotonic()
        r.t_done = r.t_abs - t0
        if err is not None:
            r.error = err
        sel.unregister(s)
        s.close()

    while (pending or state) and time.monotonic() < deadline:
        while pending and len(state) < 100000 and open_n < connect_batch:
            start(pending.pop(0))
            open_n += 1
        if open_n >= connect_batch:
            open_n = 0          # let the batch connect before the next one
        for key, ev in sel.select(timeout=0.05):
            s = key.fileobj
            st = state.get(s)
            if st is None:
                continue
            if ev & selectors.EVENT_WRITE and st["out"]:
                try:
                    n = s.send(st["out"])
                    st["out"] = st["out"][n:]
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError as e:
                    finish(s, "send: %s" % e)
                    continue
                if not st["out"]:
                    sel.modify(s, selectors.EVENT_READ)
            if ev & selectors.EVENT_READ:
                try:
                    d = s.recv(262144)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as e:
                    finish(s, "recv: %s (after %d bytes)" % (e, len(st["in"])))
                    continue
                if not d:
                    finish(s, "closed after %d bytes" % len(st["in"]))
                    continue
                st["in"] += d
                p = _parse(st["in"])
                if p is not None:
                    r = results[st["i"]]
                    r.status, r.headers, r.body = p
                    finish(s)
    for s in list(state):
        finish(s, "timed out after %.1fs" % timeout)
    sel.close()
    return results
