#!/usr/bin/env python3
"""The example agents (tools/weir-agent-noop, tools/weir-agent-rules) through
a fake weir: handshake, verdicts per rule kind, body inspection across
frames, rule-file errors naming FILE:LINE, graceful stop with GOAWAY.

Needs msgpack (Debian's python3-msgpack): re-runs itself under
/usr/bin/python3 when this interpreter lacks it, else exits 77 (skip).
Binaries from NOOP_BIN and RULES_BIN. Exit 0 pass, 1 fail.
"""

import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

try:
    import msgpack
except ImportError:
    if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    print("skip: no msgpack module (install python3-msgpack)")
    sys.exit(77)

HELLO, REQH, REQB, RESPH, RESPB, DONE, CANCEL, PING = range(1, 9)
HELLO_REPLY, VERDICT, NEED_MORE, CREDIT, PONG, GOAWAY = range(0x81, 0x87)
LAST = 1
ALLOW, BLOCK, REDIRECT = 0, 1, 2

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


class FakeWeir:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(5)
        self.sock.connect(path)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send(self, t, rid, fields, flags=0):
        p = msgpack.packb(fields, use_bin_type=True)
        self.sock.sendall(struct.pack(">IBBHQ", 12 + len(p), t, flags, 0, rid) + p)

    def read(self, timeout=5.0):
        """-> (type, id, flags, dict); None when the agent closed."""
        self.sock.settimeout(timeout)
        while len(self.buf) < 4 or len(self.buf) < 4 + struct.unpack(">I", self.buf[:4])[0]:
            d = self.sock.recv(65536)
            if not d:
                return None
            self.buf += d
        n = struct.unpack(">I", self.buf[:4])[0]
        f, self.buf = self.buf[:n + 4], self.buf[n + 4:]
        _l, t, flags, _r, rid = struct.unpack(">IBBHQ", f[:16])
        return t, rid, flags, msgpack.unpackb(f[16:], strict_map_key=False, raw=False)

    def hello(self, events=0x1f, caps=0):
        self.send(HELLO, 0, {1: 1, 2: caps, 3: 262144, 5: events, 6: "waf", 9: 0})
        t, rid, _f, m = self.read()
        check(t == HELLO_REPLY and rid == 0 and m[1] == 1, "HELLO_REPLY")
        return m

    def request(self, rid, method="GET", target="/", headers=(), addr="127.0.0.1",
                last=True, body_length=None):
        h = []
        for k, v in [("Host", "example.com")] + list(headers):
            h += [k, v]
        f = {10: method, 11: target, 12: 1, 13: h, 14: addr, 15: 5555, 16: "r",
             40: "u-%d" % rid}
        if body_length is not None:
            f[17] = body_length
        self.send(REQH, rid, f, LAST if last else 0)

    def body(self, rid, off, data, last=False):
        self.send(REQB, rid, {18: off, 19: data}, LAST if last else 0)

    def verdict(self, rid):
        while True:
            fr = self.read()
            if fr is None:
                check(False, "verdict for %d: connection closed" % rid)
                return {}
            t, r, _f, m = fr
            if t == CREDIT:
                continue
            check(t == VERDICT and r == rid, "expected VERDICT %d, got type %#x id %d" % (rid, t, r))
            return m

    def nothing(self, timeout=0.3):
        try:
            fr = self.read(timeout)
        except socket.timeout:
            return True
        check(False, "unexpected frame %r" % (fr,))
        return False


def start(argv):
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    check("listening on unix:" in line, "listening line: %r" % line)
    return p


def stop(p, w=None):
    p.send_signal(signal.SIGTERM)
    if w is not None:
        fr = w.read()
        check(fr is not None and fr[0] == GOAWAY, "GOAWAY on SIGTERM: %r" % (fr,))
        w.close()
    try:
        rc = p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = -1
    check(rc == 0, "exit status %d" % rc)
    err = p.stderr.read()
    p.stdout.close()
    p.stderr.close()
    return err


RULES = r"""# test rules
100 method TRACE,CONNECT
101 path ^/admin(/|$)
102 header User-Agent (?i)sqlmap|nikto
103 ip 192.0.2.0/24, 2001:db8::/32
104 ibody union select
105 target (?i)<script
106 body \x00\xff
107 header X-Debug ^
"""

BAD_RULES = """# bad
1 method GET
2 verb GET
x path /
3 path (unclosed
1 ip 10.0.0.1
4 ip 10.0.0.300
5 body \\q
6 header X-Only
"""


def test_rules_file(tmp, rules_bin):
    bad = os.path.join(tmp, "bad.rules")
    with open(bad, "w") as f:
        f.write(BAD_RULES)
    r = subprocess.run([rules_bin, "--rules", bad, "--check"], capture_output=True, text=True)
    check(r.returncode == 1, "bad rules: exit %d" % r.returncode)
    for line, what in [(3, "unknown kind"), (4, "not a rule id"), (5, "regex error"),
                       (6, "already used on line 2"), (7, "10.0.0.300"), (8, "unknown escape"),
                       (9, "no regex")]:
        check("%s:%d: " % (bad, line) in r.stderr and what in r.stderr,
              "bad rules: %s:%d (%s) in %r" % (bad, line, what, r.stderr))
    good = os.path.join(tmp, "good.rules")
    with open(good, "w") as f:
        f.write(RULES)
    r = subprocess.run([rules_bin, "--rules", good, "--check"], capture_output=True, text=True)
    check(r.returncode == 0 and "8 rules OK" in r.stdout, "good rules: %r %r" % (r.stdout, r.stderr))
    r = subprocess.run([rules_bin, "--help"], capture_output=True, text=True)
    check(r.returncode == 0 and "ibody" in r.stdout and "FILE:LINE" in r.stdout, "--help")
    return good


