#!/usr/bin/python3
"""Writes the seed corpus of fuzz_sdk_frames (tests/sdk/corpus/sdk_frames/):
byte streams weir could send an agent, built from docs/agent-protocol.md.
Run once by hand (needs python3-msgpack); the files are committed.

    /usr/bin/python3 tests/sdk/corpus/make_seeds.py
"""

import os
import struct

import msgpack

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sdk_frames")

HELLO, REQH, REQB, RESPH, RESPB, DONE, CANCEL, PING = range(1, 9)
LAST = 1


def frame(t, rid, fields, flags=0):
    p = msgpack.packb(fields, use_bin_type=True)
    return struct.pack(">IBBHQ", 12 + len(p), t, flags, 0, rid) + p


def hello(events=0x1f, caps=1):
    return frame(HELLO, 0, {1: 1, 2: caps, 3: 262144, 5: events, 6: "waf", 9: 0})


def req(rid, method="GET", target="/", last=True, body_length=None, headers=None):
    f = {10: method, 11: target, 12: 1,
         13: headers if headers is not None else ["Host", "example.com", "User-Agent", "t"],
         14: "127.0.0.1", 15: 40512, 16: "api", 40: "0-%d" % rid}
    if body_length is not None:
        f[17] = body_length
    return frame(REQH, rid, f, LAST if last else 0)


def body(rid, off, data, last=False, t=REQB):
    return frame(t, rid, {18: off, 19: data}, LAST if last else 0)


def resp(rid, status=200, last=False):
    return frame(RESPH, rid, {20: status, 12: 1, 13: ["Content-Length", "2"], 17: 2},
                 LAST if last else 0)


seeds = {
    "hello": hello(),
    "get": hello() + req(8),
    "post-body": hello() + req(3, "POST", "/login", False, 9) + body(3, 0, b"user=root", True),
    "block-body": hello() + req(11, "POST", "/x", False) + body(11, 0, b"Bad") + body(11, 3, b"", True),
    "need-more": hello(0x01) + req(4, "POST", "/", False) + body(4, 100, b"late", True),
    "credit": hello() + req(7, "POST", "/", False) + body(7, 0, b"a" * 64) + body(7, 64, b"b" * 64)
    + body(7, 128, b"c", True),
    "response": hello() + req(16) + resp(16) + body(16, 0, b"ok", True, RESPB)
    + frame(DONE, 16, {20: 200, 35: 0, 36: 2, 37: 1830}),
    "response-5xx": hello(0x05) + req(24) + resp(24, 503, True),
    "cancel": hello() + req(5) + req(13, last=False) + frame(CANCEL, 13, {39: 1})
    + frame(CANCEL, 5, {39: 2}),
    "ping": hello() + frame(PING, 7, {}) + frame(PING, 0, {}),
    "pipeline": hello() + b"".join(req(i, target="/p%d" % i) for i in range(1, 40)),
    "async": hello(0x11) + req(5) + req(21) + frame(DONE, 21, {20: 200}),
    "reuse-id": hello(0x05) + req(9) + req(9),
    "late-frames": hello(0x01) + req(1, last=False) + body(1, 0, b"x", True)
    + frame(CANCEL, 1, {39: 7}),
    "many-headers": hello() + req(8, headers=sum((["X-H%d" % i, "v" * i] for i in range(40)), [])),
    "more-headers": hello() + req(16, headers=sum((["X-H%d" % i, "v"] for i in range(70)), []))
    + frame(RESPH, 16, {20: 200, 13: sum((["X-R", "%d" % i] for i in range(70)), [])}, LAST),
    "unknown-keys": hello() + frame(REQH, 8, {10: "GET", 11: "/", 99: [1, {2: b"x"}, None],
                                              100: msgpack.ExtType(5, b"ab")}, LAST),
    "version2": frame(HELLO, 0, {1: 2}),
    "no-hello": req(1),
    "garbage": b"\x00\x00\x00\x20" + bytes(range(32)),
    "huge": b"\x7f\xff\xff\xff" + b"\x01" * 12,
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print("%d seeds in %s" % (len(seeds), OUT))


if __name__ == "__main__":
    main()
