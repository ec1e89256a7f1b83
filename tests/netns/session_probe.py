#!/usr/bin/env python3
"""Hostile clients of a NetBIOS session service (TCP 139, RFC 1002), for tests/netns/run.sh.

Each subcommand prints one JSON object and exits 0 when it could run (the caller judges the
result), 2 on a usage or connection error:

  idle     --to IP [--wait S]          connect, send nothing, report how long until the peer
                                       closed (seconds) or that it did not within S
  name     --to IP --called NAME<xx>   a session request for a name; report the answer's type
                                       (0x82 positive, 0x83 negative) and the negative error code
  oversize --to IP --called NAME<xx>   a positive session, then a frame header announcing
                                       0x1ffff bytes (00 01 ff ff); report whether the peer closed
  flood    --to IP --count N           N connections at once, nothing sent; report how many the
                                       peer closed within a second and how many stayed open
"""

import argparse
import json
import select
import socket
import struct
import sys
import time

PORT = 139


def encode_name(spec):
    """NAME<xx> (xx hex suffix, default 20) as a first-level encoded NetBIOS name (34 bytes)."""
    name, suffix = spec, 0x20
    if spec.endswith(">") and "<" in spec:
        name, _, rest = spec.rpartition("<")
        suffix = int(rest[:-1], 16)
    raw = name.upper().encode("ascii")[:15].ljust(15, b" ") + bytes([suffix])
    out = bytearray([0x20])
    for b in raw:
        out += bytes([0x41 + (b >> 4), 0x41 + (b & 0x0F)])
    return bytes(out) + b"\x00"


def session_request(called, calling="PROBE<00>"):
    body = encode_name(called) + encode_name(calling)
    return struct.pack(">BBH", 0x81, 0, len(body)) + body


def connect(ip, timeout=3.0):
    s = socket.create_connection((ip, PORT), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def closed_within(s, seconds):
    """True when the peer closes (EOF or reset) within `seconds`; data read meanwhile is dropped."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        s.settimeout(left)
        try:
            if not s.recv(4096):
                return True
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True


def cmd_idle(a):
    s = connect(a.to)
    t0 = time.monotonic()
    closed = closed_within(s, a.wait)
    return {"closed": closed, "seconds": round(time.monotonic() - t0, 3)}


def cmd_name(a):
    s = connect(a.to)
    s.sendall(session_request(a.called))
    s.settimeout(3.0)
    hdr = recv_exact(s, 4)
    if len(hdr) < 4:
        return {"answer": None, "bytes": hdr.hex()}
    kind, _, length = struct.unpack(">BBH", hdr)
    body = recv_exact(s, length)
    r = {"answer": kind, "bytes": (hdr + body).hex()}
    if kind == 0x83 and body:
        r["error"] = body[0]
    return r


def cmd_oversize(a):
    s = connect(a.to)
    s.sendall(session_request(a.called))
    s.settimeout(3.0)
    hdr = recv_exact(s, 4)
    r = {"session": hdr.hex()}
    if hdr[:1] != b"\x82":
        r["closed"] = None
        return r
    # A session message announcing 0x1ffff bytes (the largest RFC 1002 length), then a few of them.
    s.sendall(b"\x00\x01\xff\xff" + b"\xff" * 64)
    r["closed"] = closed_within(s, 3.0)
    return r


def cmd_flood(a):
    socks = []
    failed = 0
    for _ in range(a.count):
        try:
            socks.append(connect(a.to))
        except OSError:
            failed += 1
    # Whatever the peer closes, it closes at once: watch all of them for a second.
    open_socks, closed = set(socks), 0
    deadline = time.monotonic() + 1.0
    while open_socks and time.monotonic() < deadline:
        ready, _, _ = select.select(list(open_socks), [], [], max(0.0, deadline - time.monotonic()))
        for s in ready:
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                open_socks.discard(s)
                closed += 1
    for s in socks:
        s.close()
    return {"count": a.count, "closed": closed, "open": len(open_socks), "connect_failed": failed}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("idle")
    i.add_argument("--to", required=True)
    i.add_argument("--wait", type=float, default=20.0)
    for n in ("name", "oversize"):
        q = sub.add_parser(n)
        q.add_argument("--to", required=True)
        q.add_argument("--called", required=True)
    f = sub.add_parser("flood")
    f.add_argument("--to", required=True)
    f.add_argument("--count", type=int, default=20)
    a = p.parse_args()
    if not a.to.startswith("10.99.0."):
        print("session_probe: only lab addresses (10.99.0.0/24)", file=sys.stderr)
        return 2
    try:
        r = {"idle": cmd_idle, "name": cmd_name, "oversize": cmd_oversize, "flood": cmd_flood}[a.cmd](a)
    except OSError as e:
        print(json.dumps({"error": str(e)}))
        return 2
    print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
