#!/usr/bin/env python3
"""Agents, verdicts: weir + weir-origin + the Python test agent
(tests/agent/test_agent.py, written from docs/agent-protocol.md alone).

allow; block with custom status, headers and body (origin untouched);
redirect; request header mutations seen by the origin and response header
mutations seen by the client; what REQUEST_HEADERS carries; verdicts
answered out of order, on many connections and pipelined; response-phase
verdicts and REQUEST_DONE; two agents on a route (first block wins, CANCEL
reason 3 to the other); the agent's protocol checks find nothing."""

import os
import sys
import threading
import time

sys.dont_write_bytecode = True
import harness as h  # noqa: E402
sys.path.insert(0, os.path.join(h.REPO, "tests", "agent"))
import agent_it as ai  # noqa: E402


class Env:
    pass


def setup():
    ai.agent_python()
    e = Env()
    e.origin = h.start_origin()
    e.waf = ai.start_agent("waf", events="request_headers", args=["--mark"])
    e.resp = ai.start_agent("resp", events="request_headers,response_headers,request_done",
                            args=["--mark"])
    # the second agent over TCP, the others over Unix sockets
    e.second = ai.start_agent("second", events="request_headers", args=["--prefix", "X-Agent2-"],
                              tcp=h.free_port())
    e.rbody = ai.start_agent("rbody", events="request_headers,response_body")
    cfg = ai.config(e.origin, {
        "waf": {"socket": e.waf.unix, "timeout": "3s"},
        "resp": {"socket": e.resp.unix, "timeout": "3s"},
        "second": {"tcp": "127.0.0.1:%d" % e.second.tcp, "timeout": "3s"},
        "rbody": {"socket": e.rbody.unix, "timeout": "3s"},
    }, [
        "{name: plain, path_prefix: /o/, upstream: app}",
        "{name: guarded, path_prefix: /a/, upstream: app, agents: [waf]}",
        "{name: respphase, path_prefix: /r/, upstream: app, agents: [resp]}",
        "{name: both, path_prefix: /two/, upstream: app, agents: [waf, second]}",
        "{name: rbody, path_prefix: /rb/, upstream: app, agents: [rbody]}",
    ])
    e.weir = h.start_weir(cfg)
    e.port = e.weir.port
    # wait until weir's agent connections are up: a guarded request answered by the agent
    deadline = time.monotonic() + 5
    while True:
        r = h.request(e.port, "GET", "/a/warmup?size=1")
        if r.status == 200 and r.get("X-Agent-Seen"):
            break
        if time.monotonic() > deadline:
            raise h.TestFailure("agent never consulted on /a/ (last status %d %r)" %
                                (r.status, r.headers))
        time.sleep(0.05)
    return e


def tagged(tag, *extra):
    return [("X-Test-Id", tag)] + [x for lst in extra for x in lst]


def test_hello(e):
    """HELLO: version 1, the agent's name in weir's config, the reactor, a
    max_frame within limits; weir sends the events the agent asked for."""
    for a, name, want in ((e.waf, "waf", 0x01), (e.resp, "resp", 0x15),
                          (e.rbody, "rbody", 0x0D)):
        c = a.wait(lambda r: True, 3, "conn_open", "a connection from weir")
        hello = c["hello"]
        h.eq(hello.get("1"), 1, "%s: HELLO version" % name)
        h.eq(hello.get("6"), name, "%s: HELLO name (the agent's name in weir's config)" % name)
        h.eq(hello.get("9"), 0, "%s: HELLO reactor (one reactor)" % name)
        h.check(64 * 1024 <= hello.get("3", 0) <= 16 * 1024 * 1024,
                "%s: HELLO max_frame %r" % (name, hello.get("3")))
        h.eq(hello.get("5", 0) & want, want, "%s: HELLO events cover what the agent asked" % name)
        h.eq(len(a.records("conn_open")), 1, "%s: connections (workers 1, connections 1)" % name)


