#!/usr/bin/env python3
"""Agents and request bodies: weir + weir-origin + the Python test agent.

An agent on request_body sees exactly the bytes sent (SHA-256 from the
agent's log vs the origin's X-Request-Sha256 vs the test's own), with
Content-Length and chunked bodies up to 8 MiB, in body_mode buffer and
stream, with and without CREDIT flow control; NEED_MORE; buffer mode: the
origin receives nothing when the agent blocks (at the end or part way);
stream mode: a block after partial forwarding aborts the upstream request
(a recording origin in this file watches it), and a block after the response
started resets the client connection; max_body: 413 (closed) or inspection
skipped with CANCEL 5 (open); a credit stall runs into the agent timeout."""

import os
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True
import harness as h  # noqa: E402
sys.path.insert(0, os.path.join(h.REPO, "tests", "agent"))
import agent_it as ai  # noqa: E402

MiB = 1 << 20
MAX_FRAME = 256 * 1024


class Recorder:
    """An origin that records what reaches it. Each connection: requests
    read head + body (Content-Length or chunked); answered 200 "ok" once the
    body is complete. A path containing "early" gets its response head (and
    a first chunk) at once, before the body. Per request it records the bytes
    of body received and whether the connection ended before the body did."""

    def __init__(self):
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.addr = "127.0.0.1:%d" % self.port
        self.reqs = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                s, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _serve(self, s):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    try:
                        d = s.recv(65536)
                    except ConnectionError:
                        return
                    if not d:
                        return
                    buf += d
                i = buf.index(b"\r\n\r\n")
                head = buf[:i].decode("latin-1")
                buf = buf[i + 4:]
                lines = head.split("\r\n")
                path = lines[0].split(" ")[1]
                hs = {}
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    hs[k.strip().lower()] = v.strip()
                rec = {"path": path, "head": head, "got": 0, "complete": False,
                       "aborted": False, "t": time.monotonic()}
                with self.lock:
                    self.reqs.append(rec)
                if "early" in path:
                    s.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                              b"5\r\nearly\r\n")
                chunked = "chunked" in hs.get("transfer-encoding", "").lower()
                need = int(hs.get("content-length", "0"))
                while True:
                    if chunked:
                        done = buf.endswith(b"0\r\n\r\n")
                    else:
                        done = len(buf) >= need
                    rec["got"] = len(buf)
                    if done:
                        break
                    try:
                        d = s.recv(262144)
                    except ConnectionError:
                        d = b""
                    if not d:
                        rec["aborted"] = True
                        rec["t_end"] = time.monotonic()
                        return
                    buf += d
                rec["complete"] = True
                buf = b"" if chunked else buf[need:]
                if "early" in path:
                    s.sendall(b"0\r\n\r\n")
                else:
                    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        finally:
            s.close()

    def find(self, marker):
        with self.lock:
            return [r for r in self.reqs if marker in r["path"]]


class Env:
    pass


