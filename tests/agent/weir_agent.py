"""weir agent protocol, version 1: the agent side, in Python.

A second, independent implementation of docs/agent-protocol.md, written from
that page alone (not from weir's C code), so that the two can judge each
other. Standard library + msgpack (Debian's python3-msgpack).

It is also a protocol checker: everything weir sends is validated against the
spec (frame sizes, reserved bits, flags, key types, ids, offsets, LAST,
credit, subscriptions, id life cycle) and every deviation is recorded as a
Violation. A test agent (tests/agent/test_agent.py) builds on it.

    import weir_agent as wa

    class H(wa.Handler):
        def on_request(self, req):          # REQUEST_HEADERS
            if req.header("X-Bad"):
                req.block(status=403, body=b"no\\n")
            elif not req.no_body:
                pass                        # wait for the body
            else:
                req.allow()
        def on_body(self, req, offset, data, last):
            if last:
                req.allow()

    agent = wa.Agent(H(), events=wa.EV_REQUEST_HEADERS | wa.EV_REQUEST_BODY)
    asyncio.run(agent.serve_unix("/tmp/a.sock"))

Threading: everything runs on one asyncio loop; handler callbacks run on it
and may answer at once or later (loop.call_later, tasks).

The life cycle of an id, as the agent has to model it (spec "Ending a request
id"): an id opens with REQUEST_HEADERS and closes with REQUEST_DONE, CANCEL,
or silently: after the request-phase verdict when the agent gets neither
response events nor request_done; after the response-phase verdict and the
last response event otherwise. Blocks: with no request_done subscribed, a
block or redirect closes the id (no response will come). A silently closed
id stays "closing" until weir reuses it: body frames and CANCELs that crossed
the verdict are tolerated there (counted as late), anything else is a
violation.
"""

import asyncio
import hashlib
import os
import socket
import struct
import time

import msgpack

# ---------------------------------------------------------------------------
# values (docs/agent-protocol.md; uapi/weir/agent.h is normative)
# ---------------------------------------------------------------------------

VERSION = 1
HDR = struct.Struct(">IBBHQ")   # length, type, flags, reserved, request id
HDR_SIZE = 16
LEN_MIN = 12
MAX_FRAME_MIN = 64 * 1024
MAX_FRAME_DEFAULT = 256 * 1024
MAX_FRAME_CEIL = 16 * 1024 * 1024
MAX_IN_FLIGHT_CEIL = 4096

# message types
HELLO = 0x01
REQUEST_HEADERS = 0x02
REQUEST_BODY = 0x03
RESPONSE_HEADERS = 0x04
RESPONSE_BODY = 0x05
REQUEST_DONE = 0x06
CANCEL = 0x07
PING = 0x08
HELLO_REPLY = 0x81
VERDICT = 0x82
NEED_MORE = 0x83
CREDIT = 0x84
PONG = 0x85
GOAWAY = 0x86

TYPE_NAMES = {
    HELLO: "HELLO", REQUEST_HEADERS: "REQUEST_HEADERS", REQUEST_BODY: "REQUEST_BODY",
    RESPONSE_HEADERS: "RESPONSE_HEADERS", RESPONSE_BODY: "RESPONSE_BODY",
    REQUEST_DONE: "REQUEST_DONE", CANCEL: "CANCEL", PING: "PING",
    HELLO_REPLY: "HELLO_REPLY", VERDICT: "VERDICT", NEED_MORE: "NEED_MORE", CREDIT: "CREDIT",
    PONG: "PONG", GOAWAY: "GOAWAY",
}

F_LAST = 0x01

# events
EV_REQUEST_HEADERS = 0x01
EV_REQUEST_BODY = 0x02
EV_RESPONSE_HEADERS = 0x04
EV_RESPONSE_BODY = 0x08
EV_REQUEST_DONE = 0x10
EV_ALL = 0x1F
EVENT_NAMES = {
    "request_headers": EV_REQUEST_HEADERS, "request_body": EV_REQUEST_BODY,
    "response_headers": EV_RESPONSE_HEADERS, "response_body": EV_RESPONSE_BODY,
    "request_done": EV_REQUEST_DONE,
}

# capabilities
CAP_CREDIT = 0x01
CAP_SHM = 0x02

# keys
K_VERSION = 1
K_CAPABILITIES = 2
K_MAX_FRAME = 3
K_MAX_IN_FLIGHT = 4
K_EVENTS = 5
K_NAME = 6
K_BODY_WINDOW = 8
K_REACTOR = 9
K_METHOD = 10
K_TARGET = 11
K_HTTP_MINOR = 12
K_HEADERS = 13
K_CLIENT_ADDR = 14
K_CLIENT_PORT = 15
K_ROUTE = 16
K_BODY_LENGTH = 17
K_OFFSET = 18
K_DATA = 19
K_STATUS = 20
K_REASON = 21
K_ACTION = 22
K_PHASE = 23
K_LOCATION = 24
K_BODY = 25
K_REQ_SET = 26
K_REQ_ADD = 27
K_REQ_DEL = 28
K_RESP_SET = 29
K_RESP_ADD = 30
K_RESP_DEL = 31
K_TAGS = 32
K_RULE_IDS = 33
K_BYTES = 34
K_BYTES_IN = 35
K_BYTES_OUT = 36
K_DURATION_US = 37
K_CANCEL_REASON = 39
K_UID = 40
K_SCORE = 44
K_HEADERS_OUT = 45
K_BODY_REPLACE = 46

ALLOW = 0
BLOCK = 1
REDIRECT = 2
ACTION_NAMES = {ALLOW: "allow", BLOCK: "block", REDIRECT: "redirect"}

PHASE_REQUEST = 0
PHASE_RESPONSE = 1

