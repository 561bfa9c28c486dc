#!/usr/bin/python3
"""A test agent for weir's integration tests, on tests/agent/weir_agent.py.

    /usr/bin/python3 tests/agent/test_agent.py (--unix PATH | --tcp PORT) --log FILE
        [--events request_headers,request_body,...] [--window N] [--max-frame N]
        [--max-in-flight N] [--name NAME] [--hello-delay-ms MS]
        [--hello normal|none|bad-version|no-events|garbage] [--no-pong]
        [--tag-header X-Test-Id] [--log-open] [--mark]

Prints "ready" on stdout once listening. SIGTERM/SIGINT: writes an "exit"
line to the log and exits 0.

What it does with a request is chosen by the request's own header fields
(names case-insensitive; "repeatable" fields may appear several times):

  X-Agent-Action: allow (default) | block | redirect | stall | close | rst |
        close-mid-frame | garbage | oversize | unknown-id | zero-id |
        bad-msgpack | bad-verdict | bad-status | bad-type | goaway
      stall: never answer (the id ends by CANCEL or with the connection).
      close / rst: close the connection (FIN / RST) instead of answering.
      close-mid-frame: write half of the VERDICT frame, then close.
      garbage: bytes that are no frame (length field 5).
      oversize: a VERDICT frame one byte over weir's max_frame.
      unknown-id: a VERDICT for an id weir never opened (then nothing).
      zero-id: a VERDICT with request id 0.
      bad-msgpack: a VERDICT whose payload is not MessagePack (0xc1).
      bad-verdict: a VERDICT with action 9.  bad-status: block with status 99.
      bad-type: a frame of the unknown type 0x99 (then the normal verdict).
      bad-redirect: redirect with status 200.  redirect-no-location: redirect
      without location.  bad-mutation: req_add with 65
      pairs.  bad-header-value: resp_set with CR LF in a value.
      goaway: send GOAWAY, then answer allow.
  X-Agent-Status: N          block / redirect status
  X-Agent-Body: TEXT         block body (MessagePack bin; str with X-Agent-Body-Str: 1)
  X-Agent-Body-Size: N       block body of N bytes (the origin's size=N pattern)
  X-Agent-Location: URL      redirect target
  X-Agent-Header: N: V       block/redirect response field (repeatable)
  X-Agent-Req-Set|Req-Add: N: V, X-Agent-Req-Del: N     request mutations (repeatable)
  X-Agent-Replace-Body: TEXT   allow with body_replace = TEXT (buffer mode)
  X-Agent-Resp-Set|Resp-Add: N: V, X-Agent-Resp-Del: N  response mutations (repeatable)
  X-Agent-Reason, X-Agent-Tags (comma list), X-Agent-Rule-Ids (comma list), X-Agent-Score
  X-Agent-Delay-Ms: MS       wait before the request-phase verdict
  X-Agent-After-Bytes: N     answer once N body bytes arrived (block part way
                             through a body); default: after the last body
                             frame when the body is coming, else on the headers
  X-Agent-Need-More: 1       answer REQUEST_HEADERS with NEED_MORE, then wait
                             for the body
  X-Agent-Credit: hold       grant no CREDIT for this request
  X-Agent-Credit-Delay-Ms: MS  delay each CREDIT grant
  X-Agent-Barrier: N         hold the verdict until N requests with the same
                             X-Agent-Barrier-Key wait, then answer all of them in
                             random order (X-Agent-Barrier-Ms: give up after, 10000)
  X-Agent-Response-Action: allow (default) | block | redirect | stall
  X-Agent-Response-Status, X-Agent-Response-Body, X-Agent-Response-Location
  X-Agent-Response-Add: N: V   resp_add in the response-phase verdict (repeatable)
  X-Agent-Response-Delay-Ms: MS

With --mark an allow verdict also adds the response field
"X-Agent-Seen: NAME conn=CID uid=UID".

The log gets one JSON line per finished request id ({"event": "request", ...}:
uid, tag (the --tag-header field), events seen, body bytes/sha256/offsets ok,
verdicts sent, REQUEST_DONE fields, cancel reason, how the id closed,
violations), and lines for connections ("conn_open", "conn_close"),
protocol violations ("violation"), barriers and the exit.
"""

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import weir_agent as wa  # noqa: E402

