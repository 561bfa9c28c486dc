"""Helpers for the weir-waf tests (tests/waf/test_*.py): find weir-waf and
the CRS or skip, start the agent, read its detection lines, build requests
with a payload in a given place, and send bodies in pieces.

Every test starts the real binaries: weir ($WEIR_BIN), weir-origin
($ORIGIN_BIN) and weir-waf ($WAF_BIN; empty when meson did not build it,
i.e. libmodsecurity-dev is not installed: the tests then exit 77)."""

import json
import os
import re
import socket
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import harness as h  # noqa: E402

CRS_RULES = "/usr/share/modsecurity-crs/rules"
BROWSER = [
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0"),
    ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    ("Accept-Language", "en-GB,en;q=0.7,fr;q=0.3"),
    ("Accept-Encoding", "gzip, deflate, br"),
]


def waf_bin():
    path = os.environ.get("WAF_BIN", "")
    if not path:
        raise h.Skip("weir-waf was not built: libmodsecurity3 not found by meson "
                     "(apt-get install libmodsecurity-dev modsecurity-crs, then reconfigure)")
    if not os.access(path, os.X_OK):
        raise h.Skip("WAF_BIN %s is not executable" % path)
    if not os.path.isdir(CRS_RULES):
        raise h.Skip("the OWASP CRS is not installed (%s; apt-get install modsecurity-crs)"
                     % CRS_RULES)
    return path


class Waf:
    def __init__(self, proc, sock):
        self.proc = proc
        self.sock = sock

    def lines(self):
        """The detection lines (one per request that matched)."""
        return [ln for ln in self.proc.stderr().splitlines()
                if re.match(r"weir-waf: uid \S+ (inbound|outbound) (block|detect) ", ln)]

    def find(self, path, timeout=3.0):
        """The detection line of the request whose path is `path`."""
        deadline = time.monotonic() + timeout
        while True:
            for ln in self.lines():
                f = ln.split(" ")
                if len(f) > 6 and f[6] == path:
                    return parse_line(ln)
            if time.monotonic() > deadline:
                return None
            time.sleep(0.02)


def parse_line(ln):
    f = ln.split(" ")
    d = {"uid": f[2], "phase": f[3], "action": f[4], "method": f[5], "path": f[6]}
    m = re.search(r" body=(\d+)/(\d+) score=(-?\d+) out_score=(-?\d+) rules=([\d,]*)", ln)
    if not m:
        raise h.TestFailure("malformed weir-waf detection line: %r" % ln)
    d["body_bytes"], d["body_frames"] = int(m.group(1)), int(m.group(2))
    d["score"], d["out_score"] = int(m.group(3)), int(m.group(4))
    d["rules"] = [int(x) for x in m.group(5).split(",") if x]
    return d


# the benign set's API uses PUT, PATCH and DELETE, which the CRS's default
# tx.allowed_methods (GET HEAD POST OPTIONS) refuses (rule 911100)
API_METHODS = ["--allowed-methods", "GET HEAD POST OPTIONS PUT PATCH DELETE"]


def start_waf(args=(), name="waf"):
    sock = os.path.join(h.tmpdir(), "%s.sock" % name)
    p = h.Proc(name, [waf_bin(), "--listen", "unix:" + sock, "--workers", "2"] + list(args))
    deadline = time.monotonic() + 20
    while "weir-waf listening on" not in p.stdout():
        if not p.alive():
            raise h.TestFailure("weir-waf exited (rc %s): %s" % (p.returncode(), p.stderr()))
        if time.monotonic() > deadline:
            raise h.TestFailure("weir-waf did not start listening")
        time.sleep(0.05)
    return Waf(p, sock)


def config(origin, agents, routes, admin_port=None, workers=2):
    lines = ["workers: %d" % workers, "listen:", "  - address: 127.0.0.1:{port}"]
    if admin_port:
        lines += ["admin:", "  address: 127.0.0.1:%d" % admin_port]
    lines += ["upstreams:", "  app:", "    servers: [%s]" % origin.addr, "agents:"]
    for name, a in agents.items():
        lines.append("  %s:" % name)
        for k, v in a.items():
            lines.append("    %s: %s" % (k, v))
    lines.append("routes:")
    lines += ["  - " + r for r in routes]
    return "\n".join(lines) + "\n"


