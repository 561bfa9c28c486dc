#!/usr/bin/env python3
"""Self-test of the Python agent (weir_agent.py + test_agent.py) against a
fake weir (fake_weir.py), without weir: every behaviour the integration tests
rely on, and the agent's own protocol checks. Exit 0 pass, 1 fail, 77 skip
(no Python with msgpack)."""

import json
import os
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True


def _reexec():
    """Run under an interpreter that can import msgpack."""
    try:
        import msgpack  # noqa: F401
        return
    except ImportError:
        pass
    if os.environ.get("WEIR_AGENT_SELFTEST_REEXEC"):
        print("SKIP: no Python with msgpack (python3-msgpack)")
        sys.exit(77)
    for cand in ("/usr/bin/python3",):
        if os.path.exists(cand) and subprocess.run([cand, "-c", "import msgpack"],
                                                   capture_output=True).returncode == 0:
            env = dict(os.environ, WEIR_AGENT_SELFTEST_REEXEC="1")
            os.execve(cand, [cand] + sys.argv, env)
    print("SKIP: no Python with msgpack (python3-msgpack; tried %s and /usr/bin/python3)" %
          sys.executable)
    sys.exit(77)


_reexec()
sys.path.insert(0, HERE)
import weir_agent as wa  # noqa: E402
from fake_weir import FakeWeir  # noqa: E402

TMP = tempfile.mkdtemp(prefix="weir-agent-selftest-")
PROCS = []


