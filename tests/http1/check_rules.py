#!/usr/bin/env python3
"""docs/HTTP1.md and the tests agree: every rule of the document names the
tests that check it, and each of those tests mentions the rule's id in its
source (tables of cases carry the ids, C tables in comments); every rule id
that a test mentions is documented; every llhttp difference class
(tests/http1/llhttp-known.txt) is documented.

A rule row of docs/HTTP1.md looks like
    | `REQ-CL-SIGN` | requirement | weir does | `it-http1-request` `h1-request` |
(the id in the first cell, the meson test names in the last one).

Exit 0 pass, 1 fail."""

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# meson test name -> the sources that implement it
TESTS = {
    "it-http1-request": ["tests/integration/test_http1_request.py", "tests/http1/rules.py"],
    "it-http1-response": ["tests/integration/test_http1_response.py", "tests/http1/rules.py"],
    "it-http1-conn": ["tests/integration/test_http1_conn.py"],
    "it-http1-slow": ["tests/integration/test_http1_slow.py"],
    "it-http1-slowloris": ["tests/integration/test_http1_slowloris.py"],
    "h1-request": ["tests/unit/http/test_h1_request.c"],
    "h1-response": ["tests/unit/http/test_h1_response.c"],
    "chunked": ["tests/unit/http/test_chunked.c"],
    "fuzz-replay-proxy-request": ["tests/fuzz/fuzz_proxy_request.c"],
    "fuzz-replay-proxy-response": ["tests/fuzz/fuzz_proxy_response.c"],
}

ROW = re.compile(r"^\|\s*`([A-Z]+(?:-[A-Z0-9]+)+)`\s*\|(.*)\|\s*$")
ID_IN_TEST = re.compile(r"(?<![A-Za-z0-9_-])((?:REQ|RSP|FWD|SLOW)-[A-Z0-9]+(?:-[A-Z0-9]+)*)"
                        r"(?![A-Za-z0-9_-])")


def read(rel):
    with open(os.path.join(REPO, rel), encoding="utf-8", errors="replace") as f:
        return f.read()


def mentions(text, rid):
    return re.search(r"(?<![A-Za-z0-9_-])%s(?![A-Za-z0-9_-])" % re.escape(rid), text) is not None


def main():
    doc = read("docs/HTTP1.md")
    errors = []
    rules = {}
    for n, line in enumerate(doc.splitlines(), 1):
        m = ROW.match(line)
        if not m or m.group(1).startswith("LL-"):
            continue
        rid = m.group(1)
        cells = [c.strip() for c in m.group(2).split("|")]
        tests = re.findall(r"`([a-z0-9-]+)`", cells[-1])
        if rid in rules:
            errors.append("docs/HTTP1.md:%d: %s documented twice" % (n, rid))
        rules[rid] = (n, tests)
    if not rules:
        errors.append("docs/HTTP1.md: no rule rows found")
    sources = {}
    for name, files in TESTS.items():
        sources[name] = "\n".join(read(f) for f in files)
    for rid, (n, tests) in sorted(rules.items()):
        if not tests:
            errors.append("docs/HTTP1.md:%d: %s names no test" % (n, rid))
        for t in tests:
            if t not in TESTS:
                errors.append("docs/HTTP1.md:%d: %s: unknown test %r (known: %s)"
                              % (n, rid, t, ", ".join(sorted(TESTS))))
            elif not mentions(sources[t], rid):
                errors.append("docs/HTTP1.md:%d: %s: test %s (%s) does not mention it"
                              % (n, rid, t, ", ".join(TESTS[t])))
    used = set()
    for name, files in TESTS.items():
        for f in files:
            for rid in ID_IN_TEST.findall(read(f)):
                used.add((rid, f))
    for rid, f in sorted(used):
        if rid not in rules:
            errors.append("%s mentions %s, which docs/HTTP1.md does not document" % (f, rid))
    for line in read("tests/http1/llhttp-known.txt").splitlines():
        if line and not line.startswith("#"):
            kid = line.split("\t", 1)[0]
            if not re.search(r"`%s`" % re.escape(kid), doc):
                errors.append("llhttp-known.txt: %s is not documented in docs/HTTP1.md" % kid)
    if errors:
        print("FAIL: docs/HTTP1.md and the tests disagree:")
        for e in errors:
            print("  " + e)
        return 1
    print("PASS: %d rules, each checked by the tests it names" % len(rules))
    return 0


if __name__ == "__main__":
    sys.exit(main())
