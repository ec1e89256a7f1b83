#!/usr/bin/env python3
"""blast.py — throw random and mutated NetBIOS datagrams / name-service packets at one daemon.

Stdlib only. Used by tests/netns/run.sh (robustness check): run it inside a lab namespace,
aimed at a daemon in another one:

    blast.py --target 10.99.0.4 --count 100000 [--name-share 0.1] [--mailslot-bin PATH]
             [--vectors DIR] [--seed N] [--pps N]

Seeds are real packets: whole datagrams made by `mailslot encode` (plain writes, NETLOGON,
browser and Messenger payloads, to unique, group and `*` names), name queries made by
`mailslot encode-name-query`, and the bytes in shared/vectors (the SMB example wrapped in a
datagram header, the NETLOGON payload as a write, the NBNS packets as they are). Each packet is
either pure random bytes or a seed with 1-4 mutations (bit flips, interesting byte/word values
at header, name and SMB field offsets, truncation, extension, chunk insert/delete, splicing,
fragment flags, compression pointers in names).

Refuses any target outside 10.99.0.0/24 (the lab). Prints one JSON summary line on stdout.
"""
import argparse
import ipaddress
import json
import os
import random
import socket
import struct
import subprocess
import sys
import time

LAB = ipaddress.ip_network("10.99.0.0/24")


def die(msg):
    print("blast: " + msg, file=sys.stderr)
    sys.exit(2)


def run_hex(argv):
    try:
        out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=20).stdout
        return bytes.fromhex(out.strip())
    except Exception as e:  # noqa: BLE001 - a seed we cannot build is just skipped
        print(f"blast: seed skipped ({' '.join(argv[1:4])}…): {e}", file=sys.stderr)
        return None


def read_vector(path):
    hexs = "".join(l.split("#", 1)[0] for l in open(path, encoding="ascii").read().splitlines())
    return bytes.fromhex("".join(hexs.split()))


def with_smb(datagram, smb):
    """replace the SMB part of an encoded datagram, fixing DGM_LENGTH."""
    i = datagram.find(b"\xffSMB")
    if i < 0:
        return None
    d = bytearray(datagram[:i] + smb)
    struct.pack_into(">H", d, 10, len(d) - 14)
    return bytes(d)


def build_seeds(mailslot_bin, vectors, target_name, workgroup):
    dg, ns = [], []
    if mailslot_bin:
        enc = [mailslot_bin, "encode", "--from", "FUZZER"]
        for to, extra in [
            (f"{target_name}<00>", ["--mailslot", r"\MAILSLOT\t", "--text", "hello"]),
            (f"{target_name}<00>", ["--mailslot", r"\MAILSLOT\t", "--data-hex", "00" * 200, "--priority", "9"]),
            (f"{target_name}<03>", ["--payload", "messenger", "--message", "hi there"]),
            (f"{workgroup}<1E>", ["--payload", "local-master-announcement", "--msg-type", "group"]),
            (f"{workgroup}<1D>", ["--payload", "host-announcement", "--comment", "fuzz"]),
            (f"{workgroup}<1E>", ["--payload", "request-election", "--msg-type", "group"]),
            (f"{workgroup}<1E>", ["--payload", "announcement-request", "--msg-type", "group"]),
            (f"{workgroup}<1C>", ["--payload", "netlogon-sam-logon", "--user", "alice", "--msg-type", "group"]),
            (f"{target_name}<00>", ["--payload", "netlogon-primary-query", "--node-type", "h"]),
            ("*", ["--mailslot", r"\MAILSLOT\t", "--text", "to everyone"]),
            (f"{target_name}<00>", ["--mailslot", r"\MAILSLOT\a\b\c", "--text", "x", "--scope", "lab.example"]),
        ]:
            d = run_hex(enc + ["--to", to] + extra)
            if d:
                dg.append(d)
        for name, extra in [(f"{target_name}<00>", []), (f"{workgroup}<1E>", ["--broadcast"]),
                            ("NOBODY<20>", ["--broadcast"]), (f"{target_name}<03>", ["--scope", "lab.example"])]:
            d = run_hex([mailslot_bin, "encode-name-query", "--name", name, "--id", "4660"] + extra)
            if d:
                ns.append(d)
    if vectors and os.path.isdir(vectors):
        for f in sorted(os.listdir(vectors)):
            if not f.endswith(".hex"):
                continue
            try:
                b = read_vector(os.path.join(vectors, f))
            except Exception as e:  # noqa: BLE001
                print(f"blast: vector {f} skipped: {e}", file=sys.stderr)
                continue
            if f.startswith("nbns"):
                ns.append(b)
            elif f.startswith("smb") and dg:
                w = with_smb(dg[0], b)
                if w:
                    dg.append(w)
            elif f.startswith("netlogon") and mailslot_bin:
                d = run_hex([mailslot_bin, "encode", "--from", "FUZZER", "--to", f"{target_name}<00>",
                             "--mailslot", r"\MAILSLOT\NET\NETLOGON", "--data-hex", b.hex()])
                if d:
                    dg.append(d)
    if not dg:  # hand-made fallback: a minimal write, so the fuzzer still works without the CLI
        dg.append(bytes.fromhex("1002000a0a630001008a0000") + b"\x20" + b"A" * 32 + b"\x00"
                  + b"\x20" + b"A" * 32 + b"\x00" + b"\xffSMB%" + bytes(27))
    if not ns:
        ns.append(bytes.fromhex("000001100001000000000000") + b"\x20" + b"CA" * 16 + bytes.fromhex("0000200001"))
    return dg, ns