def wait_agent(port, path, timeout=10):
    """Until weir's connections to the agent are up (a request answered 200)."""
    deadline = time.monotonic() + timeout
    while True:
        r = h.request(port, "GET", path, headers=BROWSER)
        if r.status == 200:
            return
        if time.monotonic() > deadline:
            raise h.TestFailure("agent not reachable through weir: %s -> %d" % (path, r.status))
        time.sleep(0.1)


# ---- the data files -------------------------------------------------------

def load_cases(name):
    cases = []
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.split(None, 2)
            if len(parts) != 3:
                raise h.TestFailure("%s:%d: expected CLASS PLACEMENTS PAYLOAD" % (name, n))
            cases.append((n, parts[0], parts[1].split(","), parts[2]))
    return cases


BOUNDARY = "----weirwafboundary7MA4YWxkTrZu0gW"


def multipart(fields, files=()):
    """fields: [(name, value)], files: [(name, filename, ctype, bytes)] -> (ctype, body)."""
    out = []
    for k, v in fields:
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n" %
                    (BOUNDARY, k)).encode() + v.encode() + b"\r\n")
    for k, fn, ct, data in files:
        out.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                    "Content-Type: %s\r\n\r\n" % (BOUNDARY, k, fn, ct)).encode() + data + b"\r\n")
    out.append(("--%s--\r\n" % BOUNDARY).encode())
    return "multipart/form-data; boundary=%s" % BOUNDARY, b"".join(out)


def place(path, where, payload):
    """(method, target, headers, body, pieces): the request with payload in
    `where`; pieces (a list of byte strings) when the body goes chunked, in
    several sends."""
    q = urllib.parse.quote(payload, safe="")
    hdrs = list(BROWSER)
    if where == "query":
        return "GET", "%s?id=%s&page=1" % (path, q), hdrs, None, None
    if where == "rawquery":
        return "GET", "%s?%s" % (path, payload), hdrs, None, None
    if where == "path":
        return "GET", path + payload, hdrs, None, None
    if where == "ua":
        return "GET", path, [(k, payload if k == "User-Agent" else v) for k, v in hdrs], None, None
    if where == "referer":
        return "GET", path, hdrs + [("Referer", payload)], None, None
    if where == "cookie":
        return "GET", path, hdrs + [("Cookie", "lang=en; session=%s" % q)], None, None
    if where == "form":
        body = ("name=alice&comment=%s&submit=Send" % q).encode()
        return "POST", path, hdrs + [("Content-Type", "application/x-www-form-urlencoded")], \
            body, None
    if where == "multipart":
        ct, body = multipart([("name", "alice"), ("comment", payload)],
                             [("file", "notes.txt", "text/plain", b"plain notes\n")])
        return "POST", path, hdrs + [("Content-Type", ct)], body, None
    if where == "json":
        body = json.dumps({"user": {"name": "alice", "comment": payload}, "n": 1}).encode()
        return "POST", path, hdrs + [("Content-Type", "application/json")], body, None
    if where in ("split", "splitjson"):
        if where == "split":
            ct = "application/x-www-form-urlencoded"
            body = ("name=alice&comment=%s&submit=Send" % q).encode()
            enc = q.encode()
        else:
            ct = "application/json"
            body = json.dumps({"comment": payload, "n": 1}).encode()
            enc = json.dumps(payload)[1:-1].encode()
        i = body.index(enc)
        # cuts inside the payload: a third and two thirds in
        cuts = sorted({i + max(1, len(enc) // 3), i + max(2, 2 * len(enc) // 3)})
        pieces, prev = [], 0
        for c in cuts + [len(body)]:
            pieces.append(body[prev:c])
            prev = c
        return "POST", path, hdrs + [("Content-Type", ct)], body, pieces
    raise h.TestFailure("unknown placement %r" % where)


def send(port, method, target, headers, body, pieces, gap=0.15):
    """One request on a fresh connection. With pieces: chunked, each piece a
    chunk sent on its own after `gap` seconds, so that weir forwards them to
    the agent as separate body frames."""
    if pieces is None:
        return h.request(port, method, target, headers=headers, body=body)
    with h.Conn(port) as c:
        head = h.build_request(method, target, headers + [("Transfer-Encoding", "chunked")])
        try:
            c.send(head)
            for p in pieces:
                time.sleep(gap)
                c.send(b"%x\r\n" % len(p) + p + b"\r\n")
            time.sleep(gap)
            c.send(b"0\r\n\r\n")
        except OSError:
            pass        # answered (and closed) before the whole body: read it
        return c.read_response(method)
