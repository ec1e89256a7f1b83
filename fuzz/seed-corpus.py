#!/usr/bin/env python3
"""Regenerate fuzz/corpus/<target>/ seeds from the test fixtures (captures and vectors).

Usage: fuzz/seed-corpus.py   (stdlib only; file names are content hashes)."""
import hashlib
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "..", "crates", "proto", "tests", "fixtures")


def pcapng_frames(path):
    data = open(path, "rb").read()
    off = 0
    while off + 12 <= len(data):
        btype, blen = struct.unpack_from("<II", data, off)
        if btype == 6:  # enhanced packet block
            caplen = struct.unpack_from("<I", data, off + 20)[0]
            yield data[off + 28: off + 28 + caplen]
        off += blen


def pcapng_udp(path):
    for f in pcapng_frames(path):
        if len(f) > 42 and f[12:14] == b"\x08\x00" and f[23] == 17:
            ihl = (f[14] & 0x0F) * 4
            u = f[14 + ihl:]
            sp, dp, ln = struct.unpack_from(">HHH", u, 0)
            yield sp, dp, u[8:ln]


def hexfile(name):
    text = open(os.path.join(FIX, name)).read()
    return bytes.fromhex("".join(l for l in text.splitlines() if not l.startswith("#")).replace(" ", ""))


seeds = {t: set() for t in ("link", "names", "datagram", "smb_mailslot", "name_service", "browser", "netlogon", "messenger")}
for cap in ("nmbd-round.pcapng", "nmbd-startup-330s.pcapng"):
    for sp, dp, p in pcapng_udp(os.path.join(FIX, cap)):
        if 138 in (sp, dp):
            seeds["datagram"].add(p)
            seeds["names"].add(p[14:48])
            smb = p[82:]
            seeds["smb_mailslot"].add(smb)
            dcnt, doff = struct.unpack_from("<HH", smb, 55)
            name = smb[69:smb.index(b"\x00", 69)].upper()
            payload = smb[doff:doff + dcnt]
            if name in (b"\\MAILSLOT\\BROWSE", b"\\MAILSLOT\\LANMAN"):
                seeds["browser"].add(payload)
            elif name.startswith(b"\\MAILSLOT\\NET\\"):
                seeds["netlogon"].add(payload)
        elif 137 in (sp, dp):
            seeds["name_service"].add(p)
            seeds["names"].add(p[12:])
# link: the first byte picks the link type (0 = Ethernet, as in the captures).
for cap in ("nmbd-round.pcapng",):
    for f in list(pcapng_frames(os.path.join(FIX, cap)))[:8]:
        seeds["link"].add(b"\x00" + f)
seeds["name_service"].add(hexfile("nbns-name-query-TEST1-20.hex"))
seeds["name_service"].add(hexfile("nbns-positive-response-POTATO-00.hex"))
seeds["netlogon"].add(hexfile("netlogon-logon-primary-query.hex"))
seeds["smb_mailslot"].add(hexfile("smb-mailslot-write-spec-example.hex"))
seeds["messenger"].add(b"WIN98USER\x00WORKGROUP\x00HELLO WORLD\x00")
seeds["messenger"].add(b"ALICE\x00BOB\x00hi there\x00")
# control_sequence: steps of (0, length, control record), (1, uid), (2, ticks), (3|4, length, packet).
def record(msg):
    r = ('{"v":1,"msg":%s}' % msg).encode()
    return b"\x00" + struct.pack(">H", len(r)) + r


seeds["control_sequence"] = set()
w = '{"op":"write","target":%s,"path":"%s","priority":%d,"class":"%s","data":[104,105]}'
for target in ('"PrimaryDomain"', '{"Host":"FUZZHOST"}', '{"Host":"FUZZWG"}', '{"Host":"OTHER"}'):
    seeds["control_sequence"].add(record(w % (target, "net\\\\netlogon", 1, "Second")) + b"\x02\x50")
seeds["control_sequence"].add(
    b"\x01\x2a" + record(w % ('"PrimaryDomain"', "t", 200, "First"))
    + record('{"op":"resolve","name":"OTHER","suffix":32}') + record('{"op":"status"}') + b"\x02\xff")
for sp, dp, p in list(pcapng_udp(os.path.join(FIX, "nmbd-round.pcapng")))[:4]:
    if len(p) < 256:
        seeds["control_sequence"].add((b"\x03" if 138 in (sp, dp) else b"\x04") + bytes([len(p)]) + p)
# session / smb_session: the frames of real smbclient -> smbd conversations, and their SMB messages.
seeds["session"] = set()
seeds["smb_session"] = set()
for name in sorted(os.listdir(FIX)):
    if name.endswith(".frames"):
        for line in open(os.path.join(FIX, name)):
            if line[:2] in ("> ", "< "):
                frame = bytes.fromhex(line[2:].strip())
                seeds["session"].add(frame)
                if frame[0] == 0x00:
                    seeds["smb_session"].add(frame[4:])
# session_server: a whole client stream, after our own session request (first byte even) or
# with the client's own (odd).
seeds["session_server"] = set()
for name in sorted(os.listdir(FIX)):
    if name.endswith(".frames"):
        client = [bytes.fromhex(l[2:].strip()) for l in open(os.path.join(FIX, name)) if l.startswith("> ")]
        seeds["session_server"].add(b"\x00" + b"".join(client[1:]))
        seeds["session_server"].add(b"\x01" + b"".join(client))
# Mailslot writes from datagrams: a session write differs only in its parameters.
seeds["smb_session"] |= seeds["smb_mailslot"]
for t, items in seeds.items():
    d = os.path.join(HERE, "corpus", t)
    os.makedirs(d, exist_ok=True)
    for s in items:
        with open(os.path.join(d, hashlib.sha1(s).hexdigest()), "wb") as f:
            f.write(s)
    print("%s: %d seeds" % (t, len(items)))
