#!/usr/bin/env python3
"""The C SDK against the spec: drive an agent built on libweir-agent
(tools/weir-agent-noop, $NOOP_BIN) with fake_weir.py (the proxy side, written
from docs/agent-protocol.md) and check every frame it sends.

Handshake (HELLO_REPLY fields, credit negotiation), a request without body
(verdict on the headers), 64 pipelined requests with bodies interleaved and
CREDIT flow control (weir side never exceeds the credit; the agent grants
it; each verdict comes after its LAST frame), response-phase verdicts,
REQUEST_DONE and CANCEL (nothing comes back), PING/PONG, and SIGTERM (GOAWAY,
then the connection closes). Exit 0 pass, 1 fail, 77 skip."""

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True


def _reexec():
    try:
        import msgpack  # noqa: F401
        return
    except ImportError:
        pass
    if not os.environ.get("WEIR_SDK_CONF_REEXEC"):
        for cand in (os.environ.get("WEIR_AGENT_PYTHON"), "/usr/bin/python3"):
            if cand and os.path.exists(cand) and subprocess.run(
                    [cand, "-c", "import msgpack"], capture_output=True).returncode == 0:
                os.execve(cand, [cand] + sys.argv,
                          dict(os.environ, WEIR_SDK_CONF_REEXEC="1"))
    print("SKIP: no Python with msgpack (python3-msgpack)")
    sys.exit(77)


_reexec()
sys.path.insert(0, HERE)
import weir_agent as wa  # noqa: E402
from fake_weir import FakeWeir  # noqa: E402

NOOP = os.environ.get("NOOP_BIN") or os.path.join(os.path.dirname(os.path.dirname(HERE)),
                                                  "build-it", "tools", "weir-agent-noop")
TMP = tempfile.mkdtemp(prefix="weir-sdk-conf-")

# what an agent may send: type -> {key: (name, checker, required)}
AGENT_SCHEMAS = {
    wa.HELLO_REPLY: {wa.K_VERSION: ("version", wa.is_uint, True),
                     wa.K_CAPABILITIES: ("capabilities", wa.is_uint, False),
                     wa.K_MAX_FRAME: ("max_frame", wa.is_uint, False),
                     wa.K_MAX_IN_FLIGHT: ("max_in_flight", wa.is_uint, False),
                     wa.K_EVENTS: ("events", wa.is_uint, True),
                     wa.K_NAME: ("name", wa.is_str, False),
                     wa.K_BODY_WINDOW: ("body_window", wa.is_uint, False)},
    wa.VERDICT: {wa.K_ACTION: ("action", lambda v: v in (0, 1, 2), True),
                 wa.K_PHASE: ("phase", lambda v: v in (0, 1), False)},
    wa.NEED_MORE: {},
    wa.CREDIT: {wa.K_BYTES: ("bytes", wa.is_uint, True)},
    wa.PONG: {},
    wa.GOAWAY: {wa.K_REASON: ("reason", wa.is_str, False)},
}