CANCEL_CLIENT_GONE = 1
CANCEL_TIMEOUT = 2
CANCEL_BLOCKED = 3
CANCEL_UPSTREAM = 4
CANCEL_BODY_LIMIT = 5
CANCEL_SHUTDOWN = 6
CANCEL_ANSWERED = 7

MAX_MUTATIONS = 64
MAX_AUDIT = 64
MAX_NAME = 64

# ---------------------------------------------------------------------------
# encoding / decoding
# ---------------------------------------------------------------------------


def pack_payload(fields):
    """fields: dict {key: value} (insertion order kept on the wire) or None."""
    return msgpack.packb(fields or {}, use_bin_type=True)


def encode_frame(ftype, rid, fields=None, flags=0, payload=None):
    """One whole frame. payload (bytes) overrides fields (for broken frames)."""
    if payload is None:
        payload = pack_payload(fields)
    return HDR.pack(LEN_MIN + len(payload), ftype, flags, 0, rid) + payload


class Pairs(list):
    """A decoded MessagePack map, as its (key, value) pairs in wire order."""


class DecodeError(Exception):
    pass


def decode_payload(payload):
    """bytes -> Pairs of the top-level map. Raises DecodeError."""
    try:
        obj = msgpack.unpackb(payload, raw=False, strict_map_key=False,
                              object_pairs_hook=Pairs, unicode_errors="surrogateescape")
    except msgpack.ExtraData as e:
        raise DecodeError("payload holds more than one MessagePack object (%d extra bytes)" %
                          len(e.extra))
    except Exception as e:      # noqa: BLE001 - any unpack failure is a protocol error
        raise DecodeError("invalid MessagePack payload: %s: %s" % (type(e).__name__, e))
    if not isinstance(obj, Pairs):
        raise DecodeError("payload is a MessagePack %s, not a map" % type(obj).__name__)
    return obj