ALNUM = b"abcdefghijklmnopqrstuvwxyz0123456789"


def pattern(n):
    return (ALNUM * (n // 36 + 1))[:n]


def split_pair(v):
    name, _, value = v.partition(":")
    return [name.strip(), value.strip()]


class Log:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1)
        self.t0 = time.monotonic()

    def write(self, obj):
        obj.setdefault("t", round(time.monotonic() - self.t0, 4))
        obj.setdefault("pid", os.getpid())
        self.f.write(json.dumps(obj, default=repr) + "\n")
        self.f.flush()


class Plan:
    """The behaviour a request's X-Agent-* fields ask for."""

    def __init__(self, req, prefix="X-Agent-"):
        def g(name):
            return req.header(prefix + name)

        def ga(name):
            return req.header_all(prefix + name)
        self.action = (g("Action") or "allow").strip().lower()
        self.status = _int(g("Status"))
        self.body = g("Body")
        if self.body is not None:
            self.body = wa.to_bytes(self.body)
        self.body_str = g("Body-Str") == "1"
        n = _int(g("Body-Size"))
        if n is not None:
            self.body = pattern(n)
        self.location = g("Location")
        self.headers_out = [split_pair(v) for v in ga("Header")]
        self.muts = {}
        for key, name in (("req_set", "Req-Set"), ("req_add", "Req-Add"),
                          ("resp_set", "Resp-Set"), ("resp_add", "Resp-Add")):
            vals = ga(name)
            if vals:
                self.muts[key] = [split_pair(v) for v in vals]
        for key, name in (("req_del", "Req-Del"), ("resp_del", "Resp-Del")):
            vals = ga(name)
            if vals:
                self.muts[key] = [v.strip() for v in vals]
        self.replace = g("Replace-Body")
        self.audit = {}
        if g("Reason") is not None:
            self.audit["reason"] = g("Reason")
        if g("Tags") is not None:
            self.audit["tags"] = [t.strip() for t in g("Tags").split(",")]
        if g("Rule-Ids") is not None:
            self.audit["rule_ids"] = [int(t) if t.strip().isdigit() else t.strip()
                                      for t in g("Rule-Ids").split(",")]
        if g("Score") is not None:
            self.audit["score"] = int(g("Score"))
        self.delay = (_int(g("Delay-Ms")) or 0) / 1000.0
        self.after_bytes = _int(g("After-Bytes"))
        self.need_more = g("Need-More") == "1"
        self.credit_hold = (g("Credit") or "").lower() == "hold"
        self.credit_delay = (_int(g("Credit-Delay-Ms")) or 0) / 1000.0
        self.barrier = _int(g("Barrier"))
        self.barrier_key = g("Barrier-Key") or "default"
        self.barrier_ms = _int(g("Barrier-Ms")) or 10000
        self.resp_action = (g("Response-Action") or "allow").strip().lower()
        self.resp_status = _int(g("Response-Status"))
        rb = g("Response-Body")
        self.resp_body = wa.to_bytes(rb) if rb is not None else None
        self.resp_location = g("Response-Location")
        self.resp_add = [split_pair(v) for v in ga("Response-Add")]
        self.resp_delay = (_int(g("Response-Delay-Ms")) or 0) / 1000.0
        self.scheduled = False


def _int(v):
    if v is None:
        return None
    try:
        return int(v.strip())
    except ValueError:
        return None


class TestHandler(wa.Handler):
    def __init__(self, opts, log):
        self.o = opts
        self.log = log
        self.loop = None
        self.barriers = {}      # key -> list of (req, fire)

    # -- handshake
    def hello_reply(self, conn, hello):
        mode = self.o.hello
        if mode == "none":
            return False
        r = conn.agent.default_reply()
        if mode == "bad-version":
            r[wa.K_VERSION] = 2
        elif mode == "no-events":
            r[wa.K_EVENTS] = 0
        elif mode == "garbage":
            conn.agent.reply_payload_override = b"\xc1\xc1\xc1"
        return r

    def on_connect(self, conn):
        self.log.write({"event": "conn_open", "conn": conn.cid,
                        "hello": {str(k): v for k, v in (conn.hello or {}).items()},
                        "events": wa.mask_names(conn.events), "credit": conn.credit_on,
                        "weir_max_frame": conn.weir_max_frame})

    def on_disconnect(self, conn):
        self.log.write({"event": "conn_close", "conn": conn.cid, "reason": conn.close_reason,
                        "requests": conn.requests, "max_open": conn.max_open,
                        "pings": conn.pings, "broken": conn.broken,
                        "lived_ms": round((time.monotonic() - conn.t_start) * 1000, 1)})

    def on_violation(self, conn, v):
        d = dict(v)
        d["event"] = "violation"
        self.log.write(d)

    def on_ping(self, conn, nonce):
        if self.o.log_pings:
            self.log.write({"event": "ping", "conn": conn.cid, "nonce": nonce,
                            "pong": not self.o.no_pong})
        return not self.o.no_pong

    def on_late_body(self, req, offset, n, last):
        self.log.write({"event": "late_body", "conn": req.conn.cid, "uid": req.uid,
                        "tag": req.header(self.o.tag_header), "offset": offset, "bytes": n,
                        "last": bool(last),
                        "ms_after_verdict": round((time.monotonic() - req.t_verdict) * 1000, 2)
                        if req.t_verdict else None})

    def on_closed(self, req):
        plan = req.user.get("plan")
        s = req.summary()
        s["event"] = "request"
        s["tag"] = req.header(self.o.tag_header)
        s["action"] = plan.action if plan else None
        s["agent"] = self.o.name
        self.log.write(s)
        self._unbarrier(req)

    # -- requests
    def on_request(self, req):
        plan = Plan(req, self.o.prefix)
        req.user["plan"] = plan
        conn = req.conn
        if self.o.log_open:
            self.log.write({"event": "open", "conn": conn.cid, "rid": req.rid, "uid": req.uid,
                            "tag": req.header(self.o.tag_header), "open": len(conn.open)})
        a = plan.action
        if a in BREAKERS:
            BREAKERS[a](self, req)
            return
        if a == "bad-type":
            conn.write(wa.encode_frame(0x99, req.rid, {}))
        if a == "goaway":
            conn.send_goaway("test goaway")
        wants_body = not req.no_body and (conn.events & wa.EV_REQUEST_BODY or plan.need_more)
        if plan.need_more:
            req.need_more_send()
        if plan.after_bytes == 0 or not wants_body:
            self._schedule(req)

    def on_body(self, req, offset, data, last):
        plan = req.user["plan"]
        if plan.scheduled:
            return
        conn = req.conn
        if conn.credit_on and conn.body_window and data and not last and not plan.credit_hold:
            if plan.credit_delay:
                self.loop.call_later(plan.credit_delay, req.credit_send, len(data))
            else:
                req.credit_send(len(data))
        if plan.after_bytes is not None and req.body_bytes >= plan.after_bytes:
            self._schedule(req)
        elif last:
            self._schedule(req)

    def _schedule(self, req):
        plan = req.user["plan"]
        plan.scheduled = True
        if plan.barrier:
            self._barrier_add(req)
            return
        if plan.delay > 0:
            self.loop.call_later(plan.delay, self._verdict, req)
        else:
            self._verdict(req)

    def _verdict(self, req):
        if not req.is_open:
            return
        plan = req.user["plan"]
        a = plan.action
        if a == "stall":
            return
        audit = dict(plan.audit)
        if a in ("allow", "goaway", "bad-type"):
            muts = {k: list(v) for k, v in plan.muts.items()}
            if self.o.mark:
                muts.setdefault("resp_add", []).append(
                    ["X-Agent-Seen", "%s conn=%d uid=%s" % (self.o.name, req.conn.cid, req.uid)])
            if plan.replace is not None:
                muts["body_replace"] = wa.to_bytes(plan.replace)
            req.allow(**muts, **audit)
        elif a == "block":
            body = plan.body
            if body is not None and plan.body_str:
                body = body.decode("utf-8", "surrogateescape")
            req.block(status=plan.status, headers_out=plan.headers_out or None, body=body,
                      **audit)
        elif a == "redirect":
            req.redirect(plan.location or "/", status=plan.status,
                         headers_out=plan.headers_out or None, **audit)
        elif a == "bad-status":
            req.block(status=99)
        else:
            self.log.write({"event": "error", "msg": "unknown X-Agent-Action %r" % a,
                            "uid": req.uid})
            req.allow()

    # -- response phase
    def on_response(self, req):
        plan = req.user.get("plan")
        if plan is None or plan.resp_action == "stall":
            return
        if plan.resp_delay > 0:
            self.loop.call_later(plan.resp_delay, self._resp_verdict, req)
        else:
            self._resp_verdict(req)

    def _resp_verdict(self, req):
        if not req.is_open:
            return
        plan = req.user["plan"]
        ph = wa.PHASE_RESPONSE
        if plan.resp_action == "block":
            req.block(phase=ph, status=plan.resp_status, body=plan.resp_body)
        elif plan.resp_action == "redirect":
            req.redirect(plan.resp_location or "/", phase=ph, status=plan.resp_status)
        else:
            req.allow(phase=ph, resp_add=plan.resp_add or None)

    # -- barriers: answer a group at once, in random order
    def _barrier_add(self, req):
        plan = req.user["plan"]
        b = self.barriers.get(plan.barrier_key)
        if b is None:
            b = {"reqs": [], "timer": None, "t0": time.monotonic()}
            self.barriers[plan.barrier_key] = b
            b["timer"] = self.loop.call_later(plan.barrier_ms / 1000.0, self._barrier_fire,
                                              plan.barrier_key, False)
        b["reqs"].append(req)
        if len(b["reqs"]) >= plan.barrier:
            b["timer"].cancel()
            self._barrier_fire(plan.barrier_key, True)

    def _unbarrier(self, req):
        plan = req.user.get("plan")
        if plan is None or not plan.barrier:
            return
        b = self.barriers.get(plan.barrier_key)
        if b is not None and req in b["reqs"]:
            b["reqs"].remove(req)

    def _barrier_fire(self, key, reached):
        b = self.barriers.pop(key, None)
        if b is None:
            return
        reqs = list(b["reqs"])
        conns = sorted({r.conn.cid for r in reqs})
        self.log.write({"event": "barrier", "key": key, "reached": reached, "n": len(reqs),
                        "conns": conns, "open_total": sum(len(c.open) for c in
                                                          reqs[0].conn.agent.connections.values())
                        if reqs else 0,
                        "waited_ms": round((time.monotonic() - b["t0"]) * 1000, 1)})
        random.shuffle(reqs)
        for r in reqs:
            plan = r.user["plan"]
            if plan.delay > 0:
                self.loop.call_later(plan.delay, self._verdict, r)
            else:
                self._verdict(r)


# -- breaking the protocol on purpose ------------------------------------------

def _broken(handler, req, what):
    req.conn.broken = True
    handler.log.write({"event": "broke", "how": what, "conn": req.conn.cid, "uid": req.uid,
                       "tag": req.header(handler.o.tag_header)})


def _close(h, req):
    _broken(h, req, "close")
    req.conn.abort()


def _rst(h, req):
    _broken(h, req, "rst")
    req.conn.abort(rst=True)


def _close_mid_frame(h, req):
    _broken(h, req, "close-mid-frame")
    frame = wa.encode_frame(wa.VERDICT, req.rid, {wa.K_ACTION: wa.ALLOW, wa.K_PHASE: 0})
    req.conn.write(frame[:len(frame) // 2 + 3])
    req.conn.abort()


def _garbage(h, req):
    _broken(h, req, "garbage")
    req.conn.write(b"\x00\x00\x00\x05" + b"this is not a weir agent frame\r\n" * 4)


def _oversize(h, req):
    _broken(h, req, "oversize")
    limit = req.conn.weir_max_frame
    pad = limit  # frame is 16 + map overhead + pad > limit
    frame = wa.encode_frame(wa.VERDICT, req.rid, {wa.K_ACTION: wa.ALLOW, wa.K_PHASE: 0,
                                                  wa.K_REASON: "x" * pad})
    req.conn.write(frame)


def _unknown_id(h, req):
    _broken(h, req, "unknown-id")
    rid = 0x7FFFFFFFFFFFFFF1
    while rid in req.conn.seen_ids:
        rid -= 1
    req.conn.write(wa.encode_frame(wa.VERDICT, rid, {wa.K_ACTION: wa.ALLOW, wa.K_PHASE: 0}))


def _zero_id(h, req):
    _broken(h, req, "zero-id")
    req.conn.write(wa.encode_frame(wa.VERDICT, 0, {wa.K_ACTION: wa.ALLOW, wa.K_PHASE: 0}))


def _bad_msgpack(h, req):
    _broken(h, req, "bad-msgpack")
    req.conn.write(wa.encode_frame(wa.VERDICT, req.rid, payload=b"\xc1"))


def _bad_verdict(h, req):
    _broken(h, req, "bad-verdict")
    req.conn.write(wa.encode_frame(wa.VERDICT, req.rid, {wa.K_ACTION: 9, wa.K_PHASE: 0}))


def _bad_redirect(h, req):
    _broken(h, req, "bad-redirect")
    req.redirect("/x", status=200)


def _redirect_no_location(h, req):
    _broken(h, req, "redirect-no-location")
    req.verdict_send(wa.REDIRECT)


def _bad_mutation(h, req):
    _broken(h, req, "bad-mutation")
    req.allow(req_add=[["X-M%d" % i, "1"] for i in range(wa.MAX_MUTATIONS + 1)])


def _bad_header_value(h, req):
    _broken(h, req, "bad-header-value")
    req.allow(resp_set=[["X-Split", "a\r\nInjected: yes"]])


BREAKERS = {
    "bad-redirect": _bad_redirect, "bad-mutation": _bad_mutation,
    "redirect-no-location": _redirect_no_location,
    "bad-header-value": _bad_header_value,
    "close": _close, "rst": _rst, "close-mid-frame": _close_mid_frame, "garbage": _garbage,
    "oversize": _oversize, "unknown-id": _unknown_id, "zero-id": _zero_id,
    "bad-msgpack": _bad_msgpack, "bad-verdict": _bad_verdict,
}


# -----------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(description="weir test agent")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--unix", metavar="PATH")
    g.add_argument("--tcp", metavar="PORT", type=int)
    p.add_argument("--log", required=True)
    p.add_argument("--events", default="request_headers",
                   help="comma list of request_headers, request_body, response_headers, "
                   "response_body, request_done")
    p.add_argument("--window", type=int, default=None,
                   help="set the credit capability with this body_window (0: unlimited)")
    p.add_argument("--max-frame", type=int, default=wa.MAX_FRAME_DEFAULT)
    p.add_argument("--max-in-flight", type=int, default=wa.MAX_IN_FLIGHT_CEIL)
    p.add_argument("--name", default="test-agent")
    p.add_argument("--hello-delay-ms", type=int, default=0)
    p.add_argument("--hello", default="normal",
                   choices=["normal", "none", "bad-version", "no-events", "garbage"])
    p.add_argument("--no-pong", action="store_true")
    p.add_argument("--tag-header", default="X-Test-Id")
    p.add_argument("--prefix", default="X-Agent-",
                   help="prefix of the request fields that steer it (two agents on one "
                   "route: give them different prefixes)")
    p.add_argument("--log-open", action="store_true", help="log each REQUEST_HEADERS")
    p.add_argument("--log-pings", action="store_true", help="log each PING")
    p.add_argument("--mark", action="store_true",
                   help="allow verdicts add the response field X-Agent-Seen")
    return p.parse_args(argv)


async def amain(o):
    log = Log(o.log)
    handler = TestHandler(o, log)
    handler.loop = asyncio.get_running_loop()
    caps = 0
    window = None
    if o.window is not None:
        caps |= wa.CAP_CREDIT
        window = o.window
    agent = wa.Agent(handler, events=wa.parse_events(o.events), capabilities=caps,
                     max_frame=o.max_frame, max_in_flight=o.max_in_flight, body_window=window,
                     name=o.name, hello_delay=o.hello_delay_ms / 1000.0)
    if o.unix:
        await agent.serve_unix(o.unix)
        where = o.unix
    else:
        await agent.serve_tcp(o.tcp)
        where = "127.0.0.1:%d" % o.tcp
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.write({"event": "listening", "where": where, "events": o.events, "window": o.window})
    print("ready", flush=True)
    await stop.wait()
    log.write({"event": "exit", "requests": agent.requests, "violations": len(agent.violations),
               "errors": agent.errors, "max_open_total": agent.max_open_total,
               "notes": agent.notes[:50]})
    agent.server.close()
    if o.unix:
        try:
            os.unlink(o.unix)
        except OSError:
            pass


def main(argv=None):
    o = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        asyncio.run(amain(o))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