def test_allow(e):
    with h.Conn(e.port) as c:
        r = c.request("GET", "/a/allow?size=1000&sha=1",
                      headers=tagged("allow-1", [("x-Mixed-CASE", "v1"), ("X-Dup", "a"),
                                                 ("X-Dup", "b")]))
        h.status(r, 200, "GET allowed by the agent")
        h.body_sha(r, "allowed GET")
        h.pattern_check(r.body, 1000, "allowed GET")
        h.check(r.get("X-Origin-Conn") is not None, "allowed GET did not reach the origin")
        h.check((r.get("X-Agent-Seen") or "").startswith("waf "),
                "the agent's resp_add X-Agent-Seen missing: %r" % r.headers)
        cport = c.sock.getsockname()[1]
    rec = e.waf.wait_tag("allow-1")
    h.eq(rec["method"], "GET", "REQUEST_HEADERS method")
    h.eq(rec["target"], "/a/allow?size=1000&sha=1", "REQUEST_HEADERS target (as received)")
    h.eq(rec["http_minor"], 1, "http_minor")
    h.eq(rec["route"], "guarded", "route name")
    h.eq(rec["client_addr"], "127.0.0.1", "client_addr")
    h.eq(rec["client_port"], cport, "client_port (the client's source port)")
    h.check(rec["uid"], "uid empty")
    h.check(rec["uid"] in r.get("X-Agent-Seen"),
            "uid %r not the one the verdict named" % rec["uid"])
    h.eq(rec["headers"], [["Host", "localhost"], ["X-Test-Id", "allow-1"],
                          ["x-Mixed-CASE", "v1"], ["X-Dup", "a"], ["X-Dup", "b"]],
         "REQUEST_HEADERS headers: the request's own fields, in order, case kept")
    h.eq(rec["no_body"], True, "GET without body: REQUEST_HEADERS has LAST")
    h.eq(rec["body_length"], None, "GET without body: no body_length")
    h.eq(rec["events"], ["request_headers"], "events seen")
    h.eq(rec["closed"], "silent", "id closed silently after the verdict")
    # HTTP/1.0
    r = h.request(e.port, "GET", "/a/allow10?size=3", headers=tagged("allow-10"),
                  version="HTTP/1.0")
    h.status(r, 200, "HTTP/1.0 GET allowed")
    h.eq(e.waf.wait_tag("allow-10")["http_minor"], 0, "http_minor of an HTTP/1.0 request")
    # a POST with Content-Length: the head says body_length (agent not on the body)
    r = h.request(e.port, "POST", "/a/post", headers=tagged("allow-post"), body=b"x" * 5000)
    h.status(r, 200, "POST allowed on the headers")
    h.eq(r.get("X-Request-Bytes"), "5000", "origin got the POST body")
    rec = e.waf.wait_tag("allow-post")
    h.eq((rec["body_length"], rec["no_body"], rec["body_bytes"]), (5000, False, 0),
         "POST head: body_length 5000, no LAST, no body frames (not subscribed)")


