#!/usr/bin/env python3
"""weir-waf, blocking mode, CRS paranoia level 1: every attack of
malicious.txt, in every placement listed (query string, headers, cookies,
urlencoded, multipart and JSON bodies, bodies whose payload is split across
chunks sent apart), is answered 403 by weir and never reaches the origin;
the verdict names the CRS rules (weir's weir_agent_rule_blocks_total) and
the agent's line the score; the benign set (API calls, form posts, JSON
documents, file uploads, browser headers) all reach the origin."""

import json
import os
import sys
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import waf_it as w  # noqa: E402
from waf_it import h  # noqa: E402


class Env:
    pass


def setup():
    w.waf_bin()
    e = Env()
    e.origin = w.h.start_origin()
    e.waf = w.start_waf(w.API_METHODS)
    e.admin = h.free_port()
    cfg = w.config(e.origin, {"waf": {"socket": e.waf.sock, "timeout": "5s",
                                      "events": "[request_headers, request_body]",
                                      "body_mode": "buffer"}},
                   ["{name: waf, path_prefix: /, upstream: app, agents: [waf]}"],
                   admin_port=e.admin)
    e.weir = h.start_weir(cfg)
    e.port = e.weir.port
    w.wait_agent(e.port, "/warmup")
    return e


def origin_requests(e):
    """The origin's request count, not counting this /_stats request."""
    return e.origin.stats()["requests"] - 1


def metrics(e):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % e.admin, timeout=5) as r:
        return r.read().decode()


def rule_blocks(e):
    out = {}
    for ln in metrics(e).splitlines():
        if ln.startswith('weir_agent_rule_blocks_total{agent="waf"'):
            rule = ln.split('rule="')[1].split('"')[0]
            out[rule] = int(float(ln.rsplit(" ", 1)[1]))
    return out


def test_malicious(e):
    cases = w.load_cases("malicious.txt")
    h.check(len(cases) >= 15, "malicious.txt: only %d cases" % len(cases))
    failures = []
    n = 0
    classes = set()
    before_blocks = sum(rule_blocks(e).values())
    before_verdicts = h.agent_metric(e.admin, "weir_agent_blocks_total", "waf")
    for line, cls, places, payload in cases:
        for where in places:
            n += 1
            path = "/m/%d-%s-%d" % (line, where, n)
            method, target, hdrs, body, pieces = w.place(path, where, payload)
            seen = origin_requests(e)
            r = w.send(e.port, method, target, hdrs, body, pieces)
            after = origin_requests(e) - 1   # less the first /_stats
            what = "malicious.txt:%d %s in %s" % (line, cls, where)
            if r.status != 403:
                failures.append("%s: status %d (expected 403)" % (what, r.status))
                continue
            if after != seen:
                failures.append("%s: the origin saw the request" % what)
            if b"web application firewall" not in r.body:
                failures.append("%s: 403 body is not weir-waf's: %r" % (what, r.body[:80]))
            # the agent's report: rules, a score over the threshold
            d = e.waf.find(path if where != "path" else path + payload)
            if d is None:
                failures.append("%s: no weir-waf detection line for %s" % (what, path))
                continue
            if d["action"] != "block" or not d["rules"] or d["score"] < 5:
                failures.append("%s: agent line %r" % (what, d))
            if pieces is not None and d["body_frames"] < 2:
                failures.append("%s: payload split in %d pieces reached the agent in %d body "
                                "event(s)" % (what, len(pieces), d["body_frames"]))
            if pieces is not None and d["body_bytes"] != len(body):
                failures.append("%s: agent saw %d body bytes of %d" %
                                (what, d["body_bytes"], len(body)))
            classes.add(cls)
    h.check(not failures, "%d of %d attacks not handled:\n  %s" %
            (len(failures), n, "\n  ".join(failures)))
    h.eq(classes, {"sqli", "xss", "lfi", "rce", "php", "scanner", "protocol"},
         "attack classes blocked")
    # weir counted every block verdict, and the rule ids they carried
    h.eq(h.agent_metric(e.admin, "weir_agent_blocks_total", "waf") - before_verdicts, n,
         "weir_agent_blocks_total{agent=waf} after %d blocked attacks" % n)
    blocks = rule_blocks(e)
    h.check(sum(blocks.values()) > before_blocks + n,
            "weir_agent_rule_blocks_total: %d -> %d for %d blocks" %
            (before_blocks, sum(blocks.values()), n))
    for rule in ("942100", "941100", "930100", "932100", "933100", "913100", "921130"):
        h.check(blocks.get(rule, 0) > 0, "no block counted for CRS rule %s: %r" % (rule, blocks))