class Agent:
    def __init__(self, *args):
        self.sock = os.path.join(TMP, "a%d.sock" % len(PROCS))
        self.log = os.path.join(TMP, "a%d.log" % len(PROCS))
        self.p = subprocess.Popen([sys.executable, os.path.join(HERE, "test_agent.py"),
                                   "--unix", self.sock, "--log", self.log] + list(args),
                                  stdout=subprocess.PIPE, stderr=sys.stderr)
        PROCS.append(self.p)
        line = self.p.stdout.readline().decode()
        assert line.strip() == "ready", "agent printed %r" % line

    def records(self, event=None):
        out = []
        with open(self.log) as f:
            for line in f:
                r = json.loads(line)
                if event is None or r.get("event") == event:
                    out.append(r)
        return out

    def wait_record(self, pred, timeout=3.0, event="request"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for r in self.records(event):
                if pred(r):
                    return r
            time.sleep(0.02)
        raise AssertionError("no %s record matching within %.1fs; log:\n%s" %
                             (event, timeout, open(self.log).read()[-3000:]))

    def violations(self):
        return self.records("violation")

    def connect(self, **kw):
        w = FakeWeir.unix(self.sock)
        w.reply = w.handshake(**kw)
        return w

    def stop(self):
        self.p.terminate()
        self.p.wait(5)


def eq(a, b, what):
    if a != b:
        raise AssertionError("%s: expected %r, got %r" % (what, b, a))


# ---------------------------------------------------------------------------

def t_handshake():
    a = Agent("--events", "request_headers,request_body,request_done", "--window", "65536",
              "--max-in-flight", "100", "--name", "waf")
    w = a.connect()
    r = w.reply
    eq(r[wa.K_VERSION], 1, "version")
    eq(r[wa.K_EVENTS], 0x13, "events")
    eq(r[wa.K_CAPABILITIES], 1, "caps")
    eq(r[wa.K_BODY_WINDOW], 65536, "window")
    eq(r[wa.K_MAX_IN_FLIGHT], 100, "max_in_flight")
    eq(r[wa.K_NAME], "waf", "name")
    # PING/PONG
    w.ping(0x1234)
    f, _ = w.expect(wa.PONG, 0x1234, skip_pongs=False)
    eq(f, {}, "PONG payload")
    w.close()
    a.stop()
    eq(a.violations(), [], "violations")


def t_verdicts():
    a = Agent("--mark")
    w = a.connect()
    w.request_headers(1, headers=[("Host", "x"), ("X-Test-Id", "t1")], last=True)
    f, _ = w.expect(wa.VERDICT, 1)
    eq(f[wa.K_ACTION], 0, "allow")
    eq(f[wa.K_PHASE], 0, "phase")
    assert f[wa.K_RESP_ADD][0] == "X-Agent-Seen", f
    w.request_headers(2, headers=[("X-Agent-Action", "block"), ("X-Agent-Status", "451"),
                                  ("X-Agent-Body", "go away"), ("X-Agent-Header", "X-A: 1"),
                                  ("X-Agent-Header", "X-B: two words"),
                                  ("X-Agent-Tags", "a,b"), ("X-Agent-Rule-Ids", "1,x"),
                                  ("X-Agent-Score", "-3"), ("X-Agent-Reason", "why")], last=True)
    f, _ = w.expect(wa.VERDICT, 2)
    eq(f[wa.K_ACTION], 1, "block")
    eq(f[wa.K_STATUS], 451, "status")
    eq(f[wa.K_BODY], b"go away", "body")
    eq(f[wa.K_HEADERS_OUT], ["X-A", "1", "X-B", "two words"], "headers_out")
    eq(f[wa.K_TAGS], ["a", "b"], "tags")
    eq(f[wa.K_RULE_IDS], [1, "x"], "rule ids")
    eq(f[wa.K_SCORE], -3, "score")
    eq(f[wa.K_REASON], "why", "reason")
    w.request_headers(3, headers=[("X-Agent-Action", "redirect"), ("X-Agent-Status", "307"),
                                  ("X-Agent-Location", "/there")], last=True)
    f, _ = w.expect(wa.VERDICT, 3)
    eq((f[wa.K_ACTION], f[wa.K_STATUS], f[wa.K_LOCATION]), (2, 307, "/there"), "redirect")
    w.request_headers(4, headers=[("X-Agent-Req-Set", "X-S: 1"), ("X-Agent-Req-Add", "X-A: 2"),
                                  ("X-Agent-Req-Del", "X-D"), ("X-Agent-Resp-Set", "X-RS: 3"),
                                  ("X-Agent-Resp-Add", "X-RA: 4"),
                                  ("X-Agent-Resp-Del", "Server")], last=True)
    f, _ = w.expect(wa.VERDICT, 4)
    eq(f[wa.K_REQ_SET], ["X-S", "1"], "req_set")
    eq(f[wa.K_REQ_ADD], ["X-A", "2"], "req_add")
    eq(f[wa.K_REQ_DEL], ["X-D"], "req_del")
    eq(f[wa.K_RESP_SET], ["X-RS", "3"], "resp_set")
    eq(f[wa.K_RESP_ADD][:2], ["X-RA", "4"], "resp_add")
    eq(f[wa.K_RESP_DEL], ["Server"], "resp_del")
    # the ids closed silently (no response events, no request_done): reuse is fine
    w.request_headers(1, headers=[("X-Test-Id", "t1b")], last=True)
    w.expect(wa.VERDICT, 1)
    r = a.wait_record(lambda r: r["tag"] == "t1")
    eq(r["closed"], "silent", "close how")
    eq(r["verdict"]["action"], "allow", "logged verdict")
    w.close()
    a.stop()
    eq(a.violations(), [], "violations")


def t_pipelined_any_order():
    a = Agent()
    w = a.connect()
    for rid, d in ((10, 300), (11, 200), (12, 100), (13, 0)):
        w.request_headers(rid, headers=[("X-Agent-Delay-Ms", str(d))], last=True)
    got = []
    for _ in range(4):
        t, rid, fl, f = w.read_frame(3)
        eq(t, wa.VERDICT, "type")
        got.append(rid)
    eq(got, [13, 12, 11, 10], "verdict order")
    w.close()
    a.stop()
    eq(a.violations(), [], "violations")


def t_body():
    a = Agent("--events", "request_headers,request_body")
    w = a.connect()
    data = os.urandom(300000)
    w.request_headers(5, method="POST", headers=[("Content-Length", str(len(data))),
                                                 ("X-Test-Id", "b")], body_length=len(data))
    w.body(5, 0, data[:100000])
    w.body(5, 100000, data[100000:200000])
    w.body(5, 200000, data[200000:], last=True)
    f, _ = w.expect(wa.VERDICT, 5)
    eq(f[wa.K_ACTION], 0, "allow after body")
    r = a.wait_record(lambda r: r["tag"] == "b")
    import hashlib
    eq(r["body_sha256"], hashlib.sha256(data).hexdigest(), "sha")
    eq(r["body_bytes"], len(data), "bytes")
    eq(r["offsets_ok"], True, "offsets")
    eq(r["events"], ["request_headers", "request_body"], "events")
    # block after bytes: the verdict comes part way
    w.request_headers(6, method="POST", headers=[("X-Agent-Action", "block"),
                                                 ("X-Agent-After-Bytes", "150000"),
                                                 ("Transfer-Encoding", "chunked"),
                                                 ("X-Test-Id", "c")])
    w.body(6, 0, data[:100000])
    w.body(6, 100000, data[100000:200000])
    f, _ = w.expect(wa.VERDICT, 6)
    eq(f[wa.K_ACTION], 1, "block part way")
    w.body(6, 200000, data[200000:], last=True)      # crossed the verdict: tolerated
    # a bad offset is a violation
    w.request_headers(7, method="POST", headers=[("Transfer-Encoding", "chunked")])
    w.body(7, 0, b"abc")
    w.body(7, 5, b"def", last=True)
    w.expect(wa.VERDICT, 7)
    time.sleep(0.1)
    v = a.violations()
    eq(len(v), 1, "one violation (offset): %r" % v)
    assert "offset 5, expected 3" in v[0]["msg"], v
    # GET without body: answered on the headers
    w.request_headers(8, last=True)
    w.expect(wa.VERDICT, 8)
    w.close()
    a.stop()


def t_need_more_credit():
    a = Agent("--window", "1000")
    w = a.connect()
    eq(w.reply[wa.K_BODY_WINDOW], 1000, "window")
    w.request_headers(1, method="POST", headers=[("X-Agent-Need-More", "1"),
                                                 ("Content-Length", "2500"),
                                                 ("X-Test-Id", "nm")], body_length=2500)
    w.expect(wa.NEED_MORE, 1)
    w.body(1, 0, b"a" * 1000)
    f, _ = w.expect(wa.CREDIT, 1)
    eq(f[wa.K_BYTES], 1000, "credit")
    w.body(1, 1000, b"b" * 1000)
    w.expect(wa.CREDIT, 1)
    w.body(1, 2000, b"c" * 500, last=True)
    w.expect(wa.VERDICT, 1)
    r = a.wait_record(lambda r: r["tag"] == "nm")
    eq(r["need_more"], True, "need_more logged")
    eq(r["body_bytes"], 2500, "body bytes")
    eq(a.violations(), [], "violations")
    # over the credit: a violation
    w.request_headers(2, method="POST", headers=[("X-Agent-Need-More", "1"),
                                                 ("X-Agent-Credit", "hold"),
                                                 ("Transfer-Encoding", "chunked")])
    w.expect(wa.NEED_MORE, 2)
    w.body(2, 0, b"a" * 1000)
    w.body(2, 1000, b"a" * 10, last=True)
    w.expect(wa.VERDICT, 2)
    time.sleep(0.1)
    v = a.violations()
    assert len(v) == 1 and "credit" in v[0]["msg"], v
    w.close()
    a.stop()


def t_stall_cancel_done():
    a = Agent("--events", "request_headers,response_headers,response_body,request_done")
    w = a.connect()
    w.request_headers(1, headers=[("X-Agent-Action", "stall"), ("X-Test-Id", "s")], last=True)
    time.sleep(0.1)
    w.cancel(1, 2)
    r = a.wait_record(lambda r: r["tag"] == "s")
    eq((r["closed"], r["cancel_reason"]), ("cancel", 2), "cancelled")
    # a full exchange with response events
    w.request_headers(2, headers=[("X-Test-Id", "full"),
                                  ("X-Agent-Response-Add", "X-R: 1")], last=True)
    w.expect(wa.VERDICT, 2)
    w.response_headers(2, 200, [("Content-Length", "4")], body_length=4)
    f, _ = w.expect(wa.VERDICT, 2)
    eq((f[wa.K_ACTION], f[wa.K_PHASE], f[wa.K_RESP_ADD]), (0, 1, ["X-R", "1"]), "resp verdict")
    w.body(2, 0, b"ok", ftype=wa.RESPONSE_BODY)
    w.body(2, 2, b"ok", last=True, ftype=wa.RESPONSE_BODY)
    w.done(2, 200, 0, 4, 1234)
    r = a.wait_record(lambda r: r["tag"] == "full")
    eq(r["closed"], "done", "closed by done")
    eq(r["done"]["bytes_out"], 4, "done bytes_out")
    eq(r["events"], ["request_headers", "response_headers", "response_body", "request_done"],
       "events")
    # response-phase block
    w.request_headers(3, headers=[("X-Agent-Response-Action", "block"),
                                  ("X-Agent-Response-Status", "502")], last=True)
    w.expect(wa.VERDICT, 3)
    w.response_headers(3, 200, [], last=True)
    f, _ = w.expect(wa.VERDICT, 3)
    eq((f[wa.K_ACTION], f[wa.K_PHASE], f[wa.K_STATUS]), (1, 1, 502), "resp block")
    w.done(3, 502)
    # frames for an id never opened: violation
    w.done(99)
    time.sleep(0.1)
    v = a.violations()
    assert len(v) == 1 and "never opened" in v[0]["msg"], v
    w.close()
    a.stop()


def t_breakers():
    a = Agent()
    for action, check in (
            ("garbage", lambda w: eq(w.read_raw(4), b"\x00\x00\x00\x05", "garbage length")),
            ("unknown-id", lambda w: w.read_frame(2)[1] != 1 or (_ for _ in ()).throw(
                AssertionError("unknown-id used the request's id"))),
            ("zero-id", lambda w: eq(w.read_frame(2)[1], 0, "zero id")),
            ("bad-verdict", lambda w: eq(w.read_frame(2)[3][wa.K_ACTION], 9, "action 9")),
            ("close", lambda w: eq(w.closed_within(2), True, "closed")),
            ("close-mid-frame", lambda w: eq(w.closed_within(2), True, "closed")),
    ):
        w = a.connect()
        w.request_headers(1, headers=[("X-Agent-Action", action)], last=True)
        check(w)
        w.close()
    w = a.connect(max_frame=65536)
    w.request_headers(1, headers=[("X-Agent-Action", "oversize")], last=True)
    hdr = w.read_raw(16)
    n = wa.HDR.unpack(hdr)[0] + 4
    assert n > 65536, n
    w.close()
    a.stop()


def t_hello_modes():
    a = Agent("--hello", "none")
    w = FakeWeir.unix(a.sock)
    w.send(wa.HELLO, 0, {wa.K_VERSION: 1, wa.K_CAPABILITIES: 0, wa.K_MAX_FRAME: 65536,
                         wa.K_EVENTS: 31, wa.K_NAME: "x", wa.K_REACTOR: 0})
    try:
        w.read_frame(0.5)
        raise AssertionError("got a HELLO_REPLY with --hello none")
    except OSError:
        pass
    w.close()
    a.stop()
    a = Agent("--hello-delay-ms", "300")
    w = FakeWeir.unix(a.sock)
    w.send(wa.HELLO, 0, {wa.K_VERSION: 1, wa.K_CAPABILITIES: 0, wa.K_MAX_FRAME: 65536,
                         wa.K_EVENTS: 31, wa.K_NAME: "x", wa.K_REACTOR: 0})
    w.request_headers(1, last=True)     # too early: a violation
    w.expect(wa.HELLO_REPLY, 0)
    w.expect(wa.VERDICT, 1)
    time.sleep(0.1)
    v = a.violations()
    assert len(v) == 1 and "before the agent's HELLO_REPLY" in v[0]["msg"], v
    w.close()
    a.stop()


def t_barrier_many_conns():
    a = Agent()
    ws = [a.connect() for _ in range(2)]
    n = 400
    for i in range(n):
        ws[i % 2].request_headers(i + 1, headers=[("X-Agent-Barrier", str(n)),
                                                  ("X-Agent-Action", "block"),
                                                  ("X-Agent-Body", "b%d" % i)], last=True)
    got = {}
    for w in ws:
        for _ in range(n // 2):
            f, _ = w.expect(wa.VERDICT)
            got[f[wa.K_BODY]] = True
    eq(len(got), n, "distinct verdicts")
    b = a.records("barrier")
    eq((b[0]["reached"], b[0]["n"], b[0]["conns"]), (True, n, [1, 2]), "barrier")
    for w in ws:
        w.close()
    a.stop()
    eq(a.violations(), [], "violations")


TESTS = [t_handshake, t_verdicts, t_pipelined_any_order, t_body, t_need_more_credit,
         t_stall_cancel_done, t_breakers, t_hello_modes, t_barrier_many_conns]


def main():
    failed = []
    for t in TESTS:
        t0 = time.monotonic()
        try:
            t()
            print("ok   %s (%.2fs)" % (t.__name__, time.monotonic() - t0))
        except Exception as e:      # noqa: BLE001
            failed.append(t.__name__)
            print("FAIL %s: %s: %s" % (t.__name__, type(e).__name__, e))
            traceback.print_exc(file=sys.stdout)
        finally:
            for p in PROCS:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        sys.stdout.flush()
    if failed:
        print("FAILED: " + ", ".join(failed))
        return 1
    print("PASS agent selftest")
    return 0


if __name__ == "__main__":
    sys.exit(main())