def setup():
    ai.agent_python()
    e = Env()
    e.origin = h.start_origin()
    e.rec = Recorder()
    body_ev = "request_headers,request_body"
    e.plain = ai.start_agent("plain", events=body_ev)
    e.credit = ai.start_agent("credit", events=body_ev, args=["--window", "65536"])
    e.hdr = ai.start_agent("hdr", events="request_headers")
    e.small = ai.start_agent("small", events=body_ev, args=["--max-frame", "65536"])
    e.bodyonly = ai.start_agent("bodyonly", events="request_body")
    big = {"timeout": "5s", "max_body": "16m"}
    agents = {
        "buf": dict(big, socket=e.plain.unix, body_mode="buffer"),
        "str": dict(big, socket=e.plain.unix, body_mode="stream"),
        "bufc": dict(big, socket=e.credit.unix, body_mode="buffer"),
        "strc": dict(big, socket=e.credit.unix, body_mode="stream"),
        "bufct": {"socket": e.credit.unix, "body_mode": "buffer", "timeout": "400ms",
                  "max_body": "16m"},
        "nmb": dict(big, socket=e.hdr.unix, body_mode="buffer"),
        "evr": {"socket": e.plain.unix, "body_mode": "buffer", "events": "[request_headers]",
                "timeout": "1s"},
        "bo": dict(big, socket=e.bodyonly.unix, body_mode="buffer"),
        "smf": dict(big, socket=e.small.unix, body_mode="stream"),
        "nms": dict(big, socket=e.hdr.unix, body_mode="stream"),
        "smallc": {"socket": e.plain.unix, "body_mode": "buffer", "max_body": "64k",
                   "failure": "closed", "timeout": "5s"},
        "smallo": {"socket": e.plain.unix, "body_mode": "buffer", "max_body": "64k",
                   "failure": "open", "timeout": "5s"},
    }
    routes = ["{name: %s, path_prefix: /%s/, upstream: app, agents: [%s]}" % (n, n, n)
              for n in agents]
    routes += ["{name: recstr, path_prefix: /recstr/, upstream: rec, agents: [str]}",
               "{name: recbuf, path_prefix: /recbuf/, upstream: rec, agents: [buf]}"]
    cfg = ai.config(e.origin, agents, routes,
                    upstreams={"rec": {"servers": [e.rec.addr], "keepalive": 0,
                                       "read_timeout": "10s"}},
                    top={"client_body_timeout": "10s"})
    e.weir = h.start_weir(cfg)
    e.port = e.weir.port
    deadline = time.monotonic() + 5
    for route in agents:
        while True:
            r = h.request(e.port, "GET", "/%s/warmup" % route)
            if r.status == 200:
                break
            if time.monotonic() > deadline:
                raise h.TestFailure("route /%s/ not ready: %d %r" % (route, r.status, r.body))
            time.sleep(0.05)
    return e


def origin_requests(e):
    return e.origin.stats()["requests"]


_bodies = {}


def body_of(n):
    if n not in _bodies:
        _bodies[n] = h.rand_bytes(n, seed=n + 11)
    return _bodies[n]


def check_record(rec, body, what, chunked, max_frame=MAX_FRAME):
    n = len(body)
    h.eq(rec["body_bytes"], n, what + ": body bytes the agent saw")
    h.eq(rec["body_sha256"], h.sha256(body), what + ": SHA-256 of the body the agent saw")
    h.check(rec["offsets_ok"], what + ": offsets not contiguous from 0: %r" % rec)
    h.check(rec["body_last"], what + ": no LAST body frame")
    if n:
        h.eq(rec["first_offset"], 0, what + ": first offset")
    h.eq(rec["body_length"], None if chunked else n, what + ": body_length")
    h.check(rec["max_body_frame"] <= max_frame, what + ": a %d-byte frame over max_frame %d" %
            (rec["max_body_frame"], max_frame))
    h.eq(rec["verdict"]["action"] if rec["verdict"] else None, "allow", what + ": verdict")
    h.eq(rec["violations"], [], what + ": protocol violations")


def _sha_matrix(e, routes, sizes, agent):
    seq = 0
    for route in routes:
        for chunked in (False, True):
            for n in sizes:
                seq += 1
                body = body_of(n)
                tag = "sha-%s-%s-%d" % (route, "te" if chunked else "cl", n)
                what = "%s %s body of %d bytes" % (route, "chunked" if chunked else
                                                   "Content-Length", n)
                r = h.request(e.port, "POST", "/%s/up?size=3" % route, body=body,
                              headers=[("X-Test-Id", tag)], chunked=chunked,
                              chunk_sizes=[100000, 4096, 1, 65535, 300000], timeout=30)
                h.status(r, 200, what)
                h.eq(r.get("X-Request-Bytes"), str(n), what + ": bytes at the origin")
                h.eq(r.get("X-Request-Sha256"), h.sha256(body), what + ": SHA-256 at the origin")
                rec = agent.wait_tag(tag)
                if n == 0 and not chunked and rec["body_length"] is None:
                    rec["body_length"] = 0      # Content-Length: 0 may count as "no body"
                check_record(rec, body, what, chunked)


SIZES = [0, 1, 65537, MiB + 7, 8 * MiB]


def test_sha_buffer_stream(e):
    _sha_matrix(e, ["buf", "str"], SIZES, e.plain)


