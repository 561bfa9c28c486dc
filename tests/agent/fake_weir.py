"""A fake weir: the proxy side of the agent protocol, just enough to drive an
agent from a test (blocking sockets). Used by tests/agent/selftest.py to
check tests/agent/test_agent.py without weir.

    w = FakeWeir.unix(path)
    reply = w.handshake(events=wa.EV_ALL)
    w.request_headers(rid=1, method="GET", target="/", headers=[("Host", "x")], last=True)
    ftype, rid, flags, fields = w.read_frame()
"""

import socket
import struct
import time

import weir_agent as wa


class FakeWeir:
    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.max_frame = wa.MAX_FRAME_DEFAULT

    @classmethod
    def unix(cls, path, timeout=5.0):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(path)
        return cls(s)

    @classmethod
    def tcp(cls, port, timeout=5.0):
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        return cls(s)

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, ftype, rid, fields=None, flags=0):
        self.send_raw(wa.encode_frame(ftype, rid, fields, flags))

    def _fill(self):
        d = self.sock.recv(1 << 20)
        if not d:
            raise EOFError("agent closed the connection")
        self.buf += d

    def read_frame(self, timeout=None):
        """-> (type, rid, flags, fields dict); raises EOFError or socket.timeout."""
        old = self.sock.gettimeout()
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            while len(self.buf) < 4:
                self._fill()
            length = struct.unpack(">I", self.buf[:4])[0]
            if length < wa.LEN_MIN:
                raise ValueError("agent sent length %d" % length)
            while len(self.buf) < length + 4:
                self._fill()
            frame = bytes(self.buf[:length + 4])
            del self.buf[:length + 4]
        finally:
            self.sock.settimeout(old)
        _l, ftype, flags, reserved, rid = wa.HDR.unpack(frame[:16])
        pairs = wa.decode_payload(frame[16:])
        return ftype, rid, flags, dict(pairs)

    def read_raw(self, n, timeout=2.0):
        self.sock.settimeout(timeout)
        while len(self.buf) < n:
            self._fill()
        d = bytes(self.buf[:n])
        del self.buf[:n]
        return d

    def expect(self, ftype, rid=None, timeout=5.0, skip_pongs=True):
        while True:
            t, r, fl, f = self.read_frame(timeout)
            if skip_pongs and t == wa.PONG and ftype != wa.PONG:
                continue
            if t != ftype or (rid is not None and r != rid):
                raise AssertionError("expected %s id %s, got %s id %d %r" %
                                     (wa.TYPE_NAMES.get(ftype), rid, wa.TYPE_NAMES.get(t, t), r, f))
            return f, fl

    def handshake(self, events=wa.EV_ALL, caps=wa.CAP_CREDIT, max_frame=wa.MAX_FRAME_DEFAULT,
                  name="waf", reactor=0):
        self.send(wa.HELLO, 0, {wa.K_VERSION: 1, wa.K_CAPABILITIES: caps,
                                wa.K_MAX_FRAME: max_frame, wa.K_EVENTS: events,
                                wa.K_NAME: name, wa.K_REACTOR: reactor})
        f, _ = self.expect(wa.HELLO_REPLY, 0)
        return f

    def request_headers(self, rid, method="GET", target="/", headers=(), body_length=None,
                        last=False, uid=None, route="r", client=("127.0.0.1", 40000),
                        http_minor=1):
        flat = []
        for k, v in headers:
            flat += [k, v]
        f = {wa.K_METHOD: method, wa.K_TARGET: target, wa.K_HTTP_MINOR: http_minor,
             wa.K_HEADERS: flat, wa.K_CLIENT_ADDR: client[0], wa.K_CLIENT_PORT: client[1],
             wa.K_ROUTE: route, wa.K_UID: uid or "u-%d" % rid}
        if body_length is not None:
            f[wa.K_BODY_LENGTH] = body_length
        self.send(wa.REQUEST_HEADERS, rid, f, wa.F_LAST if last else 0)

    def body(self, rid, offset, data, last=False, ftype=wa.REQUEST_BODY):
        self.send(ftype, rid, {wa.K_OFFSET: offset, wa.K_DATA: bytes(data)},
                  wa.F_LAST if last else 0)

    def response_headers(self, rid, status=200, headers=(), body_length=None, last=False):
        flat = []
        for k, v in headers:
            flat += [k, v]
        f = {wa.K_STATUS: status, wa.K_HTTP_MINOR: 1, wa.K_HEADERS: flat}
        if body_length is not None:
            f[wa.K_BODY_LENGTH] = body_length
        self.send(wa.RESPONSE_HEADERS, rid, f, wa.F_LAST if last else 0)

    def done(self, rid, status=200, bytes_in=0, bytes_out=0, duration_us=1):
        self.send(wa.REQUEST_DONE, rid, {wa.K_STATUS: status, wa.K_BYTES_IN: bytes_in,
                                         wa.K_BYTES_OUT: bytes_out,
                                         wa.K_DURATION_US: duration_us})

    def cancel(self, rid, reason):
        self.send(wa.CANCEL, rid, {wa.K_CANCEL_REASON: reason})

    def ping(self, nonce):
        self.send(wa.PING, nonce, {})

    def closed_within(self, timeout):
        """True if the agent closes the connection within timeout (frames
        before the close are discarded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                return False
            except ConnectionError:
                return True
            if not d:
                return True
        return False