def benign_cases():
    api = [("Accept", "application/json"), ("Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x")]
    png = bytes(range(256)) * 8
    ct_mp, mp = w.multipart([("title", "Holiday photos"), ("description", "Beach, day 2 (sunny!)")],
                            [("photo", "beach.png", "image/png", png),
                             ("notes", "notes.txt", "text/plain",
                              b"Remember: buy sunscreen & water.\nTotal: 12.50 EUR\n")])
    doc = {"id": 42, "name": "Widget Pro", "tags": ["blue", "large"], "price": 19.99,
           "dimensions": {"w": 10, "h": 2.5}, "active": True, "notes": None,
           "description": "A widget for everyday use. It's great, isn't it?"}
    return [
        ("GET", "/api/v1/users?page=2&per_page=50&sort=-created_at", api, None),
        ("GET", "/api/v1/search?q=red+shoes&size=42&color=dark%20red", api, None),
        ("GET", "/static/css/site.min.css?v=3.2.1", [("Referer", "http://localhost/")], None),
        ("GET", "/products/widget-pro", [("Cookie", "session=9f8e7d6c5b4a; theme=dark; lang=en"),
                                         ("Cache-Control", "max-age=0"),
                                         ("DNT", "1"), ("Upgrade-Insecure-Requests", "1")], None),
        ("POST", "/login", [("Content-Type", "application/x-www-form-urlencoded")],
         b"username=alice%40example.com&password=S3cure%21pass&remember=on"),
        ("POST", "/contact", [("Content-Type", "application/x-www-form-urlencoded")],
         b"name=John+Smith&email=john%40example.com&subject=Order+%2312345"
         b"&message=Hello%2C+my+order+has+not+arrived+yet.+Could+you+check%3F+Thanks%21"),
        ("POST", "/api/v1/products", api + [("Content-Type", "application/json")],
         json.dumps(doc).encode()),
        ("PUT", "/api/v1/products/42", api + [("Content-Type", "application/json; charset=utf-8")],
         json.dumps({"price": 17.5, "tags": ["sale"]}).encode()),
        ("PATCH", "/api/v1/users/7", api + [("Content-Type", "application/json")],
         json.dumps({"display_name": "Zoë Müller", "bio": "Hiking & photography"}).encode()),
        ("DELETE", "/api/v1/sessions/abc123", api, None),
        ("POST", "/upload", [("Content-Type", ct_mp)], mp),
        ("POST", "/api/v1/batch", api + [("Content-Type", "application/json")],
         json.dumps([{"op": "add", "path": "/items/%d" % i, "value": {"qty": i}}
                     for i in range(50)]).encode()),
        ("HEAD", "/index.html", [], None),
        ("OPTIONS", "/api/v1/users", [("Origin", "http://localhost"),
                                      ("Access-Control-Request-Method", "POST")], None),
    ]


def test_benign(e):
    failures = []
    cases = benign_cases()
    for i, (method, target, extra, body) in enumerate(cases):
        hdrs = [(k, v) for k, v in w.BROWSER if k not in {x for x, _ in extra}] + extra
        seen = origin_requests(e)
        r = h.request(e.port, method, target, headers=hdrs, body=body)
        if r.status != 200:
            failures.append("%s %s: status %d %r" % (method, target, r.status, r.body[:100]))
        elif origin_requests(e) != seen + 2:
            failures.append("%s %s: the origin did not see it" % (method, target))
        elif body is not None and r.get("X-Request-Bytes") != str(len(body)):
            failures.append("%s %s: origin got %s body bytes of %d" %
                            (method, target, r.get("X-Request-Bytes"), len(body)))
    h.check(not failures, "benign requests blocked or altered:\n  " + "\n  ".join(failures))
    # the benign set also went through chunked, in pieces
    method, target, extra, body = cases[6]
    r = w.send(e.port, method, target, w.BROWSER + extra, body,
               [body[:40], body[40:90], body[90:]])
    h.status(r, 200, "benign JSON sent chunked in three pieces")
    h.eq(r.get("X-Request-Bytes"), str(len(body)), "origin got the chunked JSON body")


def test_agent_alive(e):
    h.check(e.waf.proc.alive(), "weir-waf died")
    e.weir.check_alive("the WAF tests")


if __name__ == "__main__":
    h.main([test_malicious, test_benign, test_agent_alive], setup=setup)