INTERESTING8 = [0x00, 0x01, 0x02, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x1f, 0x20, 0x21,
                0x3f, 0x40, 0x7f, 0x80, 0xc0, 0xc1, 0xfe, 0xff]
INTERESTING16 = [0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x1ff, 0x7fff, 0x8000, 0xfffe, 0xffff]
# offsets worth hitting: NBDS flags/len/offset, first name length byte, SMB word fields (about 82+)
DG_FIELDS = [0, 1, 2, 10, 12, 14, 48, 82, 83, 86, 87, 88, 89, 90, 113, 114, 115, 116, 117, 118, 119,
             120, 121, 122, 123, 124, 125, 126, 127, 128, 129]
NS_FIELDS = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 46, 47, 48, 49, 50, 56, 60, 61, 62]


def mutate(rng, seeds, fields):
    d = bytearray(rng.choice(seeds))
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(11)
        n = len(d)
        if op == 0 and n:  # bit flips
            for _ in range(rng.randint(1, 8)):
                i = rng.randrange(n)
                d[i] ^= 1 << rng.randrange(8)
        elif op == 1 and n:  # interesting byte anywhere
            d[rng.randrange(n)] = rng.choice(INTERESTING8)
        elif op == 2:  # interesting byte/word at a field offset
            i = rng.choice(fields)
            if i + 2 <= n:
                if rng.random() < 0.5:
                    struct.pack_into(">H" if rng.random() < 0.6 else "<H", d, i, rng.choice(INTERESTING16))
                else:
                    d[i] = rng.choice(INTERESTING8)
        elif op == 3 and n:  # truncate
            del d[rng.randrange(n):]
        elif op == 4:  # extend
            d += os.urandom(rng.choice([1, 2, 4, 16, 100, 600, 1500]))
        elif op == 5 and n:  # insert a chunk
            i = rng.randrange(n + 1)
            d[i:i] = os.urandom(rng.randint(1, 64))
        elif op == 6 and n > 1:  # delete a chunk
            i = rng.randrange(n)
            del d[i:i + rng.randint(1, 64)]
        elif op == 7:  # splice with another seed
            o = rng.choice(seeds)
            i, j = rng.randrange(len(d) + 1), rng.randrange(len(o) + 1)
            d = d[:i] + o[j:]
        elif op == 8 and n > 14:  # compression pointer / odd label length in a name
            i = rng.choice([12, 14, 48, 49, 50]) if rng.random() < 0.7 else rng.randrange(n - 1)
            if i + 2 <= len(d):
                d[i] = rng.choice([0xc0, 0xc0, 0x3f, 0x21, 0x1f, 0x40, 0xff])
                d[i + 1] = rng.choice([0x0c, 0x0e, i & 0xff, 0xff, 0x00])
        elif op == 9 and n > 4:  # datagram fragment flags (M/F) and a recurring DGM_ID
            d[1] = (d[1] & ~0x03) | rng.randrange(4)
            struct.pack_into(">H", d, 2, rng.randrange(16))
        elif op == 10 and n > 12:  # header counts / lengths
            struct.pack_into(">H", d, rng.choice([4, 6, 8, 10]), rng.choice(INTERESTING16))
    return bytes(d)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", required=True, help="IPv4 address in 10.99.0.0/24")
    ap.add_argument("--count", type=int, default=100000, help="packets in total")
    ap.add_argument("--name-share", type=float, default=0.1, help="share sent to UDP 137 (name service)")
    ap.add_argument("--port", type=int, default=138)
    ap.add_argument("--name-port", type=int, default=137)
    ap.add_argument("--mailslot-bin", help="the mailslot CLI, to make seed datagrams with `encode`")
    ap.add_argument("--vectors", help="directory of .hex vectors (shared/vectors)")
    ap.add_argument("--target-name", default="HOSTC")
    ap.add_argument("--workgroup", default="LAB")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--pps", type=int, default=0, help="packets per second limit (0 = as fast as possible)")
    ap.add_argument("--random-share", type=float, default=0.2, help="share of pure random packets")
    a = ap.parse_args()

    try:
        ip = ipaddress.ip_address(a.target)
    except ValueError:
        die(f"bad address {a.target!r}")
    if ip not in LAB or ip in (LAB.network_address,):
        die(f"refusing target {ip}: outside the lab 10.99.0.0/24")

    seed = a.seed if a.seed is not None else int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    dg, ns = build_seeds(a.mailslot_bin, a.vectors, a.target_name.upper(), a.workgroup.upper())

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    sent = {"138": 0, "137": 0}
    errors = 0
    t0 = time.monotonic()
    for k in range(a.count):
        to_name = rng.random() < a.name_share
        if rng.random() < a.random_share:
            n = rng.choice([0, 1, 2, 10, 14, 50, 82, 100, 200, 576, 1000, 1472]) if rng.random() < 0.5 \
                else rng.randrange(0, 1473)
            pkt = os.urandom(n)
        else:
            pkt = mutate(rng, ns if to_name else dg, NS_FIELDS if to_name else DG_FIELDS)
        pkt = pkt[:65507]
        port = a.name_port if to_name else a.port
        try:
            s.sendto(pkt, (str(ip), port))
            sent["137" if to_name else "138"] += 1
        except OSError:
            errors += 1  # e.g. ENOBUFS or ECONNREFUSED from an earlier ICMP error; keep going
        if a.pps and k % 100 == 99:
            ahead = (k + 1) / a.pps - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
    el = time.monotonic() - t0
    print(json.dumps({"target": str(ip), "sent_138": sent["138"], "sent_137": sent["137"],
                      "send_errors": errors, "seed": seed, "datagram_seeds": len(dg),
                      "name_seeds": len(ns), "elapsed_s": round(el, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