def test_block(e):
    before = e.origin.stats()["requests"]
    with h.Conn(e.port) as c:
        r = c.request("GET", "/a/block?size=10", headers=tagged(
            "block-1", ai.hdrs(action="block", status=451, body="blocked by policy",
                               header=["X-Blocked: yes", "Content-Type: text/x-block",
                                       "Cache-Control: no-store"],
                               reason="test block", tags="t1,t2", rule_ids="942100,custom",
                               score=7)))
        h.status(r, 451, "blocked GET: the agent's status")
        h.eq(r.body, b"blocked by policy", "block body")
        h.eq(r.get("X-Blocked"), "yes", "block response field X-Blocked")
        h.eq(r.get_all("Content-Type"), ["text/x-block"], "block Content-Type from headers_out")
        h.eq(r.get("Cache-Control"), "no-store", "block field Cache-Control")
        h.check(r.get("X-Origin-Conn") is None, "blocked response came from the origin")
        # the connection goes on after a block of a request without body
        r2 = c.request("GET", "/a/after-block?size=5&sha=1", headers=tagged("block-after"))
        h.status(r2, 200, "request after a block on the same connection")
        h.body_sha(r2, "after block")
    # default status 403, str body
    r = h.request(e.port, "GET", "/a/block2", headers=tagged(
        "block-2", ai.hdrs(action="block", body="str body", body_str=1)))
    h.status(r, 403, "block without status: default 403")
    h.eq(r.body, b"str body", "block body sent as MessagePack str")
    # no body at all
    r = h.request(e.port, "GET", "/a/block3", headers=tagged("block-3", ai.hdrs(action="block",
                                                                               status=500)))
    h.status(r, 500, "block 500")
    # a large block body
    r = h.request(e.port, "GET", "/a/block4", headers=tagged(
        "block-4", ai.hdrs(action="block", status=200, body_size=60000)))
    h.status(r, 200, "block with status 200")
    h.pattern_check(r.body, 60000, "60000-byte block body")
    # HEAD: a block answer has no body
    with h.Conn(e.port) as c:
        r = c.request("HEAD", "/a/block5", headers=tagged(
            "block-5", ai.hdrs(action="block", status=403, body="not for HEAD")))
        h.status(r, 403, "HEAD blocked")
        r = c.request("GET", "/a/after-head?size=2", headers=tagged("block-5b"))
        h.status(r, 200, "GET after a blocked HEAD (no stray body bytes)")
    after = e.origin.stats()["requests"]
    h.eq(after - before - 1, 2, "origin requests during the block tests (only the 2 allowed "
         "ones; /_stats itself counts once)")
    rec = e.waf.wait_tag("block-1")
    h.eq(rec["verdict"]["action"], "block", "logged verdict")


def test_redirect(e):
    r = h.request(e.port, "GET", "/a/redir", headers=tagged(
        "redir-1", ai.hdrs(action="redirect", status=307, location="https://example.com/login?x=1",
                           header="X-Why: login")))
    h.status(r, 307, "redirect 307")
    h.eq(r.get("Location"), "https://example.com/login?x=1", "Location")
    h.eq(r.get("X-Why"), "login", "redirect headers_out")
    h.check(r.get("X-Origin-Conn") is None, "redirect reached the origin")
    r = h.request(e.port, "GET", "/a/redir2", headers=tagged(
        "redir-2", ai.hdrs(action="redirect", location="/elsewhere")))
    h.status(r, 302, "redirect without status: default 302")
    h.eq(r.get("Location"), "/elsewhere", "Location (default status)")
    for st in (301, 303, 308):
        r = h.request(e.port, "GET", "/a/redir3", headers=tagged(
            "redir-%d" % st, ai.hdrs(action="redirect", status=st, location="/x")))
        h.status(r, st, "redirect %d" % st)