def is_uint(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_str(v):
    return isinstance(v, str)


def is_bin(v):
    return isinstance(v, bytes)


def is_str_array(v):
    return type(v) is list and all(isinstance(x, str) for x in v)


def is_pair_array(v):
    return is_str_array(v) and len(v) % 2 == 0


def utf8_ok(s):
    try:
        s.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def to_bytes(s):
    """A decoded str back to its wire bytes (surrogateescape round trip)."""
    return s.encode("utf-8", "surrogateescape")


# Schemas of weir's messages: key -> (name, checker, required)
_T_UINT = ("uint", is_uint)
_T_STR = ("str", is_str)
_T_BIN = ("bin", is_bin)
_T_HDRS = ("array of str (name/value pairs)", is_pair_array)

SCHEMAS = {
    HELLO: {K_VERSION: ("version", _T_UINT, True), K_CAPABILITIES: ("capabilities", _T_UINT, True),
            K_MAX_FRAME: ("max_frame", _T_UINT, True), K_EVENTS: ("events", _T_UINT, True),
            K_NAME: ("name", _T_STR, True), K_REACTOR: ("reactor", _T_UINT, True)},
    REQUEST_HEADERS: {K_METHOD: ("method", _T_STR, True), K_TARGET: ("target", _T_STR, True),
                      K_HTTP_MINOR: ("http_minor", _T_UINT, True),
                      K_HEADERS: ("headers", _T_HDRS, True),
                      K_CLIENT_ADDR: ("client_addr", _T_STR, True),
                      K_CLIENT_PORT: ("client_port", _T_UINT, True),
                      K_ROUTE: ("route", _T_STR, True), K_UID: ("uid", _T_STR, True),
                      K_BODY_LENGTH: ("body_length", _T_UINT, False)},
    REQUEST_BODY: {K_OFFSET: ("offset", _T_UINT, True), K_DATA: ("data", _T_BIN, True)},
    RESPONSE_HEADERS: {K_STATUS: ("status", _T_UINT, True),
                       K_HTTP_MINOR: ("http_minor", _T_UINT, True),
                       K_HEADERS: ("headers", _T_HDRS, True),
                       K_BODY_LENGTH: ("body_length", _T_UINT, False)},
    RESPONSE_BODY: {K_OFFSET: ("offset", _T_UINT, True), K_DATA: ("data", _T_BIN, True)},
    REQUEST_DONE: {K_STATUS: ("status", _T_UINT, True), K_BYTES_IN: ("bytes_in", _T_UINT, True),
                   K_BYTES_OUT: ("bytes_out", _T_UINT, True),
                   K_DURATION_US: ("duration_us", _T_UINT, True)},
    CANCEL: {K_CANCEL_REASON: ("cancel_reason", _T_UINT, True)},
    PING: {},
}


def check_schema(ftype, pairs):
    """-> (dict of known fields, [problem strings])."""
    problems = []
    schema = SCHEMAS.get(ftype, {})
    fields = {}
    seen = set()
    for k, v in pairs:
        if not is_int(k) or k <= 0:
            problems.append("map key %r is not a positive integer" % (k,))
            continue
        if k in seen:
            problems.append("duplicate map key %d" % k)
        seen.add(k)
        fields[k] = v
        if k in schema:
            name, (tname, check), _req = schema[k]
            if not check(v):
                problems.append("key %d (%s) is not %s: %r" % (k, name, tname, _short(v)))
    for k, (name, _t, req) in schema.items():
        if req and k not in fields:
            problems.append("required key %d (%s) missing" % (k, name))
    return fields, problems


def non_utf8(fields):
    """Notes for str values that are not valid UTF-8 (MessagePack str is
    UTF-8; weir passes header bytes as received: the spec does not say)."""
    notes = []
    for k, v in fields.items():
        if isinstance(v, str) and not utf8_ok(v):
            notes.append("key %d: str is not valid UTF-8: %r" % (k, _short(v)))
        if type(v) is list:
            for x in v:
                if isinstance(x, str) and not utf8_ok(x):
                    notes.append("key %d: array element str is not valid UTF-8: %r" %
                                 (k, _short(x)))
                    break
    return notes


def _short(v, n=80):
    r = repr(v)
    return r if len(r) <= n else r[:n] + "..."


def mask_names(mask):
    return [n for n, b in EVENT_NAMES.items() if mask & b]


def parse_events(text):
    """'request_headers,request_body' -> bit mask."""
    m = 0
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        if part not in EVENT_NAMES:
            raise ValueError("unknown event %r (expected one of %s)" %
                             (part, ", ".join(EVENT_NAMES)))
        m |= EVENT_NAMES[part]
    return m


# ---------------------------------------------------------------------------
# the state of one request id
# ---------------------------------------------------------------------------

class Request:
    """One request id on one connection, from REQUEST_HEADERS to its close."""

    def __init__(self, conn, rid, fields, flags):
        self.conn = conn
        self.rid = rid
        self.t_open = time.monotonic()
        self.t_close = None
        self.fields = fields
        self.method = fields.get(K_METHOD)
        self.target = fields.get(K_TARGET)
        self.http_minor = fields.get(K_HTTP_MINOR)
        raw = fields.get(K_HEADERS) or []
        self.headers = [(raw[i], raw[i + 1]) for i in range(0, len(raw) - 1, 2)]
        self.client_addr = fields.get(K_CLIENT_ADDR)
        self.client_port = fields.get(K_CLIENT_PORT)
        self.route = fields.get(K_ROUTE)
        self.uid = fields.get(K_UID)
        self.body_length = fields.get(K_BODY_LENGTH)
        self.no_body = bool(flags & F_LAST)
        self.events = ["request_headers"]
        # request body
        self.body_frames = 0
        self.body_bytes = 0
        self.body_sha = hashlib.sha256()
        self.first_offset = None
        self.next_offset = None
        self.offsets_ok = True
        self.body_last = self.no_body
        self.max_body_frame = 0
        self.late_body_frames = 0       # after our request-phase verdict
        self.late_body_bytes = 0
        self.need_more = False
        # flow control
        self.credit = None              # bytes weir may still send (None: unlimited)
        self.credit_granted = 0
        # response
        self.resp_status = None
        self.resp_headers = None
        self.resp_body_length = None
        self.resp_no_body = False
        self.resp_body_frames = 0
        self.resp_body_bytes = 0
        self.resp_sha = hashlib.sha256()
        self.resp_next_offset = 0
        self.resp_offsets_ok = True
        self.resp_body_last = False
        # outcome
        self.verdict = None             # request-phase verdict fields sent
        self.t_verdict = None
        self.resp_verdict = None        # response-phase verdict fields sent
        self.done = None                # REQUEST_DONE fields
        self.cancel_reason = None
        self.close_how = None           # done | cancel | silent | conn_closed
        self.violations = []
        self.notes = []
        self.user = {}                  # handler state

    # -- lookups
    def header(self, name, default=None):
        n = name.lower()
        for k, v in self.headers:
            if k.lower() == n:
                return v
        return default

    def header_all(self, name):
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    @property
    def is_open(self):
        return self.close_how is None

    @property
    def body_sha256(self):
        return self.body_sha.hexdigest()

    # -- answers (no-ops, recorded, once the id is closed)
    def verdict_send(self, action, phase=PHASE_REQUEST, **fields):
        return self.conn.send_verdict(self, action, phase, **fields)

    def allow(self, phase=PHASE_REQUEST, **fields):
        return self.conn.send_verdict(self, ALLOW, phase, **fields)

    def block(self, phase=PHASE_REQUEST, **fields):
        return self.conn.send_verdict(self, BLOCK, phase, **fields)

    def redirect(self, location, phase=PHASE_REQUEST, **fields):
        return self.conn.send_verdict(self, REDIRECT, phase, location=location, **fields)

    def need_more_send(self):
        return self.conn.send_need_more(self)

    def credit_send(self, n):
        return self.conn.send_credit(self, n)

    def summary(self):
        return {
            "conn": self.conn.cid, "rid": self.rid, "uid": self.uid, "method": self.method,
            "target": self.target, "route": self.route, "http_minor": self.http_minor,
            "client_addr": self.client_addr, "client_port": self.client_port,
            "headers": [[k, v] for k, v in self.headers],
            "body_length": self.body_length, "no_body": self.no_body,
            "events": self.events, "need_more": self.need_more,
            "body_frames": self.body_frames, "body_bytes": self.body_bytes,
            "body_sha256": self.body_sha256, "first_offset": self.first_offset,
            "offsets_ok": self.offsets_ok, "body_last": self.body_last,
            "max_body_frame": self.max_body_frame,
            "late_body_frames": self.late_body_frames, "late_body_bytes": self.late_body_bytes,
            "credit_granted": self.credit_granted,
            "resp_status": self.resp_status, "resp_body_bytes": self.resp_body_bytes,
            "resp_body_sha256": self.resp_sha.hexdigest() if self.resp_body_frames else None,
            "resp_offsets_ok": self.resp_offsets_ok, "resp_body_last": self.resp_body_last,
            "verdict": _jsonable(self.verdict), "resp_verdict": _jsonable(self.resp_verdict),
            "done": _jsonable(self.done), "cancel_reason": self.cancel_reason,
            "closed": self.close_how,
            "ms_open": round(((self.t_close or time.monotonic()) - self.t_open) * 1000, 3),
            "violations": self.violations, "notes": self.notes,
        }


def _jsonable(d):
    if d is None:
        return None
    out = {}
    for k, v in d.items():
        if isinstance(v, bytes):
            v = v.decode("latin-1")
        out[str(k)] = v
    return out


# names of verdict fields (send_verdict keyword -> key)
VERDICT_KEYS = {
    "status": K_STATUS, "reason": K_REASON, "location": K_LOCATION, "body": K_BODY,
    "req_set": K_REQ_SET, "req_add": K_REQ_ADD, "req_del": K_REQ_DEL,
    "resp_set": K_RESP_SET, "resp_add": K_RESP_ADD, "resp_del": K_RESP_DEL,
    "tags": K_TAGS, "rule_ids": K_RULE_IDS, "score": K_SCORE, "headers_out": K_HEADERS_OUT, "body_replace": K_BODY_REPLACE,
}


def _flatten_pairs(v):
    """[(n, v), ...] or ["n", "v", ...] -> ["n", "v", ...]."""
    out = []
    for x in v:
        if isinstance(x, (tuple, list)):
            out.extend(x)
        else:
            out.append(x)
    return out


# ---------------------------------------------------------------------------
# handler interface
# ---------------------------------------------------------------------------

class Handler:
    """Override what you need. All callbacks run on the agent's asyncio loop."""

    def hello_reply(self, conn, hello):
        """Return the HELLO_REPLY fields to send (dict), None for the agent's
        defaults, or False to send nothing (tests of weir's handshake)."""
        return None

    def on_connect(self, conn):
        pass

    def on_request(self, req):
        """REQUEST_HEADERS. Default: allow at once."""
        req.allow()

    def on_body(self, req, offset, data, last):
        pass

    def on_response(self, req):
        """RESPONSE_HEADERS. Default: allow the response."""
        req.allow(phase=PHASE_RESPONSE)

    def on_response_body(self, req, offset, data, last):
        pass

    def on_closed(self, req):
        """The id closed (req.close_how: done | cancel | silent | conn_closed)."""

    def on_disconnect(self, conn):
        pass

    def on_late_body(self, req, offset, n, last):
        """A REQUEST_BODY frame after our request-phase verdict (it crossed
        the verdict, or weir kept sending)."""

    def on_violation(self, conn, v):
        """v: dict(conn, rid, type, msg)."""

    def on_ping(self, conn, nonce):
        """Return False to withhold the PONG."""
        return True


# ---------------------------------------------------------------------------
# a connection from weir
# ---------------------------------------------------------------------------

GOAWAY_GRACE_S = 0.2      # new ids later than this after our GOAWAY are violations


class Connection:
    def __init__(self, agent, reader, writer, cid):
        self.agent = agent
        self.handler = agent.handler
        self.reader = reader
        self.writer = writer
        self.cid = cid
        self.t_start = time.monotonic()
        self.hello = None
        self.reply = None
        self.reply_sent = False
        self.weir_max_frame = MAX_FRAME_DEFAULT   # limit on what we send
        self.my_max_frame = agent.max_frame
        self.events = 0            # effective events weir may send us
        self.credit_on = False
        self.body_window = 0
        self.max_in_flight = agent.max_in_flight
        self.open = {}             # rid -> Request
        self.closing = {}          # rid -> Request (closed silently, late frames tolerated)
        self.seen_ids = set()
        self.requests = 0
        self.max_open = 0
        self.pings = 0
        self.goaway_at = None
        self.closed = False
        self.close_reason = None
        self.frames_in = 0
        self.bytes_in = 0
        self.broken = False        # we sent something broken on purpose
        self.held = []             # frames that came before our HELLO_REPLY left

    # -- utilities
    def violation(self, msg, rid=None, ftype=None, req=None):
        v = {"conn": self.cid, "rid": rid, "type": TYPE_NAMES.get(ftype, ftype), "msg": msg,
             "t": round(time.monotonic() - self.agent.t0, 4)}
        if req is not None:
            v["uid"] = req.uid
            req.violations.append(msg)
        self.agent.violations.append(v)
        try:
            self.handler.on_violation(self, v)
        except Exception:       # noqa: BLE001 - a handler bug must not hide the violation
            pass

    def note(self, msg, req=None):
        n = {"conn": self.cid, "msg": msg}
        if req is not None:
            req.notes.append(msg)
            n["uid"] = req.uid
        self.agent.notes.append(n)

    def write(self, data):
        if self.closed or self.writer.is_closing():
            return False
        self.writer.write(data)
        return True

    def send(self, ftype, rid, fields=None, flags=0):
        payload = pack_payload(fields)
        size = HDR_SIZE + len(payload)
        if size > self.weir_max_frame and not self.broken:
            raise ValueError("frame of %d bytes over weir's max_frame %d" %
                             (size, self.weir_max_frame))
        return self.write(HDR.pack(LEN_MIN + len(payload), ftype, flags, 0, rid) + payload)

    def abort(self, rst=False):
        """Close the connection now (rst: with SO_LINGER 0 -> RST)."""
        if rst:
            sock = self.writer.get_extra_info("socket")
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
            self.writer.transport.abort()
        else:
            self.writer.close()

    # -- answers
    def send_verdict(self, req, action, phase=PHASE_REQUEST, **kw):
        """Send a VERDICT for req. Returns False (and sends nothing) when the
        id is no longer open."""
        if not req.is_open:
            return False
        if phase == PHASE_REQUEST and req.verdict is not None:
            raise ValueError("request-phase verdict already sent for %d" % req.rid)
        if phase == PHASE_RESPONSE and req.resp_verdict is not None:
            raise ValueError("response-phase verdict already sent for %d" % req.rid)
        fields = {K_ACTION: action, K_PHASE: phase}
        for name, value in kw.items():
            if value is None:
                continue
            key = VERDICT_KEYS[name]
            if key in (K_REQ_SET, K_REQ_ADD, K_RESP_SET, K_RESP_ADD, K_HEADERS_OUT):
                value = _flatten_pairs(value)
            fields[key] = value
        self.send(VERDICT, req.rid, fields)
        rec = dict(fields)
        rec = {("action" if k == K_ACTION else "phase" if k == K_PHASE else
                next((n for n, kk in VERDICT_KEYS.items() if kk == k), str(k))): v
               for k, v in rec.items()}
        rec["action"] = ACTION_NAMES.get(action, action)
        if phase == PHASE_REQUEST:
            req.verdict = rec
            req.t_verdict = time.monotonic()
        else:
            req.resp_verdict = rec
        self._maybe_close_silently(req)
        return True

    def send_need_more(self, req):
        if not req.is_open:
            return False
        req.need_more = True
        self.send(NEED_MORE, req.rid, {})
        return True

    def send_credit(self, req, n):
        if not req.is_open or n <= 0:
            return False
        if req.credit is not None:
            req.credit += n
        req.credit_granted += n
        self.send(CREDIT, req.rid, {K_BYTES: n})
        return True

    def send_goaway(self, reason=None):
        self.goaway_at = time.monotonic()
        self.send(GOAWAY, 0, {K_REASON: reason} if reason else {})

    # -- the id life cycle
    def _close(self, req, how):
        if req.close_how is not None:
            return
        req.close_how = how
        req.t_close = time.monotonic()
        self.open.pop(req.rid, None)
        if how == "silent":
            self.closing[req.rid] = req
            if len(self.closing) > 100000:
                self.closing.pop(next(iter(self.closing)))
        self.handler.on_closed(req)

    def _maybe_close_silently(self, req):
        ev = self.events
        if req.verdict is None or not req.is_open:
            return
        if ev & EV_REQUEST_DONE:
            return                                      # REQUEST_DONE or CANCEL closes it
        if req.verdict["action"] != "allow":
            self._close(req, "silent")                  # no response will be inspected
            return
        if not ev & (EV_RESPONSE_HEADERS | EV_RESPONSE_BODY):
            self._close(req, "silent")
            return
        if req.resp_status is None or req.resp_verdict is None:
            return
        if req.resp_verdict["action"] != "allow":
            self._close(req, "silent")
            return
        if not ev & EV_RESPONSE_BODY or req.resp_no_body or req.resp_body_last:
            self._close(req, "silent")

    # -- the connection
    async def run(self):
        try:
            await self._loop()
        except (asyncio.IncompleteReadError, ConnectionError) as e:
            if isinstance(e, asyncio.IncompleteReadError) and e.partial:
                self.note("weir closed the connection mid-frame (%d bytes of a frame)" %
                          len(e.partial))
            self.close_reason = "eof" if isinstance(e, asyncio.IncompleteReadError) else str(e)
        except _Stop as e:
            self.close_reason = str(e)
        except Exception as e:     # noqa: BLE001 - report, never kill the agent
            self.close_reason = "agent error: %s: %s" % (type(e).__name__, e)
            self.agent.errors.append(self.close_reason)
            import traceback
            traceback.print_exc()
        finally:
            self.closed = True
            try:
                self.writer.close()
            except Exception:   # noqa: BLE001
                pass
            for req in list(self.open.values()):
                self._close(req, "conn_closed")
            self.agent.connections.pop(self.cid, None)
            try:
                self.handler.on_disconnect(self)
            except Exception:   # noqa: BLE001
                import traceback
                traceback.print_exc()

    async def _read_frame(self):
        hdr = await self.reader.readexactly(HDR_SIZE)
        length, ftype, flags, reserved, rid = HDR.unpack(hdr)
        if length < LEN_MIN:
            # cannot resynchronise: the stream is lost
            self.violation("frame length field %d below %d (header bytes %s)" %
                           (length, LEN_MIN, hdr.hex()), rid, ftype)
            raise _Stop("bad frame length")
        size = length + 4
        if size > self.my_max_frame:
            self.violation("frame of %d bytes over the agent's max_frame %d" %
                           (size, self.my_max_frame), rid, ftype)
        payload = await self.reader.readexactly(length - LEN_MIN)
        self.frames_in += 1
        self.bytes_in += size
        return ftype, flags, reserved, rid, payload, size

    async def _loop(self):
        # 1. HELLO
        ftype, flags, reserved, rid, payload, size = await self._read_frame()
        if ftype != HELLO:
            self.violation("first frame is %s, not HELLO" % TYPE_NAMES.get(ftype, hex(ftype)),
                           rid, ftype)
            raise _Stop("no HELLO")
        self._check_common(ftype, flags, reserved, rid)
        if rid != 0:
            self.violation("HELLO with request id %d (must be 0)" % rid, rid, ftype)
        try:
            pairs = decode_payload(payload)
        except DecodeError as e:
            self.violation(str(e), rid, ftype)
            raise _Stop("bad HELLO")
        fields, problems = check_schema(HELLO, pairs)
        for p in problems:
            self.violation(p, rid, ftype)
        self.hello = fields
        if fields.get(K_VERSION) != VERSION:
            self.violation("HELLO version %r, expected %d" % (fields.get(K_VERSION), VERSION),
                           rid, ftype)
        mf = fields.get(K_MAX_FRAME)
        if is_uint(mf):
            if mf < MAX_FRAME_MIN:
                self.violation("HELLO max_frame %d below the minimum %d" % (mf, MAX_FRAME_MIN),
                               rid, ftype)
            self.weir_max_frame = max(MAX_FRAME_MIN, min(mf, MAX_FRAME_CEIL))
        hello_events = fields.get(K_EVENTS) if is_uint(fields.get(K_EVENTS)) else EV_ALL
        if hello_events & ~EV_ALL:
            self.violation("HELLO events has unknown bits 0x%x" % hello_events, rid, ftype)
        weir_caps = fields.get(K_CAPABILITIES) if is_uint(fields.get(K_CAPABILITIES)) else 0

        reply = self.handler.hello_reply(self, fields)
        if reply is False:
            # no reply: keep reading what weir sends (it must close us)
            self.reply = None
        else:
            if reply is None:
                reply = self.agent.default_reply()
            self.reply = reply
            my_events = reply.get(K_EVENTS, 0) if is_uint(reply.get(K_EVENTS, 0)) else 0
            ev = my_events & hello_events
            if ev & EV_RESPONSE_BODY:
                ev |= EV_RESPONSE_HEADERS
            self.events = ev
            my_caps = reply.get(K_CAPABILITIES, 0) if is_uint(reply.get(K_CAPABILITIES, 0)) else 0
            self.credit_on = bool(my_caps & weir_caps & CAP_CREDIT)
            self.body_window = reply.get(K_BODY_WINDOW, 0) if self.credit_on else 0
            mf = reply.get(K_MAX_FRAME)
            if is_uint(mf):
                self.my_max_frame = max(MAX_FRAME_MIN, min(mf, MAX_FRAME_CEIL))
            mif = reply.get(K_MAX_IN_FLIGHT)
            self.max_in_flight = mif if is_uint(mif) and mif else MAX_IN_FLIGHT_CEIL
            self.max_in_flight = min(self.max_in_flight, MAX_IN_FLIGHT_CEIL)
            delay = self.agent.hello_delay
            if delay > 0:
                asyncio.get_running_loop().call_later(delay, self._send_reply)
            else:
                self._send_reply()
        self.handler.on_connect(self)
        # 2. frames
        while True:
            ftype, flags, reserved, rid, payload, size = await self._read_frame()
            if not self.reply_sent:
                # nothing may precede our HELLO_REPLY: hold the frame until it left
                name = TYPE_NAMES.get(ftype, hex(ftype))
                self.violation("%s received before the agent's HELLO_REPLY was sent" % name,
                               rid, ftype)
                if self.reply is not None:
                    self.held.append((ftype, flags, reserved, rid, payload, size))
                    continue
            self._dispatch(ftype, flags, reserved, rid, payload, size)

    def _send_reply(self):
        if self.closed:
            return
        payload = self.agent.reply_payload_override or pack_payload(self.reply)
        self.write(HDR.pack(LEN_MIN + len(payload), HELLO_REPLY, 0, 0, 0) + payload)
        self.reply_sent = True
        held, self.held = self.held, []
        for f in held:
            self._dispatch(*f)

    def _check_common(self, ftype, flags, reserved, rid):
        if reserved != 0:
            self.violation("reserved field 0x%04x is not zero" % reserved, rid, ftype)
        if flags & ~F_LAST:
            self.violation("flags 0x%02x: bits other than LAST set" % flags, rid, ftype)
        if flags & F_LAST and ftype not in (REQUEST_HEADERS, REQUEST_BODY, RESPONSE_HEADERS,
                                            RESPONSE_BODY):
            self.note("LAST flag on %s (meaning undefined)" % TYPE_NAMES.get(ftype, ftype))

    def _dispatch(self, ftype, flags, reserved, rid, payload, size):
        name = TYPE_NAMES.get(ftype)
        if name is None or ftype & 0x80:
            self.violation("unknown or agent-to-weir message type 0x%02x" % ftype, rid, ftype)
            return
        self._check_common(ftype, flags, reserved, rid)
        if ftype == HELLO:
            self.violation("second HELLO", rid, ftype)
            return
        try:
            pairs = decode_payload(payload)
        except DecodeError as e:
            self.violation(str(e), rid, ftype)
            return
        fields, problems = check_schema(ftype, pairs)
        if ftype == PING:
            if fields:
                self.note("PING with a non-empty payload")
            self.pings += 1
            if self.handler.on_ping(self, rid):
                self.send(PONG, rid, {})
            return
        if rid == 0:
            self.violation("%s with request id 0" % name, rid, ftype)
            return
        if ftype == REQUEST_HEADERS:
            self._on_request_headers(rid, flags, fields, problems)
            return
        req = self.open.get(rid)
        if req is None:
            late = self.closing.get(rid)
            if late is not None and ftype == REQUEST_BODY:
                late.late_body_frames += 1
                late.late_body_bytes += len(fields.get(K_DATA) or b"")
                self.handler.on_late_body(late, fields.get(K_OFFSET),
                                          len(fields.get(K_DATA) or b""), flags & F_LAST)
                return
            if late is not None and ftype == CANCEL:
                self.note("CANCEL %r for id %d after our verdict closed it (crossed)" %
                          (fields.get(K_CANCEL_REASON), rid), late)
                return
            if late is not None:
                self.violation("%s for id %d, closed by our verdict (spec: 'closes silently')" %
                               (name, rid), rid, ftype, late)
                return
            if rid in self.seen_ids:
                self.violation("%s for id %d after REQUEST_DONE/CANCEL closed it" % (name, rid),
                               rid, ftype)
            else:
                self.violation("%s for id %d never opened" % (name, rid), rid, ftype)
            return
        for p in problems:
            self.violation(p, rid, ftype, req)
        if ftype == REQUEST_BODY:
            self._on_request_body(req, flags, fields, size)
        elif ftype == RESPONSE_HEADERS:
            self._on_response_headers(req, flags, fields)
        elif ftype == RESPONSE_BODY:
            self._on_response_body(req, flags, fields, size)
        elif ftype == REQUEST_DONE:
            if not self.events & EV_REQUEST_DONE:
                self.violation("REQUEST_DONE but request_done not subscribed", rid, ftype, req)
            req.events.append("request_done")
            req.done = {"status": fields.get(K_STATUS), "bytes_in": fields.get(K_BYTES_IN),
                        "bytes_out": fields.get(K_BYTES_OUT),
                        "duration_us": fields.get(K_DURATION_US)}
            self._close(req, "done")
        elif ftype == CANCEL:
            reason = fields.get(K_CANCEL_REASON)
            if not (is_uint(reason) and 1 <= reason <= 7):
                self.violation("CANCEL reason %r not in 1..7" % (reason,), rid, ftype, req)
            req.events.append("cancel")
            req.cancel_reason = reason
            self._close(req, "cancel")

    def _on_request_headers(self, rid, flags, fields, problems):
        if rid in self.open:
            self.violation("REQUEST_HEADERS for id %d, which is still open" % rid, rid,
                           REQUEST_HEADERS, self.open[rid])
            self._close(self.open[rid], "reopened")
        self.closing.pop(rid, None)
        if self.goaway_at is not None and time.monotonic() - self.goaway_at > GOAWAY_GRACE_S:
            self.violation("REQUEST_HEADERS %.0f ms after our GOAWAY" %
                           ((time.monotonic() - self.goaway_at) * 1000), rid, REQUEST_HEADERS)
        req = Request(self, rid, fields, flags)
        self.seen_ids.add(rid)
        self.requests += 1
        self.agent.requests += 1
        for p in problems:
            self.violation(p, rid, REQUEST_HEADERS, req)
        for n in non_utf8(fields):
            self.note(n, req)
        self.open[rid] = req
        if len(self.open) > self.max_in_flight:
            self.violation("%d open ids, over our max_in_flight %d" %
                           (len(self.open), self.max_in_flight), rid, REQUEST_HEADERS, req)
        self.max_open = max(self.max_open, len(self.open))
        self.agent.note_open()
        if self.credit_on and self.body_window:
            req.credit = self.body_window
        # consistency of the head
        if req.http_minor not in (0, 1, None):
            self.violation("http_minor %r not 0 or 1" % req.http_minor, rid, REQUEST_HEADERS, req)
        if req.client_port is not None and is_uint(req.client_port) and req.client_port > 65535:
            self.violation("client_port %d > 65535" % req.client_port, rid, REQUEST_HEADERS, req)
        cls = req.header_all("Content-Length")
        te = req.header_all("Transfer-Encoding")
        if req.body_length is not None:
            if te:
                self.violation("body_length %d with Transfer-Encoding %r" % (req.body_length, te),
                               rid, REQUEST_HEADERS, req)
            if cls and cls[0].strip().isdigit() and int(cls[0]) != req.body_length:
                self.violation("body_length %d but Content-Length %r" % (req.body_length, cls),
                               rid, REQUEST_HEADERS, req)
            if req.no_body and req.body_length:
                self.violation("LAST (no body) with body_length %d" % req.body_length,
                               rid, REQUEST_HEADERS, req)
        elif cls and not te and not (req.no_body and cls[0].strip() == "0"):
            # (Content-Length: 0 with LAST: a request "without a body", no body_length)
            self.violation("Content-Length %r but no body_length" % cls, rid, REQUEST_HEADERS, req)
        if te and req.no_body:
            self.violation("LAST (no body) on a request with Transfer-Encoding %r" % te,
                           rid, REQUEST_HEADERS, req)
        self.handler.on_request(req)

    def _on_request_body(self, req, flags, fields, size):
        rid = req.rid
        data = fields.get(K_DATA)
        offset = fields.get(K_OFFSET)
        if not is_bin(data):
            data = b""
        if "request_body" not in req.events:
            req.events.append("request_body")
        if not (self.events & EV_REQUEST_BODY or req.need_more):
            self.violation("REQUEST_BODY without request_body subscribed or NEED_MORE", rid,
                           REQUEST_BODY, req)
        if K_DATA in fields and list(fields)[-1] != K_DATA:
            self.violation("data (key 19) is not the last key of REQUEST_BODY", rid,
                           REQUEST_BODY, req)
        if req.no_body:
            self.violation("REQUEST_BODY for a request whose head had LAST", rid, REQUEST_BODY, req)
        if req.body_last and not req.no_body:
            self.violation("REQUEST_BODY after the LAST body frame", rid, REQUEST_BODY, req)
        if req.verdict is not None:
            req.late_body_frames += 1
            req.late_body_bytes += len(data)
            self.handler.on_late_body(req, offset, len(data), flags & F_LAST)
        req.body_frames += 1
        req.max_body_frame = max(req.max_body_frame, size)
        if is_uint(offset):
            if req.next_offset is None:
                req.first_offset = offset
                if offset != 0 and not req.need_more:
                    req.offsets_ok = False
                    self.violation("first REQUEST_BODY offset %d, expected 0" % offset, rid,
                                   REQUEST_BODY, req)
                elif offset != 0:
                    self.note("late join after NEED_MORE: first offset %d" % offset, req)
            elif offset != req.next_offset:
                req.offsets_ok = False
                self.violation("REQUEST_BODY offset %d, expected %d" % (offset, req.next_offset),
                               rid, REQUEST_BODY, req)
            req.next_offset = offset + len(data)
        else:
            req.offsets_ok = False
        req.body_bytes += len(data)
        req.body_sha.update(data)
        if req.credit is not None:
            req.credit -= len(data)
            if req.credit < 0:
                self.violation("REQUEST_BODY over the credit by %d bytes (window %d, granted %d)"
                               % (-req.credit, self.body_window, req.credit_granted),
                               rid, REQUEST_BODY, req)
        if req.body_length is not None and req.next_offset is not None and \
                req.next_offset > req.body_length:
            self.violation("REQUEST_BODY past body_length %d (to %d)" %
                           (req.body_length, req.next_offset), rid, REQUEST_BODY, req)
        last = bool(flags & F_LAST)
        if last:
            req.body_last = True
            if req.body_length is not None and req.next_offset is not None and \
                    req.next_offset != req.body_length and req.offsets_ok and \
                    req.first_offset == 0:
                self.violation("last REQUEST_BODY ends at %d, body_length %d" %
                               (req.next_offset, req.body_length), rid, REQUEST_BODY, req)
        if req.verdict is None:
            self.handler.on_body(req, offset, data, last)

    def _on_response_headers(self, req, flags, fields):
        rid = req.rid
        req.events.append("response_headers")
        if not self.events & EV_RESPONSE_HEADERS:
            self.violation("RESPONSE_HEADERS but response_headers not subscribed", rid,
                           RESPONSE_HEADERS, req)
        if req.resp_status is not None:
            self.violation("second RESPONSE_HEADERS", rid, RESPONSE_HEADERS, req)
        if req.verdict is None:
            self.note("RESPONSE_HEADERS before our request-phase verdict", req)
        elif req.verdict["action"] != "allow":
            self.violation("RESPONSE_HEADERS after our block/redirect", rid, RESPONSE_HEADERS, req)
        req.resp_status = fields.get(K_STATUS)
        raw = fields.get(K_HEADERS) or []
        req.resp_headers = [(raw[i], raw[i + 1]) for i in range(0, len(raw) - 1, 2)]
        req.resp_body_length = fields.get(K_BODY_LENGTH)
        req.resp_no_body = bool(flags & F_LAST)
        if req.resp_no_body and req.resp_body_length:
            self.violation("RESPONSE_HEADERS LAST with body_length %d" % req.resp_body_length,
                           rid, RESPONSE_HEADERS, req)
        if is_uint(req.resp_status) and not 100 <= req.resp_status <= 999:
            self.violation("RESPONSE_HEADERS status %d" % req.resp_status, rid,
                           RESPONSE_HEADERS, req)
        self.handler.on_response(req)

    def _on_response_body(self, req, flags, fields, size):
        rid = req.rid
        data = fields.get(K_DATA)
        offset = fields.get(K_OFFSET)
        if not is_bin(data):
            data = b""
        if "response_body" not in req.events:
            req.events.append("response_body")
        if not self.events & EV_RESPONSE_BODY:
            self.violation("RESPONSE_BODY but response_body not subscribed", rid,
                           RESPONSE_BODY, req)
        if K_DATA in fields and list(fields)[-1] != K_DATA:
            self.violation("data (key 19) is not the last key of RESPONSE_BODY", rid,
                           RESPONSE_BODY, req)
        if req.resp_status is None:
            self.violation("RESPONSE_BODY before RESPONSE_HEADERS", rid, RESPONSE_BODY, req)
        if req.resp_no_body:
            self.violation("RESPONSE_BODY for a response whose head had LAST", rid,
                           RESPONSE_BODY, req)
        if req.resp_body_last:
            self.violation("RESPONSE_BODY after the LAST response body frame", rid,
                           RESPONSE_BODY, req)
        if is_uint(offset) and offset != req.resp_next_offset:
            req.resp_offsets_ok = False
            self.violation("RESPONSE_BODY offset %d, expected %d" % (offset, req.resp_next_offset),
                           rid, RESPONSE_BODY, req)
        req.resp_next_offset = (offset if is_uint(offset) else req.resp_next_offset) + len(data)
        req.resp_body_frames += 1
        req.resp_body_bytes += len(data)
        req.resp_sha.update(data)
        last = bool(flags & F_LAST)
        if last:
            req.resp_body_last = True
            if req.resp_body_length is not None and req.resp_next_offset != req.resp_body_length:
                self.violation("last RESPONSE_BODY ends at %d, body_length %d" %
                               (req.resp_next_offset, req.resp_body_length), rid,
                               RESPONSE_BODY, req)
        self.handler.on_response_body(req, offset, data, last)
        if last:
            self._maybe_close_silently(req)


class _Stop(Exception):
    pass


# ---------------------------------------------------------------------------
# the agent (a listening server)
# ---------------------------------------------------------------------------

class Agent:
    def __init__(self, handler, events=EV_REQUEST_HEADERS, capabilities=0, max_frame=None,
                 max_in_flight=None, body_window=None, name=None, hello_delay=0.0):
        self.handler = handler
        self.events = events
        self.capabilities = capabilities
        self.max_frame = max_frame or MAX_FRAME_DEFAULT
        self.max_in_flight = max_in_flight or MAX_IN_FLIGHT_CEIL
        self.body_window = body_window
        self.name = name
        self.hello_delay = hello_delay
        self.reply_payload_override = None     # raw HELLO_REPLY payload bytes (tests)
        self.connections = {}
        self.next_cid = 1
        self.violations = []
        self.notes = []
        self.errors = []
        self.requests = 0
        self.max_open_total = 0
        self.t0 = time.monotonic()
        self.server = None

    def default_reply(self):
        r = {K_VERSION: VERSION, K_CAPABILITIES: self.capabilities, K_MAX_FRAME: self.max_frame,
             K_MAX_IN_FLIGHT: self.max_in_flight, K_EVENTS: self.events}
        if self.name:
            r[K_NAME] = self.name
        if self.body_window is not None:
            r[K_BODY_WINDOW] = self.body_window
        return r

    def open_total(self):
        return sum(len(c.open) for c in self.connections.values())

    def note_open(self):
        n = self.open_total()
        if n > self.max_open_total:
            self.max_open_total = n

    async def _accept(self, reader, writer):
        cid = self.next_cid
        self.next_cid += 1
        conn = Connection(self, reader, writer, cid)
        self.connections[cid] = conn
        await conn.run()

    async def serve_unix(self, path):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        self.server = await asyncio.start_unix_server(self._accept, path=path,
                                                      limit=MAX_FRAME_CEIL + 64, backlog=1024)
        return self.server

    async def serve_tcp(self, port, host="127.0.0.1"):
        self.server = await asyncio.start_server(self._accept, host=host, port=port,
                                                 limit=MAX_FRAME_CEIL + 64, backlog=1024,
                                                 reuse_address=True)
        return self.server
