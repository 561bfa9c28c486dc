#!/usr/bin/python3
"""A hostile agent for the shared-memory transport (stdlib only): it takes
the shm capability, maps weir's rings, and on weir's first request writes
garbage into the agent -> weir ring, then wakes weir and keeps the socket
open (so that weir must notice the garbage itself, not an EOF).

    shm_hostile.py --unix PATH --mode MODE
    MODE: huge-prod | bad-record | release-oob | release-unheld | two-frames

Prints "ready" once listening; every connection weir opens gets the same
treatment."""

import argparse
import mmap
import os
import socket
import struct
import sys
import threading
import time

HDR = 4096


def frame(t, rid, payload):
    return struct.pack(">IBBHQ", 12 + len(payload), t, 0, 0, rid) + payload


def read_frame(s):
    buf = b""
    while len(buf) < 4:
        d = s.recv(4 - len(buf))
        if not d:
            raise EOFError
        buf += d
    n = struct.unpack(">I", buf)[0]
    while len(buf) < 4 + n:
        d = s.recv(4 + n - len(buf))
        if not d:
            raise EOFError
        buf += d
    return buf


def serve(s, mode):
    read_frame(s)                       # HELLO
    # HELLO_REPLY: version 1, caps shm, max_frame 256K, events request_headers
    s.sendall(frame(0x81, 0, b"\x84\x01\x01\x02\x02\x03\xce\x00\x04\x00\x00\x05\x01"))
    msg, fds, _, _ = socket.recv_fds(s, 64, 4)
    if len(fds) != 4:
        return
    ctl = mmap.mmap(fds[0], 0)
    p2a_off, = struct.unpack_from("<Q", ctl, 24)
    a2p_off, = struct.unpack_from("<Q", ctl, 40)
    a2p_size, = struct.unpack_from("<I", ctl, 48)
    s.sendall(frame(0x87, 0, b"\x81\x33\x00"))        # SHM_READY, status 0
    # wait for weir's first record (a REQUEST_HEADERS)
    while struct.unpack_from("<Q", ctl, p2a_off)[0] == 0:
        time.sleep(0.005)
    a2p_data = a2p_off + 256
    if mode == "huge-prod":
        struct.pack_into("<Q", ctl, a2p_off, 1 << 62)
    elif mode == "bad-record":
        struct.pack_into("<II", ctl, a2p_data, 0xffffff00, 0)
        struct.pack_into("<Q", ctl, a2p_off, 64)
    else:
        if mode == "release-oob":
            f = frame(0x88, 0, b"\x81\x32\x91\xcd\xea\x60")    # buffer 60000
        elif mode == "release-unheld":
            f = frame(0x88, 0, b"\x81\x32\x92\x00\x00")        # buffers 0, 0: not held
        else:  # two frames in one record
            f = frame(0x85, 1, b"\x80") + frame(0x85, 2, b"\x80")
        rec = struct.pack("<II", len(f), 0) + f
        rec += b"\0" * (-len(rec) % 8)
        ctl[a2p_data:a2p_data + len(rec)] = rec
        struct.pack_into("<Q", ctl, a2p_off, len(rec))
    os.write(fds[3], struct.pack("<Q", 1))            # wake weir
    # keep the connection until weir drops it
    try:
        while s.recv(4096):
            pass
    except OSError:
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--unix", required=True)
    ap.add_argument("--mode", required=True)
    o = ap.parse_args()
    try:
        os.unlink(o.unix)
    except FileNotFoundError:
        pass
    ls = socket.socket(socket.AF_UNIX)
    ls.bind(o.unix)
    ls.listen(16)
    print("ready", flush=True)
    while True:
        s, _ = ls.accept()
        threading.Thread(target=lambda: _guard(serve, s, o.mode), daemon=True).start()


def _guard(f, s, mode):
    try:
        f(s, mode)
    except (EOFError, OSError):
        pass
    finally:
        s.close()


if __name__ == "__main__":
    sys.exit(main())