def test_sha_credit(e):
    """CREDIT with a 64 KiB window: weir never sends past the credit (the
    agent checks), and the bytes are still exact."""
    _sha_matrix(e, ["bufc", "strc"], [0, 65536, 65537, 3 * MiB + 1], e.credit)
    e.credit.check_no_violations(what="credit")


def test_small_max_frame(e):
    """An agent that accepts 64 KiB frames gets no larger ones."""
    body = body_of(2 * MiB + 3)
    r = h.request(e.port, "POST", "/smf/x", body=body, headers=[("X-Test-Id", "smf")])
    h.status(r, 200, "upload through an agent with max_frame 64 KiB")
    check_record(e.small.wait_tag("smf"), body, "max_frame 64 KiB", False, max_frame=65536)


def test_body_only_subscriber(e):
    """An agent subscribed to request_body alone still gets REQUEST_HEADERS."""
    body = body_of(100000)
    r = h.request(e.port, "POST", "/bo/x", body=body, chunked=True, chunk_sizes=7000,
                  headers=[("X-Test-Id", "bo")])
    h.status(r, 200, "POST through a request_body-only agent")
    rec = e.bodyonly.wait_tag("bo")
    h.eq(rec["events"], ["request_headers", "request_body"], "events of a body-only agent")
    check_record(rec, body, "body-only agent", True)


def test_early_allow_stops_body(e):
    """An allow part way through the body (buffer mode): the request goes on
    whole, and weir stops sending the agent body frames (those already on
    the way may still arrive)."""
    for route in ("buf", "str"):
        body = body_of(8 * MiB)
        tag = "early-%s" % route
        r = h.request(e.port, "POST", "/%s/x" % route, body=body, timeout=30,
                      headers=[("X-Test-Id", tag)] + ai.hdrs(after_bytes=100000))
        h.status(r, 200, "%s: allowed after 100000 bytes" % route)
        h.eq(r.get("X-Request-Sha256"), h.sha256(body), "%s: origin got the whole body" % route)
        time.sleep(0.2)
        late = [x for x in e.plain.records("late_body") if x.get("tag") == tag]
        n = sum(x["bytes"] for x in late)
        rec = e.plain.wait_tag(tag)
        h.check(rec["body_bytes"] + n < 2 * MiB,
                "%s: weir went on sending body frames after the verdict: %d bytes before it, "
                "%d after (%d frames, the last %.1f ms after the verdict)" %
                (route, rec["body_bytes"], n, len(late), late[-1]["ms_after_verdict"]
                 if late else 0))


def test_events_restricted_by_config(e):
    """`events: [request_headers]` in weir's agent config: weir sends no body
    to an agent that asked for it, and says so in HELLO (`events` weir can
    send), so that the agent does not wait for a body that never comes."""
    c = e.plain.wait(lambda r: r.get("hello", {}).get("6") == "evr", 3, "conn_open",
                     "the connection of agent evr")
    body = body_of(5000)
    r = h.request(e.port, "POST", "/evr/x", body=body, headers=[("X-Test-Id", "evr")])
    rec = e.plain.wait_tag("evr")
    h.eq(rec["body_frames"], 0, "body frames sent despite events: [request_headers]")
    h.eq(c["hello"].get("5"), 1, "HELLO events of an agent configured with events: "
         "[request_headers] (the events weir can send it); the agent waited for a body: "
         "request answered %d after %s ms" % (r.status, rec["ms_open"]))
    h.status(r, 200, "POST through an agent restricted to request_headers")