def test_request_mutations(e):
    r = h.request(e.port, "GET", "/a/mut?headers=1", headers=tagged(
        "mut-1",
        [("X-Set", "client-1"), ("x-set", "client-2"), ("X-Add", "client"), ("X-Del", "gone"),
         ("X-Keep", "kept"), ("x-del", "gone too")],
        ai.hdrs(req_set=["X-Set: agent", "X-New: fresh"], req_add=["X-Add: agent"],
                req_del=["x-DEL", "X-Absent"])), host="mut.example")
    h.status(r, 200, "mutated request")
    line, hs = h.parse_request_block(r.body)
    where = "origin saw: %r" % r.body.decode("latin-1")
    h.eq(h.hget_all(hs, "X-Set"), ["agent"], "req_set replaces every X-Set; " + where)
    h.eq(h.hget_all(hs, "X-New"), ["fresh"], "req_set adds an absent field; " + where)
    h.eq(h.hget_all(hs, "X-Add"), ["client", "agent"], "req_add appends; " + where)
    h.eq(h.hget_all(hs, "X-Del"), [], "req_del removes every X-Del; " + where)
    h.eq(h.hget_all(hs, "X-Keep"), ["kept"], "untouched field; " + where)
    h.eq(h.hget_all(hs, "Host"), ["mut.example"], "Host; " + where)
    # framing/connection fields cannot be mutated: ignored, the request still goes
    body = b"0123456789"
    r = h.request(e.port, "POST", "/a/mut2?headers=1", body=body, host="keep.example",
                  headers=tagged("mut-2", ai.hdrs(
                      req_set=["Host: evil.example", "Content-Length: 3", "X-Ok: 1"],
                      req_del=["Host", "Content-Length"],
                      req_add=["Transfer-Encoding: chunked", "Connection: close"])))
    h.status(r, 200, "request with forbidden mutations")
    line, hs = h.parse_request_block(r.body)
    where = "origin saw: %r" % r.body.decode("latin-1")
    h.eq(h.hget_all(hs, "Host"), ["keep.example"], "Host not mutable; " + where)
    h.eq(h.hget_all(hs, "Content-Length"), ["10"], "Content-Length not mutable; " + where)
    h.eq(h.hget_all(hs, "Transfer-Encoding"), [], "Transfer-Encoding not addable; " + where)
    h.eq(h.hget_all(hs, "X-Ok"), ["1"], "the allowed mutation in the same list; " + where)
    h.eq(r.get("X-Request-Bytes"), "10", "origin got the whole body")


def test_response_mutations(e):
    r = h.request(e.port, "GET", "/a/rmut?size=7", headers=tagged(
        "rmut-1", ai.hdrs(resp_set=["X-Origin-Requests: hidden", "X-Fresh: 1"],
                          resp_add=["X-Added: a", "X-Added: b"],
                          resp_del=["x-request-method", "X-Not-There"])))
    h.status(r, 200, "response mutations")
    h.eq(r.get_all("X-Origin-Requests"), ["hidden"], "resp_set replaced the origin's field")
    h.eq(r.get_all("X-Fresh"), ["1"], "resp_set added a field")
    h.eq(r.get_all("X-Added"), ["a", "b"], "resp_add appended twice")
    h.eq(r.get_all("X-Request-Method"), [], "resp_del removed the origin's field")
    h.eq(len(r.body), 7, "body intact")
    h.check(r.get("X-Origin-Conn") is not None, "other origin fields kept")


