#!/usr/bin/env python3
"""pace.py — send numbered copies of one NetBIOS datagram at a steady rate, or as fast as possible.

Stdlib only. Used by tests/netns/run.sh (throughput beside nmbd): run it inside a lab namespace.

    pace.py send --hex HEX --marker TEXT --to IP --count N [--rate R] [--bind IP]
                 [--port 138] [--broadcast] [--dgm-id-start N]
    pace.py count --file LISTEN.json --marker TEXT --count N

`send`: HEX is a whole datagram (UDP 138 payload, e.g. from `mailslot encode`) whose message
text contains MARKER followed by as many '0' digits as N has; copy i replaces those digits by i
(zero-padded, same width, so no length field changes) and its DGM_ID by dgm-id-start + i
(mod 65536, so the receiver's duplicate filter keeps every copy apart). With --rate R > 0 copy
i leaves at start + i/R (a deadline loop, so a late wake-up sends what is due at once and the
average rate stays R); --rate 0 sends back to back. Prints one JSON line: sent, errors, seconds,
the rate achieved.

`count`: reads `mailslot listen --json` output and prints one JSON line: received (messages
whose text starts with MARKER), distinct numbers in 0..N, duplicated (copies beyond the first),
lost (numbers never seen), foreign (MARKER but not a number in range).

Refuses any destination outside 10.99.0.0/24 (the lab).
"""
import argparse
import ipaddress
import json
import socket
import sys
import time

LAB = ipaddress.ip_network("10.99.0.0/24")


def die(msg):
    print("pace: " + msg, file=sys.stderr)
    sys.exit(2)


def width(count):
    """digits of the number in each text: those of COUNT itself."""
    return len(str(count))


def cmd_send(a):
    try:
        to = ipaddress.ip_address(a.to)
    except ValueError:
        die(f"bad address {a.to!r}")
    if to not in LAB:
        die(f"{to} is outside the lab ({LAB})")
    if a.count < 1 or a.rate < 0:
        die("--count must be at least 1 and --rate not negative")
    try:
        template = bytes.fromhex(a.hex)
    except ValueError:
        die("--hex is not hex")
    w = width(a.count)
    needle = a.marker.encode() + b"0" * w
    at = template.find(needle)
    if at < 0 or template.find(needle, at + 1) >= 0:
        die(f"the datagram must contain {needle!r} exactly once")
    if len(template) < 14:
        die("datagram shorter than its header")
    at += len(a.marker)
    buf = bytearray(template)

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if a.broadcast:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    if a.bind:
        s.bind((a.bind, a.port))
    dest = (str(to), a.port)

    sent = errors = 0
    t0 = time.monotonic()
    for i in range(a.count):
        if a.rate > 0:
            due = t0 + i / a.rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
        dgm_id = (a.dgm_id_start + i) & 0xFFFF
        buf[2] = dgm_id >> 8
        buf[3] = dgm_id & 0xFF
        buf[at:at + w] = str(i).zfill(w).encode()
        try:
            s.sendto(buf, dest)
            sent += 1
        except OSError:
            errors += 1
    secs = time.monotonic() - t0
    print(json.dumps({
        "sent": sent,
        "errors": errors,
        "seconds": round(secs, 3),
        "rate": round(sent / secs) if secs > 0 else None,
    }))


def cmd_count(a):
    w = width(a.count)
    seen = {}
    received = foreign = 0
    try:
        lines = open(a.file, encoding="utf-8", errors="replace")
    except OSError as e:
        die(f"cannot read {a.file}: {e}")
    with lines:
        for line in lines:
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                text = json.loads(line).get("text")
            except ValueError:
                continue
            if not isinstance(text, str) or not text.startswith(a.marker):
                continue
            received += 1
            digits = text[len(a.marker):]
            if len(digits) != w or not digits.isdigit() or int(digits) >= a.count:
                foreign += 1
                continue
            n = int(digits)
            seen[n] = seen.get(n, 0) + 1
    print(json.dumps({
        "received": received,
        "distinct": len(seen),
        "duplicated": sum(c - 1 for c in seen.values()),
        "lost": a.count - len(seen),
        "foreign": foreign,
    }))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    s.add_argument("--hex", required=True)
    s.add_argument("--marker", required=True)
    s.add_argument("--to", required=True)
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--rate", type=float, default=0.0)
    s.add_argument("--bind", default="")
    s.add_argument("--port", type=int, default=138)
    s.add_argument("--broadcast", action="store_true")
    s.add_argument("--dgm-id-start", type=int, default=0)
    c = sub.add_parser("count")
    c.add_argument("--file", required=True)
    c.add_argument("--marker", required=True)
    c.add_argument("--count", type=int, required=True)
    a = p.parse_args()
    (cmd_send if a.cmd == "send" else cmd_count)(a)


if __name__ == "__main__":
    main()
