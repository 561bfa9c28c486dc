#!/usr/bin/env python3
"""Differential check of weir's HTTP/1 codec against llhttp (docs/HTTP1.md,
"Differences from llhttp").

Runs tests/http1/llhttp-diff (built by tests/http1/meson.build when Debian's
node-llhttp is installed; $LLHTTP_DIFF) over
  - the fuzz corpora: tests/fuzz/corpus/{h1_request,proxy_request} as
    requests, {h1_response,proxy_response} as responses, chunked as chunked
    bodies;
  - the request and response cases of tests/http1/rules.py.
Every input on which the two parsers disagree must match one explained class
of tests/http1/llhttp-known.txt (ID TAB regex-on-the-key TAB summary); each
ID there must be documented in docs/HTTP1.md. Unexplained disagreements fail
the test and are listed with their keys; `llhttp-diff -v MODE FILE` shows
both parsers' views of one input.

Exit 0 pass, 1 fail, 77 skip (node-llhttp not installed)."""

import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.dont_write_bytecode = True
sys.path.insert(0, HERE)
import rules  # noqa: E402

CORPORA = [("request", "h1_request"), ("request", "proxy_request"),
           ("response", "h1_response"), ("response", "proxy_response"),
           ("chunked", "chunked")]


def load_known():
    known = []
    with open(os.path.join(HERE, "llhttp-known.txt"), encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) != 3:
                sys.exit("llhttp-known.txt:%d: want ID TAB regex TAB summary" % n)
            known.append((parts[0], re.compile(parts[1]), parts[2]))
    return known


def run(exe, mode, paths):
    cp = subprocess.run([exe, mode] + paths, capture_output=True, timeout=300)
    if cp.returncode != 0:
        sys.exit("llhttp-diff %s failed (rc %d): %s" % (mode, cp.returncode,
                                                      cp.stderr.decode(errors="replace")))
    out = []
    for line in cp.stdout.decode("latin-1").splitlines():
        name, verdict, key = line.split("\t", 2)
        out.append((name, verdict, key))
    return out


def main():
    exe = os.environ.get("LLHTTP_DIFF")
    if not exe:
        print("SKIP: %s" % os.environ.get("LLHTTP_MISSING", "LLHTTP_DIFF not set"))
        return 77
    if not os.access(exe, os.X_OK):
        print("SKIP: %s is not executable" % exe)
        return 77
    known = load_known()
    with open(os.path.join(REPO, "docs", "HTTP1.md"), encoding="utf-8") as f:
        doc = f.read()
    missing = [kid for kid, _, _ in known if "`%s`" % kid not in doc]
    if missing:
        print("FAIL: llhttp-known.txt classes not documented in docs/HTTP1.md: %s"
              % ", ".join(missing))
        return 1

    results = []   # (mode, source, name, verdict, key)
    for mode, corpus in CORPORA:
        path = os.path.join(REPO, "tests", "fuzz", "corpus", corpus)
        for name, verdict, key in run(exe, mode, [path]):
            results.append((mode, corpus, name, verdict, key))
    with tempfile.TemporaryDirectory(prefix="weir-llhttp-") as tmp:
        for mode, inputs in (("request", rules.request_inputs()),
                             ("response", rules.response_inputs())):
            d = os.path.join(tmp, mode)
            os.mkdir(d)
            for name, raw in inputs:
                with open(os.path.join(d, name), "wb") as f:
                    f.write(raw)
            for name, verdict, key in run(exe, mode, [d]):
                results.append((mode, "rules", name, verdict, key))

    classes = {}
    unexplained = []
    for mode, source, name, verdict, key in results:
        if verdict != "DIFF":
            continue
        full = "%s: %s" % (mode, key)
        for kid, rx, _ in known:
            if rx.search(full):
                classes.setdefault(kid, []).append("%s/%s" % (source, name))
                break
        else:
            unexplained.append("%s/%s: %s" % (source, name, full))

    ndiff = sum(1 for r in results if r[3] == "DIFF")
    print("%d inputs, %d agree, %d disagree" % (len(results), len(results) - ndiff, ndiff))
    for kid, _, summary in known:
        hits = classes.get(kid, [])
        print("  %-28s %4d  %s%s" % (kid, len(hits), summary,
                                    (" (e.g. %s)" % hits[0]) if hits else ""))
    if unexplained:
        print("FAIL: %d disagreement(s) no class of llhttp-known.txt explains:" % len(unexplained))
        for u in unexplained:
            print("  " + u)
        print("(llhttp-diff -v MODE FILE shows both views; fix weir or add a class to "
              "tests/http1/llhttp-known.txt and docs/HTTP1.md)")
        return 1
    print("PASS: every disagreement is explained")
    return 0


if __name__ == "__main__":
    sys.exit(main())