def blocked(m, rule):
    return m.get(22) == BLOCK and m.get(20) == 403 and m.get(33) == [rule]


def test_rules(tmp, rules_bin, good):
    sock = os.path.join(tmp, "rules.sock")
    p = start([rules_bin, "--rules", good, "--listen", sock, "--workers", "2", "--quiet"])
    w = FakeWeir(sock)
    m = w.hello()
    check(m[5] == 0x03, "rules agent subscribes to request_body: events %#x" % m[5])
    cases = [
        (1, dict(method="TRACE"), 100),
        (2, dict(target="/admin"), 101),
        (3, dict(target="/admin/users?x"), 101),
        (4, dict(target="/administrator"), None),
        (5, dict(headers=[("user-agent", "Mozilla sqlmap/1.0")]), 102),
        (6, dict(addr="192.0.2.55"), 103),
        (7, dict(addr="2001:db8::7"), 103),
        (8, dict(addr="10.0.0.1"), None),
        (9, dict(target="/search?q=%3C<SCRIPT>"), 105),
        (10, dict(headers=[("X-Debug", "")]), 107),
        (11, dict(target="/ok"), None),
    ]
    for rid, kw, rule in cases:
        w.request(rid, **kw)
        m = w.verdict(rid)
        if rule is None:
            check(m.get(22) == ALLOW, "case %d allowed: %r" % (rid, m))
        else:
            check(blocked(m, rule), "case %d blocked by %d: %r" % (rid, rule, m))
            check("weir-agent-rules" in m.get(32, []), "case %d tags %r" % (rid, m.get(32)))
    # body: a case-insensitive match across two frames
    w.request(20, "POST", "/upload", last=False)
    w.body(20, 0, b"id=1 UNI")
    w.body(20, 8, b"ON Select * from t")
    m = w.verdict(20)
    check(blocked(m, 104), "body across frames: %r" % m)
    check(m.get(25) == b"request blocked (rule 104)\n", "block body %r" % m.get(25))
    # binary text, in the last frame
    w.request(21, "POST", "/upload", last=False)
    w.body(21, 0, b"ab\x00")
    w.body(21, 3, b"\xffcd", True)
    check(blocked(w.verdict(21), 106), "binary body")
    # clean body: allowed after its last frame, not before
    w.request(22, "POST", "/upload", last=False)
    w.body(22, 0, b"union")
    w.nothing()
    w.body(22, 5, b" all", True)
    check(w.verdict(22).get(22) == ALLOW, "clean body allowed")
    stop(p, w)


def test_noop(tmp, noop_bin):
    sock = os.path.join(tmp, "noop.sock")
    p = start([noop_bin, "--listen", sock])
    w = FakeWeir(sock)
    m = w.hello()
    check(m[5] == 0x01 and m[6] == "noop", "noop HELLO_REPLY %r" % m)
    w.request(1)
    check(w.verdict(1).get(22) == ALLOW, "noop allows")
    w.request(2, "POST", last=False, body_length=3)
    check(w.verdict(2).get(22) == ALLOW, "noop allows at the headers without body events")
    w.send(PING, 42, {})
    fr = w.read()
    check(fr is not None and fr[0] == PONG and fr[1] == 42, "PONG")
    err = stop(p, w)
    check("1 connections, 2 requests, 2 verdicts" in err, "noop stats: %r" % err)

    p = start([noop_bin, "--listen", sock, "--events", "request_headers,request_body",
               "--workers", "2", "--credit", "100"])
    w = FakeWeir(sock)
    m = w.hello(caps=1)
    check(m[5] == 0x03 and m[2] == 1 and m[8] == 100, "noop body HELLO_REPLY %r" % m)
    w.request(3, "POST", last=False)
    w.body(3, 0, b"x" * 60)
    fr = w.read()
    check(fr is not None and fr[0] == CREDIT and fr[3].get(34) == 60, "CREDIT 60: %r" % (fr,))
    w.body(3, 60, b"y" * 100, True)
    check(w.verdict(3).get(22) == ALLOW, "noop allows after the last body frame")
    w.request(4, "GET")
    check(w.verdict(4).get(22) == ALLOW, "noop allows a GET at once")
    stop(p, w)


def main():
    noop_bin = os.environ.get("NOOP_BIN")
    rules_bin = os.environ.get("RULES_BIN")
    if not noop_bin or not rules_bin:
        print("NOOP_BIN and RULES_BIN must name the agents", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="weir-agent-tools.") as tmp:
        good = test_rules_file(tmp, rules_bin)
        test_rules(tmp, rules_bin, good)
        test_noop(tmp, noop_bin)
    if failures:
        print("%d failure(s)" % len(failures), file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
