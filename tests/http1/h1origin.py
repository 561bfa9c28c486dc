"""A recording origin for the HTTP/1 integration tests (Python 3 stdlib).

It stands where an upstream server stands and judges what weir forwards:
every request is read with a strict parser of its own (independent of weir's)
and checked for the canonical form weir promises (docs/HTTP1.md, FWD-*):

  - request line "METHOD SP origin-form SP HTTP/1.1" (or "OPTIONS * ...");
  - Host is the first field and the only one;
  - each field line "Name: value" CRLF: a token name, one SP, no OWS at the
    ends of the value, no CR/LF/NUL/CTL other than HTAB;
  - no hop-by-hop field (Connection, Keep-Alive, TE, Trailer, Upgrade,
    Proxy-*, Expect);
  - at most one framing field: "Content-Length: N" (digits, no leading zero)
    or "Transfer-Encoding: chunked"; chunked bodies with lowercase hex sizes
    without leading zeros, no extensions and no trailers.
Deviations are recorded in Request.problems (the tests require it empty).

Answers: a scripted response (script[path] = (bytes, close)) or, by default,
"200 OK" with Content-Length and the connection id in X-Conn; early[path]
is sent as soon as the head is read, before the body. Connections
stay open until weir closes them; Origin.closed_conns tells which weir
closed.
"""

import re
import socket
import threading
import time

TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
HOP = {b"connection", b"keep-alive", b"te", b"trailer", b"upgrade", b"proxy-connection",
       b"proxy-authorization", b"proxy-authenticate", b"expect"}


class Request:
    def __init__(self, conn_id):
        self.conn = conn_id
        self.method = self.target = self.version = None
        self.headers = []        # [(name str, value str)] latin-1
        self.body = b""
        self.framing = "none"
        self.problems = []
        self.raw_head = b""
        self.raw_body = b""

    def get_all(self, name):
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def __repr__(self):
        return "<%s %s conn %d, %d fields, body %d bytes, problems %r>" % (
            self.method, self.target, self.conn, len(self.headers), len(self.body),
            self.problems)


class _Closed(Exception):
    pass


class _Conn:
    def __init__(self, sock, cid):
        self.sock = sock
        self.id = cid
        self.buf = bytearray()

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise _Closed()
        self.buf += data

    def line(self, limit=1 << 20):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                out = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return out
            if len(self.buf) > limit:
                raise _Closed()
            self.fill()

    def exact(self, n):
        while len(self.buf) < n:
            self.fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