def test_out_of_order(e):
    """Verdicts answered in reverse order: on 20 connections at once, and
    pipelined on one connection (responses still in request order)."""
    results = {}

    def one(i, delay):
        try:
            r = h.request(e.port, "GET", "/a/ooo%d" % i, timeout=10, headers=tagged(
                "ooo-%d" % i, ai.hdrs(action="block", status=400 + i, body="verdict %d" % i,
                                      delay_ms=delay)))
            results[i] = (r.status, r.body)
        except Exception as ex:     # noqa: BLE001
            results[i] = ex
    ts = [threading.Thread(target=one, args=(i, 50 * (20 - i))) for i in range(20)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(20)
    for i in range(20):
        h.eq(results.get(i), (400 + i, b"verdict %d" % i), "request %d's own verdict" % i)
    recs = [e.waf.wait_tag("ooo-%d" % i) for i in range(20)]
    conns = {r["conn"] for r in recs}
    h.eq(len(conns), 1, "all 20 on the one agent connection")
    # pipelined: delays 400, 300, 200, 100, 0 ms
    with h.Conn(e.port, timeout=10) as c:
        reqs = b""
        for i in range(5):
            reqs += h.build_request("GET", "/a/pipe%d?size=%d" % (i, i + 1), headers=tagged(
                "pipe-%d" % i, ai.hdrs(delay_ms=400 - 100 * i,
                                       resp_set="X-Pipe: %d" % i)))
        c.send(reqs)
        for i in range(5):
            r = c.read_response("GET")
            h.status(r, 200, "pipelined request %d" % i)
            h.eq(r.get("X-Pipe"), str(i), "pipelined response %d carries its own verdict" % i)
            h.eq(len(r.body), i + 1, "pipelined response %d body" % i)


def test_response_phase(e):
    # allow in both phases; the response-phase resp_add reaches the client
    r = h.request(e.port, "GET", "/r/allow?size=100", headers=tagged(
        "rp-1", ai.hdrs(response_add="X-Resp-Phase: ok")))
    h.status(r, 200, "response phase allow")
    h.eq(r.get("X-Resp-Phase"), "ok", "resp_add of the response-phase verdict")
    h.eq(len(r.body), 100, "body")
    rec = e.resp.wait_tag("rp-1")
    h.eq(rec["events"], ["request_headers", "response_headers", "request_done"], "events")
    h.eq(rec["resp_status"], 200, "RESPONSE_HEADERS status")
    h.eq(rec["closed"], "done", "closed by REQUEST_DONE")
    h.eq(rec["done"]["status"], 200, "REQUEST_DONE status")
    h.eq(rec["done"]["bytes_out"], 100, "REQUEST_DONE bytes_out")
    h.eq(rec["done"]["bytes_in"], 0, "REQUEST_DONE bytes_in")
    # a response-phase block replaces the origin's response
    r = h.request(e.port, "GET", "/r/rblock?size=100&status=201", headers=tagged(
        "rp-2", ai.hdrs(response_action="block", response_status=502,
                        response_body="response blocked")))
    h.status(r, 502, "response-phase block")
    h.eq(r.body, b"response blocked", "response-phase block body")
    h.check(r.get("X-Origin-Conn") is None, "origin's head leaked into the block")
    rec = e.resp.wait_tag("rp-2")
    h.eq(rec["resp_status"], 201, "agent saw the origin's status")
    h.eq(rec["done"]["status"] if rec["done"] else None, 502,
         "REQUEST_DONE status of the replaced response")
    # a request-phase block on this agent: REQUEST_DONE follows, no response event
    r = h.request(e.port, "GET", "/r/qblock?size=100", headers=tagged(
        "rp-3", ai.hdrs(action="block", status=409, body="no")))
    h.status(r, 409, "request-phase block on a response agent")
    rec = e.resp.wait_tag("rp-3")
    h.eq(rec["events"], ["request_headers", "request_done"], "events of a blocked request")
    h.eq(rec["done"]["status"], 409, "REQUEST_DONE status after the block")
    # response without body (204): RESPONSE_HEADERS with LAST
    r = h.request(e.port, "GET", "/r/nobody?status=204", headers=tagged("rp-4"))
    h.status(r, 204, "204 through a response agent")
    rec = e.resp.wait_tag("rp-4")
    h.eq(rec["resp_status"], 204, "RESPONSE_HEADERS 204")


def test_response_body(e):
    """response_body: the agent sees the response body exactly (SHA-256),
    Content-Length and chunked; weir does not wait for it; the id closes
    after the last RESPONSE_BODY."""
    for q, n in (("size=1000000", 1000000), ("size=700001&chunked=1&chunk=9000", 700001),
                 ("size=0", 0)):
        tag = "rb-%s" % q
        r = h.request(e.port, "GET", "/rb/x?sha=1&" + q, headers=tagged(tag))
        h.status(r, 200, "GET %s through a response_body agent" % q)
        h.body_sha(r, "response through a response_body agent")
        rec = e.rbody.wait_tag(tag)
        h.eq(rec["resp_status"], 200, "RESPONSE_HEADERS status")
        h.eq(rec["resp_body_bytes"], n, "%s: response body bytes the agent saw" % q)
        if n:
            h.eq(rec["resp_body_sha256"], h.sha256(r.body), "%s: SHA-256 of the response body "
                 "the agent saw" % q)
            h.check(rec["resp_body_last"], "%s: no LAST RESPONSE_BODY" % q)
        h.check(rec["resp_offsets_ok"], "%s: response body offsets" % q)
        h.eq(rec["closed"], "silent", "%s: id closed silently after the last response event" % q)
    # POST: REQUEST_DONE carries bytes_in
    r = h.request(e.port, "POST", "/r/post?size=10", body=b"z" * 12345, headers=tagged("rp-post"))
    h.status(r, 200, "POST through the response agent")
    rec = e.resp.wait_tag("rp-post")
    h.eq((rec["done"]["bytes_in"], rec["done"]["bytes_out"], rec["done"]["status"]),
         (12345, 10, 200), "REQUEST_DONE bytes_in, bytes_out, status")
    h.check(0 <= rec["done"]["duration_us"] < 10 * 1000 * 1000, "REQUEST_DONE duration_us %r" %
            rec["done"]["duration_us"])


def test_header_bytes(e):
    """Header values are passed byte for byte (obs-text included)."""
    raw = (b"GET /a/bytes?size=1 HTTP/1.1\r\nHost: x\r\nX-Test-Id: bytes\r\n"
           b"X-Latin: caf\xe9 \x80\xff\r\nX-Tab: a\tb\r\n\r\n")
    with h.Conn(e.port) as c:
        c.send(raw)
        r = c.read_response()
        h.status(r, 200, "request with obs-text in a field value")
    rec = e.waf.wait_tag("bytes")
    got = dict((k, v) for k, v in rec["headers"])
    h.eq(got.get("X-Latin", "").encode("utf-8", "surrogateescape"), b"caf\xe9 \x80\xff",
         "obs-text field value as the agent received it")
    h.eq(got.get("X-Tab"), "a\tb", "field value with a tab")


def test_two_agents(e):
    # both allow
    r = h.request(e.port, "GET", "/two/ok?size=3", headers=tagged("two-1"))
    h.status(r, 200, "both agents allow")
    e.waf.wait_tag("two-1")
    e.second.wait_tag("two-1")
    # the second blocks
    r = h.request(e.port, "GET", "/two/b2", headers=tagged(
        "two-2", [("X-Agent2-Action", "block"), ("X-Agent2-Status", "418"),
                  ("X-Agent2-Body", "second says no")]))
    h.status(r, 418, "second agent blocks")
    h.eq(r.body, b"second says no", "second agent's body")
    # first block wins: waf blocks at once, second stalls -> CANCEL reason 3 to second
    t0 = time.monotonic()
    r = h.request(e.port, "GET", "/two/b1", headers=tagged(
        "two-3", ai.hdrs(action="block", status=451, body="waf first"),
        [("X-Agent2-Action", "stall")]))
    dt = time.monotonic() - t0
    h.status(r, 451, "first block wins")
    h.eq(r.body, b"waf first", "the blocking agent's body")
    rec = e.second.wait_tag("two-3")
    h.eq((rec["closed"], rec["cancel_reason"]), ("cancel", 3),
         "the other agent gets CANCEL reason 3 (blocked by another agent)")
    # both block: one of the two blocks is the answer
    r = h.request(e.port, "GET", "/two/bb", headers=tagged(
        "two-4", ai.hdrs(action="block", status=451, delay_ms=300),
        [("X-Agent2-Action", "block"), ("X-Agent2-Status", "452")]))
    h.status(r, 452, "the earlier block (second agent, no delay) wins")


def test_no_violations(e):
    e.weir.check_alive("the verdict tests")
    for a in (e.waf, e.resp, e.second, e.rbody):
        a.check_no_violations()
        h.check(a.alive(), "agent %s died" % a.name)


if __name__ == "__main__":
    h.main([test_hello, test_allow, test_block, test_redirect, test_request_mutations,
            test_response_mutations, test_out_of_order, test_response_phase, test_response_body,
            test_header_bytes, test_two_agents,
            test_no_violations], setup=setup)