def test_need_more(e):
    body = body_of(300001)
    # buffer mode: NEED_MORE gets the body from offset 0
    r = h.request(e.port, "POST", "/nmb/x", body=body, headers=[("X-Test-Id", "nm-b")] +
                  ai.hdrs(need_more=1))
    h.status(r, 200, "NEED_MORE, buffer mode")
    h.eq(r.get("X-Request-Sha256"), h.sha256(body), "origin body after NEED_MORE")
    rec = e.hdr.wait_tag("nm-b")
    h.eq(rec["need_more"], True, "agent sent NEED_MORE")
    check_record(rec, body, "NEED_MORE buffer", False)
    # block after the body it asked for
    before = origin_requests(e)
    r = h.request(e.port, "POST", "/nmb/x", body=body, headers=[("X-Test-Id", "nm-b2")] +
                  ai.hdrs(need_more=1, action="block", status=422, body="body says no"))
    h.status(r, 422, "NEED_MORE then block, buffer mode")
    h.eq(origin_requests(e) - before - 1, 0, "origin requests after a buffered block")
    # stream mode: from what is still held; whatever it gets is the tail of the body
    r = h.request(e.port, "POST", "/nms/x", body=body, headers=[("X-Test-Id", "nm-s")] +
                  ai.hdrs(need_more=1), chunked=True, chunk_sizes=50000)
    h.status(r, 200, "NEED_MORE, stream mode")
    h.eq(r.get("X-Request-Sha256"), h.sha256(body), "origin body after NEED_MORE (stream)")
    rec = e.hdr.wait_tag("nm-s")
    fo = rec["first_offset"] or 0
    h.check(rec["offsets_ok"], "NEED_MORE stream: offsets not contiguous: %r" % rec)
    h.eq(fo + rec["body_bytes"], len(body), "NEED_MORE stream: first offset + bytes")
    h.eq(rec["body_sha256"], h.sha256(body[fo:]), "NEED_MORE stream: SHA-256 of the tail seen")
    # no body: NEED_MORE on a GET changes nothing
    r = h.request(e.port, "GET", "/nmb/get?size=4", headers=[("X-Test-Id", "nm-get")] +
                  ai.hdrs(need_more=1))
    h.status(r, 200, "NEED_MORE on a GET without body")


def _send_body_bg(conn, data):
    """Send data on conn in a thread; errors (weir closed) are expected."""
    st = {"err": None}

    def run():
        try:
            conn.sock.sendall(data)
        except OSError as ex:
            st["err"] = ex
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, st


def test_buffer_block_origin_untouched(e):
    before = origin_requests(e)
    for chunked in (False, True):
        body = body_of(MiB)
        r = h.request(e.port, "POST", "/buf/blocked", body=body, chunked=chunked,
                      chunk_sizes=70000, timeout=15, headers=[("X-Test-Id", "bb-%d" % chunked)] +
                      ai.hdrs(action="block", status=403, body="no upload"))
        h.status(r, 403, "buffer mode, block after the whole body (chunked=%s)" % chunked)
        h.eq(r.body, b"no upload", "block body")
        rec = e.plain.wait_tag("bb-%d" % chunked)
        h.eq(rec["body_sha256"], h.sha256(body), "agent saw the whole body before blocking")
    # block part way: the agent answers after 300000 of 2 MiB
    for chunked in (False, True):
        body = body_of(2 * MiB)
        tag = "bbp-%d" % chunked
        raw = h.build_request("POST", "/buf/partial", body=body, chunked=chunked,
                              chunk_sizes=65536, headers=[("X-Test-Id", tag)] +
                              ai.hdrs(action="block", status=413, body="too much",
                                      after_bytes=300000))
        with h.Conn(e.port, timeout=15) as c:
            t, st = _send_body_bg(c, raw)
            r = c.read_response("POST")
            h.status(r, 413, "buffer mode, block part way through the body (chunked=%s)" % chunked)
            h.eq(r.body, b"too much", "block body (part way)")
            t.join(15)
        rec = e.plain.wait_tag(tag)
        h.check(rec["body_bytes"] >= 300000, "agent answered before 300000 bytes? %r" % rec)
    h.eq(origin_requests(e) - before - 1, 0,
         "requests that reached the origin while the agent blocked in buffer mode")