class Checked(FakeWeir):
    """FakeWeir that validates every frame the agent sends."""

    def __init__(self, sock):
        FakeWeir.__init__(self, sock)
        self.open_ids = set()
        self.problems = []
        self.got_reply = False

    def read_checked(self, timeout=5.0):
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            while len(self.buf) < 16:
                self._fill()
            length, ftype, flags, reserved, rid = wa.HDR.unpack(bytes(self.buf[:16]))
            if length < wa.LEN_MIN:
                raise AssertionError("agent sent a frame length %d" % length)
            if length + 4 > self.max_frame:
                self.problems.append("frame of %d bytes over our max_frame" % (length + 4))
            while len(self.buf) < length + 4:
                self._fill()
            payload = bytes(self.buf[16:length + 4])
            del self.buf[:length + 4]
        finally:
            self.sock.settimeout(old)
        name = wa.TYPE_NAMES.get(ftype, hex(ftype))
        if ftype not in AGENT_SCHEMAS:
            self.problems.append("agent sent type %s" % name)
        if reserved:
            self.problems.append("%s: reserved 0x%x" % (name, reserved))
        if flags:
            self.problems.append("%s: flags 0x%x" % (name, flags))
        if not self.got_reply and ftype != wa.HELLO_REPLY:
            self.problems.append("%s before HELLO_REPLY" % name)
        if ftype == wa.HELLO_REPLY:
            if self.got_reply:
                self.problems.append("second HELLO_REPLY")
            self.got_reply = True
        if ftype in (wa.HELLO_REPLY, wa.GOAWAY) and rid != 0:
            self.problems.append("%s with id %d" % (name, rid))
        if ftype in (wa.VERDICT, wa.NEED_MORE, wa.CREDIT) and rid not in self.open_ids:
            self.problems.append("%s for id %d, not open" % (name, rid))
        pairs = wa.decode_payload(payload)
        fields = {}
        for k, v in pairs:
            if not wa.is_int(k) or k <= 0:
                self.problems.append("%s: key %r" % (name, k))
            fields[k] = v
        for k, (kname, check, req) in AGENT_SCHEMAS.get(ftype, {}).items():
            if k not in fields:
                if req:
                    self.problems.append("%s: %s missing" % (name, kname))
            elif not check(fields[k]):
                self.problems.append("%s: %s = %r" % (name, kname, fields[k]))
        return ftype, rid, flags, fields

    def next_of(self, ftype, timeout=5.0, skip=(wa.CREDIT,)):
        while True:
            t, rid, fl, f = self.read_checked(timeout)
            if t == ftype:
                return rid, f
            if t not in skip:
                raise AssertionError("expected %s, got %s id %d %r" %
                                     (wa.TYPE_NAMES[ftype], wa.TYPE_NAMES.get(t, t), rid, f))

    def open(self, rid, **kw):
        self.open_ids.add(rid)
        self.request_headers(rid, **kw)