class Origin:
    def __init__(self):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(512)
        self.port = self.lsock.getsockname()[1]
        self.addr = "127.0.0.1:%d" % self.port
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.requests = []       # complete requests, in arrival order
        self.aborted = 0         # requests cut off before their end
        self.nconns = 0
        self.closed_conns = set()
        self.script = {}         # path -> (raw response bytes, close after)
        self.early = {}          # path -> raw response sent as soon as the head is read
        self.heads = []          # (target, connection id) of every head read, complete or not
        self.socks = []
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    # ---- test side ------------------------------------------------------

    def count(self):
        with self.lock:
            return len(self.requests)

    def wait_requests(self, n, timeout=5.0):
        """Wait until n requests in all were recorded; returns them all."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            return list(self.requests)

    def wait_closed(self, cid, timeout=5.0):
        """True once weir has closed upstream connection cid."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while cid not in self.closed_conns:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True

    def is_closed(self, cid):
        with self.lock:
            return cid in self.closed_conns

    def stop(self):
        self.stopping = True
        try:
            self.lsock.close()
        except OSError:
            pass
        for s in list(self.socks):
            try:
                s.close()
            except OSError:
                pass

    # ---- server side ------------------------------------------------------

    def _accept(self):
        while not self.stopping:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            with self.lock:
                self.nconns += 1
                cid = self.nconns
            self.socks.append(s)
            threading.Thread(target=self._serve, args=(s, cid), daemon=True).start()

    def _serve(self, s, cid):
        c = _Conn(s, cid)
        try:
            while True:
                try:
                    rq = self._read_request(c)
                except _Closed:
                    return
                with self.cond:
                    self.requests.append(rq)
                    self.cond.notify_all()
                path = rq.target.split("?", 1)[0] if rq.target else ""
                if path in self.script:
                    raw, close = self.script[path]
                    s.sendall(raw)
                    if close:
                        s.shutdown(socket.SHUT_WR)
                        # keep reading until weir closes its side
                        while s.recv(65536):
                            pass
                        return
                else:
                    body = b"ok"
                    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Conn: %d\r\n"
                              b"X-Seq: %d\r\n\r\n%s" % (len(body), cid, len(self.requests), body))
        except OSError:
            pass
        finally:
            with self.cond:
                self.closed_conns.add(cid)
                self.cond.notify_all()
            try:
                s.close()
            except OSError:
                pass

    def _read_request(self, c):
        rq = Request(c.id)
        p = rq.problems
        started = False
        try:
            line = c.line()
            started = True
            head = [line]
            while True:
                ln = c.line()
                head.append(ln)
                if ln == b"":
                    break
            rq.raw_head = b"\r\n".join(head) + b"\r\n"
            parts = line.split(b" ")
            if len(parts) != 3:
                p.append("request line %r" % line)
                parts = (parts + [b"", b"", b""])[:3]
            rq.method = parts[0].decode("latin-1")
            rq.target = parts[1].decode("latin-1")
            rq.version = parts[2].decode("latin-1")
            if rq.version != "HTTP/1.1":
                p.append("version %r" % rq.version)
            if not TOKEN.match(parts[0]):
                p.append("method %r" % parts[0])
            if not (rq.target.startswith("/") or (rq.method == "OPTIONS" and rq.target == "*")):
                p.append("target not in origin-form: %r" % rq.target)
            for ln in head[1:-1]:
                name, colon, value = ln.partition(b":")
                if not colon or not TOKEN.match(name):
                    p.append("field line %r" % ln)
                    continue
                if value[:1] == b" ":
                    value = value[1:]
                else:
                    p.append("no single SP after the colon: %r" % ln)
                if value[:1] in (b" ", b"\t") or value[-1:] in (b" ", b"\t"):
                    p.append("OWS around the value: %r" % ln)
                if any(ch < 0x20 and ch != 0x09 or ch == 0x7f for ch in value):
                    p.append("CTL in value: %r" % ln)
                if name.lower() in HOP or name.lower().startswith(b"proxy-"):
                    p.append("hop-by-hop field forwarded: %r" % ln)
                rq.headers.append((name.decode("latin-1"), value.decode("latin-1")))
            with self.lock:
                self.heads.append((rq.target, c.id))
            path = rq.target.split("?", 1)[0]
            if path in self.early:
                c.sock.sendall(self.early[path])
            hosts = [i for i, (k, _) in enumerate(rq.headers) if k.lower() == "host"]
            if hosts != [0]:
                p.append("Host fields at %r (want exactly one, first)" % hosts)
            cl = [v for k, v in rq.headers if k.lower() == "content-length"]
            te = [v for k, v in rq.headers if k.lower() == "transfer-encoding"]
            if len(cl) + len(te) > 1:
                p.append("framing fields: Content-Length %r, Transfer-Encoding %r" % (cl, te))
            if te:
                rq.framing = "chunked"
                if te != ["chunked"]:
                    p.append("Transfer-Encoding %r" % te)
                rq.body = self._read_chunked(c, rq)
            elif cl:
                rq.framing = "length"
                if not re.fullmatch(r"0|[1-9][0-9]*", cl[0]):
                    p.append("Content-Length %r" % cl[0])
                n = int(cl[0]) if cl[0].isdigit() else 0
                rq.body = c.exact(n)
                rq.raw_body = rq.body
        except _Closed:
            if started:
                with self.lock:
                    self.aborted += 1
            raise
        return rq

    def _read_chunked(self, c, rq):
        data = []
        raw = []
        while True:
            line = c.line()
            raw.append(line + b"\r\n")
            if not re.fullmatch(rb"0|[1-9a-f][0-9a-f]*", line):
                rq.problems.append("chunk size line %r" % line)
            try:
                n = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                rq.problems.append("unreadable chunk size %r" % line)
                raise _Closed()
            if n == 0:
                break
            piece = c.exact(n)
            crlf = c.exact(2)
            raw.append(piece + crlf)
            if crlf != b"\r\n":
                rq.problems.append("chunk data not followed by CRLF")
            data.append(piece)
        last = c.line()
        raw.append(last + b"\r\n")
        if last != b"":
            rq.problems.append("trailer field forwarded: %r" % last)
            while c.line() != b"":
                pass
        rq.raw_body = b"".join(raw)
        return b"".join(data)


class Env:
    pass


def setup(h, top=None, upstream=None, routes=None):
    """A recording origin and a weir (one reactor unless top says otherwise)
    proxying everything to it. h: the integration harness module."""
    e = Env()
    e.origin = Origin()
    t = {"workers": 1}
    t.update(top or {})
    u = {"servers": [e.origin.addr], "read_timeout": "3s"}
    u.update(upstream or {})
    cfg = h.simple_config(top=t, upstreams={"app": u}, routes=routes or ["{upstream: app}"])
    e.weir = h.start_weir(cfg)
    e.port = e.weir.port
    return e


def method_of(raw):
    """The method of a raw request (for reading its response)."""
    m = raw.lstrip(b"\r\n").split(b" ", 1)[0]
    return m.decode("latin-1", "replace")


def check_forwarded(h, rq, exp, what):
    """Checks a recorded request against forward(...) keyword arguments."""
    h.eq(rq.problems, [], what + ": the forwarded request is not canonical; head %r"
         % rq.raw_head[:600])
    if "method" in exp:
        h.eq(rq.method, exp["method"], what + ": forwarded method")
    if "target" in exp:
        h.eq(rq.target, exp["target"], what + ": forwarded target")
    if "host" in exp:
        h.eq(rq.get_all("Host"), [exp["host"]], what + ": forwarded Host")
    if "body" in exp:
        h.eq(rq.body, exp["body"], what + ": forwarded body")
    if "framing" in exp:
        h.eq(rq.framing, exp["framing"], what + ": forwarded framing (head %r)" % rq.raw_head[:600])
    if "headers" in exp:
        want = exp["headers"]
        got = [(k, v) for (k, v) in rq.headers
               if (k.lower(), ) in {(n.lower(), ) for n, _ in want}]
        h.eq(got, list(want), what + ": forwarded fields (head %r)" % rq.raw_head[:600])
    for n in exp.get("absent", []):
        h.eq(rq.get_all(n), [], what + ": field %s forwarded (head %r)" % (n, rq.raw_head[:600]))