def _wait(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise h.TestFailure("timed out (%.1fs) waiting for %s" % (timeout, what))
        time.sleep(0.01)


def _stream_block(e, marker, chunked, total, block_at):
    """Send head + 1 MiB, wait until the origin has 512 KiB of it (stream
    mode forwards as received), send on to just past block_at (where the
    agent blocks), and never the rest: the upstream request can only end by
    weir aborting it. Returns ("response", Response) or ("closed", partial
    bytes); checks, while the client connection is still open, that the
    upstream request was aborted."""
    body = body_of(total)
    raw = h.build_request("POST", "/recstr/%s" % marker, body=body, chunked=chunked,
                          chunk_sizes=65536, headers=[("X-Test-Id", marker)] +
                          ai.hdrs(action="block", status=403, body="stream block",
                                  after_bytes=block_at))
    head_end = raw.index(b"\r\n\r\n") + 4
    first = head_end + MiB
    with h.Conn(e.port, timeout=15) as c:
        c.send(raw[:first])
        _wait(lambda: any(r["got"] >= MiB // 2 for r in e.rec.find(marker)), 10,
              "the origin to receive 512 KiB of the streamed body (stream mode forwards "
              "as received); origin saw %r" % e.rec.find(marker))
        c.send(raw[first:head_end + block_at + 128 * 1024])
        try:
            r = c.read_response("POST")
            outcome = ("response", r)
        except h.ConnClosed as ex:
            outcome = ("closed", ex.partial)
        _wait(lambda: all(x["aborted"] or x["complete"] for x in e.rec.find(marker)), 5,
              "weir to abort the upstream request (the client connection is still open); "
              "origin saw %r" % e.rec.find(marker))
    recs = e.rec.find(marker)
    h.eq(len(recs), 1, "upstream requests for %s" % marker)
    h.check(recs[0]["aborted"] and not recs[0]["complete"],
            "the upstream request was not aborted: the origin got %d bytes, complete=%s"
            % (recs[0]["got"], recs[0]["complete"]))
    rec = e.plain.wait_tag(marker)
    h.eq(rec["verdict"]["action"], "block", "agent's verdict")
    return outcome


def test_stream_block_aborts_upstream(e):
    """Stream mode: the body goes upstream while the agent reads it; a block
    after 1.5 MiB aborts the upstream request and answers the client."""
    for chunked in (False, True):
        outcome = _stream_block(e, "abort%d" % chunked, chunked, 4 * MiB, 3 * MiB // 2)
        h.eq(outcome[0], "response", "client got an answer (chunked=%s): %r" %
             (chunked, outcome[1][:300] if outcome[0] == "closed" else ""))
        h.status(outcome[1], 403, "stream mode block after partial forwarding (chunked=%s)" %
                 chunked)
        h.eq(outcome[1].body, b"stream block", "stream block body")


def test_stream_block_after_response_started(e):
    """The origin answers (head + first chunk) before the body ended; the
    agent blocks later. If weir forwarded the response head, it resets the
    client connection; if it held the head for the request-phase verdict, the
    block is the answer. Either way the upstream request is aborted."""
    outcome = _stream_block(e, "early", False, 3 * MiB, 2 * MiB)
    print("    (stream block after the origin answered: %s)" %
          ("client got %d" % outcome[1].status if outcome[0] == "response" else
           "client connection closed after %r" % outcome[1][:60]))
    if outcome[0] == "response":
        h.status(outcome[1], 403, "block (weir held the origin's response head)")
        h.eq(outcome[1].body, b"stream block", "block body")
    else:
        h.check(outcome[1].startswith(b"HTTP/1.1 200"),
                "client connection closed before a response head: %r" % outcome[1][:200])


def test_stream_allow_recorder(e):
    """Control: the same path through the recorder completes when allowed."""
    body = body_of(MiB)
    r = h.request(e.port, "POST", "/recstr/fine", body=body, headers=[("X-Test-Id", "fine")],
                  timeout=15)
    h.status(r, 200, "stream mode allowed upload to the recorder")
    h.eq(r.body, b"ok", "recorder body")
    h.check(e.rec.find("fine")[0]["complete"], "recorder got the whole body")
    # and in buffer mode, a blocked request never reaches the recorder
    r = h.request(e.port, "POST", "/recbuf/never", body=body, timeout=15, headers=[
        ("X-Test-Id", "never")] + ai.hdrs(action="block", status=403, after_bytes=500000))
    h.status(r, 403, "buffer mode block")
    time.sleep(0.2)
    h.eq(e.rec.find("never"), [], "recorder requests for a buffer-mode block")


def test_max_body(e):
    body = body_of(200000)
    before = origin_requests(e)
    r = h.request(e.port, "POST", "/smallc/x", body=body, headers=[("X-Test-Id", "mb-c")])
    h.status(r, 413, "body over the agent's max_body, failure closed")
    h.eq(origin_requests(e) - before - 1, 0, "origin requests for the 413")
    r = h.request(e.port, "POST", "/smallc/x", body=body, chunked=True, chunk_sizes=30000,
                  headers=[("X-Test-Id", "mb-c2")])
    h.status(r, 413, "chunked body over the agent's max_body, failure closed")
    r = h.request(e.port, "POST", "/smallo/x", body=body, headers=[("X-Test-Id", "mb-o")])
    h.status(r, 200, "body over max_body, failure open: inspection skipped")
    h.eq(r.get("X-Request-Sha256"), h.sha256(body), "origin got the whole body (open)")
    rec = e.plain.wait_tag("mb-o")
    h.eq((rec["closed"], rec["cancel_reason"]), ("cancel", 5),
         "agent told: CANCEL reason 5 (body over max_body)")
    small = body_of(60000)
    r = h.request(e.port, "POST", "/smallc/x", body=small, headers=[("X-Test-Id", "mb-ok")])
    h.status(r, 200, "body under max_body")
    check_record(e.plain.wait_tag("mb-ok"), small, "under max_body", False)


def test_credit_stall_timeout(e):
    t0 = time.monotonic()
    body = body_of(MiB)
    raw = h.build_request("POST", "/bufct/x", body=body, headers=[("X-Test-Id", "cs")] +
                          ai.hdrs(credit="hold"))
    with h.Conn(e.port, timeout=15) as c:
        t, st = _send_body_bg(c, raw)
        r = c.read_response("POST")
        t.join(15)
    dt = time.monotonic() - t0
    h.status(r, 504, "agent withholding credit: timeout, failure closed")
    rec = e.credit.wait_tag("cs")
    h.eq(rec["body_bytes"], 65536, "bytes sent within the 64 KiB window")
    h.eq((rec["closed"], rec["cancel_reason"]), ("cancel", 2), "CANCEL reason 2 (timeout)")


def test_body_replace(e):
    """VERDICT body_replace (buffer mode, after the whole body): the origin
    gets the agent's body, re-framed with its own Content-Length, whatever
    the client's framing; in stream mode the replacement is ignored."""
    new = b"replaced by the agent"
    for chunked in (False, True):
        body = body_of(70000)
        r = h.request(e.port, "POST", "/buf/x?size=2", body=body, chunked=chunked,
                      chunk_sizes=9000, headers=ai.hdrs(replace_body=new.decode()))
        h.status(r, 200, "body_replace (%s)" % ("chunked" if chunked else "Content-Length"))
        h.eq(r.get("X-Request-Bytes"), str(len(new)), "bytes at the origin after body_replace")
        h.eq(r.get("X-Request-Sha256"), h.sha256(new), "the origin got the agent's body")
        h.eq(r.get("X-Request-Chunked"), "0", "re-framed with Content-Length")
    body = body_of(5000)
    r = h.request(e.port, "POST", "/str/x?size=2", body=body,
                  headers=ai.hdrs(replace_body=new.decode()))
    h.status(r, 200, "body_replace in stream mode")
    h.eq(r.get("X-Request-Sha256"), h.sha256(body), "stream mode keeps the client's body")


def test_no_violations(e):
    e.weir.check_alive("the body tests")
    for a in (e.plain, e.credit, e.hdr, e.small, e.bodyonly):
        a.check_no_violations()


if __name__ == "__main__":
    h.main([test_sha_buffer_stream, test_sha_credit, test_small_max_frame,
            test_body_only_subscriber, test_early_allow_stops_body,
            test_events_restricted_by_config, test_need_more,
            test_buffer_block_origin_untouched, test_stream_block_aborts_upstream,
            test_stream_block_after_response_started, test_stream_allow_recorder,
            test_max_body, test_credit_stall_timeout, test_body_replace, test_no_violations],
           setup=setup)