def start_noop(sock, *args):
    p = subprocess.Popen([NOOP, "--listen", "unix:" + sock, "--quiet"] + list(args),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    line = b""
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if b"listening on" in line:
            return p
        if p.poll() is not None:
            break
    p.kill()
    raise AssertionError("weir-agent-noop did not listen: %r %r" % (line, p.stderr.read()))


def eq(a, b, what):
    if a != b:
        raise AssertionError("%s: expected %r, got %r" % (what, b, a))


def run():
    sock = os.path.join(TMP, "noop.sock")
    window = 65536
    p = start_noop(sock, "--events", "request_headers,request_body,response_headers,request_done",
                   "--credit", str(window), "--name", "noop")
    try:
        w = Checked.unix(sock)
        w.send(wa.HELLO, 0, {wa.K_VERSION: 1, wa.K_CAPABILITIES: wa.CAP_CREDIT,
                             wa.K_MAX_FRAME: wa.MAX_FRAME_DEFAULT, wa.K_EVENTS: wa.EV_ALL,
                             wa.K_NAME: "noop-test", wa.K_REACTOR: 0})
        t, rid, fl, r = w.read_checked()
        eq(t, wa.HELLO_REPLY, "first frame")
        eq(r.get(wa.K_VERSION), 1, "version")
        eq(r.get(wa.K_EVENTS), 0x17, "events")
        eq(r.get(wa.K_CAPABILITIES, 0) & wa.CAP_CREDIT, wa.CAP_CREDIT, "credit capability")
        eq(r.get(wa.K_BODY_WINDOW), window, "body_window")
        mf = r.get(wa.K_MAX_FRAME, wa.MAX_FRAME_DEFAULT)
        assert wa.MAX_FRAME_MIN <= mf <= wa.MAX_FRAME_CEIL, mf
        mif = r.get(wa.K_MAX_IN_FLIGHT, 4096)
        assert 1 <= mif <= 4096, mif
        eq(r.get(wa.K_NAME), "noop", "name")
        agent_max_frame = mf

        # a request without body: verdict on the headers
        w.open(1, last=True)
        rid, f = w.next_of(wa.VERDICT)
        eq((rid, f[wa.K_ACTION], f.get(wa.K_PHASE, 0)), (1, 0, 0), "verdict without body")

        # 64 pipelined requests with bodies, interleaved, under credit
        rng = random.Random(5)
        n = 64
        ids = list(range(100, 100 + n))
        sizes = {i: rng.choice([0, 1, 1000, 65536, 65537, 300000]) for i in ids}
        sent = {i: 0 for i in ids}
        credit = {i: window for i in ids}
        last_sent = set()
        verdicts = {}
        for i in ids:
            w.open(i, method="POST", headers=[("Content-Length", str(sizes[i]))],
                   body_length=sizes[i])
        chunk_max = min(16384, agent_max_frame - 64)
        while len(verdicts) < n:
            progressed = False
            for i in ids:
                if i in last_sent:
                    continue
                remaining = sizes[i] - sent[i]
                k = min(remaining, credit[i], chunk_max)
                if k == 0 and remaining > 0:
                    continue            # waits for CREDIT
                last = (k == remaining)
                w.body(i, sent[i], b"x" * k, last=last)
                sent[i] += k
                credit[i] -= k
                progressed = True
                if last:
                    last_sent.add(i)
            # read what the agent sent (credits, verdicts): a little while if
            # we sent something, else up to 3 s for the one frame we wait for
            got = 0
            deadline = time.monotonic() + (0.05 if progressed else 3.0)
            while time.monotonic() < deadline:
                try:
                    t, rid, fl, f = w.read_checked(max(0.01, deadline - time.monotonic()))
                except OSError:
                    break
                got += 1
                if t == wa.CREDIT:
                    credit[rid] += f[wa.K_BYTES]
                elif t == wa.VERDICT:
                    if rid not in last_sent:
                        w.problems.append("verdict for %d before its LAST body frame" % rid)
                    verdicts[rid] = f
                else:
                    w.problems.append("unexpected %s" % wa.TYPE_NAMES.get(t, t))
                if not progressed:
                    break
            if not progressed and not got:
                stuck = [i for i in ids if i not in verdicts]
                raise AssertionError("nothing from the agent for 3 s; no verdict for %r; "
                                     "credit left %r" % (stuck[:10], [credit[i] for i in
                                                                       stuck[:10]]))
        eq(sorted(verdicts), ids, "a verdict for every pipelined request")
        eq({f[wa.K_ACTION] for f in verdicts.values()}, {0}, "all allowed")

        # response phase, REQUEST_DONE, CANCEL: nothing after those
        w.response_headers(100, 200, [("Content-Length", "2")], body_length=2)
        rid, f = w.next_of(wa.VERDICT)
        eq((rid, f[wa.K_ACTION], f.get(wa.K_PHASE)), (100, 0, 1), "response-phase verdict")
        w.response_headers(101, 204, [], last=True)
        rid, f = w.next_of(wa.VERDICT)
        eq((rid, f.get(wa.K_PHASE)), (101, 1), "response-phase verdict (no body)")
        for i in ids:
            if i in (100, 101):
                w.done(i, 200, sizes[i], 2, 1000)
            else:
                w.cancel(i, wa.CANCEL_CLIENT_GONE)
            w.open_ids.discard(i)
        # PING/PONG
        w.ping(0xABCDEF)
        rid, f = w.next_of(wa.PONG, skip=())
        eq((rid, f), (0xABCDEF, {}), "PONG")
        # nothing else pending
        try:
            t, rid, fl, f = w.read_checked(0.3)
            w.problems.append("unexpected %s id %d after DONE/CANCEL" %
                              (wa.TYPE_NAMES.get(t, t), rid))
        except OSError:
            pass
        # a request still open at SIGTERM: GOAWAY, then the agent answers/ drains
        w.open(500, method="POST", headers=[("Transfer-Encoding", "chunked")])
        time.sleep(0.1)
        p.send_signal(signal.SIGTERM)
        rid, f = w.next_of(wa.GOAWAY, skip=(wa.CREDIT,))
        eq(rid, 0, "GOAWAY id")
        w.body(500, 0, b"tail", last=True)
        rid, f = w.next_of(wa.VERDICT)
        eq(rid, 500, "verdict of the request open at GOAWAY")
        w.done(500)
        w.open_ids.discard(500)
        time.sleep(0.1)
        w.close()           # weir closes a GOAWAY connection once its ids are done
        rc = p.wait(5)
        eq(rc, 0, "weir-agent-noop exit status after SIGTERM")
        if w.problems:
            raise AssertionError("protocol problems in what the SDK agent sent: %r" %
                                 w.problems[:20])
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def main():
    if not (os.path.isfile(NOOP) and os.access(NOOP, os.X_OK)):
        print("SKIP: weir-agent-noop not found: %s (set NOOP_BIN)" % NOOP)
        return 77
    try:
        run()
    except Exception as e:      # noqa: BLE001
        print("FAIL sdk conformance: %s: %s" % (type(e).__name__, e))
        traceback.print_exc(file=sys.stdout)
        return 1
    print("PASS sdk conformance (weir-agent-noop against the spec)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
