#!/usr/bin/env bash
# Let Wireshark judge the session side of mailslot-proto: session request,
# positive/negative response, keep-alive, the Messenger SMB commands and their
# replies, first-class mailslot writes (SMB_COM_TRANSACTION on a session) and
# their success/error replies. The frames come from the `session_frames`
# example; this script wraps them as TCP port 139 conversations (with
# handshakes and exact sequence numbers) in a pcap and checks that tshark
# decodes each as NBSS with the right type / SMB command, the writes as an SMB
# Mailslot write with a \MAILSLOT\ name, and that no frame is malformed or has
# an expert-info error. Error replies are printed with their expert info.
#
# Exit 0 = all good; non-zero = failure. If tshark is missing: SKIP (exit 0)
# unless $CI is set, then fail.
# Env: KEEP_PCAP=FILE keeps the generated pcap.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"

if ! command -v tshark >/dev/null 2>&1; then
    if [ -n "${CI:-}" ]; then
        echo "tshark-session: FAIL: tshark not installed and CI is set" >&2
        exit 1
    fi
    echo "tshark-session: SKIP: tshark not installed (apt-get install -y tshark)"
    exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
pcap="${KEEP_PCAP:-$tmp/session.pcap}"
frames="$tmp/frames.txt"
(cd "$root" && cargo run -q -p mailslot-proto --example session_frames) >"$frames"

python3 - "$frames" "$pcap" <<'PY'
import socket, struct, sys

def ip_tcp(src, dst, sport, dport, seq, ack, flags, payload, ident):
    tcp = struct.pack(">HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack(">BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack(">H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), ident, 0, 64, 6, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack(">H", checksum(ip)) + ip[12:]
    return ip + tcp

def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(">%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF

CLIENT, SERVER = "10.99.0.1", "10.99.0.2"
SYN, ACK, PSH = 0x02, 0x10, 0x08
convs = {}
for line in open(sys.argv[1]):
    conv, d, _expect, hexs = line.split()
    convs.setdefault(int(conv), []).append((d, bytes.fromhex(hexs)))
pkts = []
for conv, items in sorted(convs.items()):
    port = 50000 + conv
    cseq, sseq = 1000 * conv, 900000 * conv
    c2s = lambda f, p: ip_tcp(CLIENT, SERVER, port, 139, cseq, sseq, f, p, len(pkts) + 1)
    s2c = lambda f, p: ip_tcp(SERVER, CLIENT, 139, port, sseq, cseq, f, p, len(pkts) + 1)
    pkts.append(ip_tcp(CLIENT, SERVER, port, 139, cseq, 0, SYN, b"", len(pkts) + 1)); cseq += 1
    pkts.append(s2c(SYN | ACK, b"")); sseq += 1
    pkts.append(c2s(ACK, b""))
    for d, p in items:
        if d == "C":
            pkts.append(c2s(PSH | ACK, p)); cseq += len(p)
        else:
            pkts.append(s2c(PSH | ACK, p)); sseq += len(p)
with open(sys.argv[2], "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))
    for i, p in enumerate(pkts):
        f.write(struct.pack("<IIII", i, 0, len(p), len(p)) + p)
PY

json="$tmp/out.json"
tshark -n -r "$pcap" -Y "tcp.len > 0" -T json \
    -e frame.number -e frame.protocols -e tcp.srcport -e nbss.type -e nbss.error_code \
    -e smb.cmd -e smb.flags.response -e smb.error_class -e smb.error_code -e smb.trans_name \
    -e mailslot.opcode -e mailslot.priority -e mailslot.class -e smb.originator_name -e smb.mgid \
    -e smb.destination_name -e nbss.called_name -e nbss.calling_name \
    -e _ws.expert.severity -e _ws.expert.message -e _ws.expert.group >"$json"

python3 - "$frames" "$json" <<'PY'
import json, sys
SEV = {0x00800000: "error", 0x00600000: "warning", 0x00400000: "note", 0x00200000: "chat", 0x00100000: "comment"}
frames = [l.split()[:3] for l in open(sys.argv[1]) if l.strip()]
out = json.load(open(sys.argv[2]))
fail = []
if len(out) != len(frames):
    fail.append("tshark shows %d payload frames, we wrote %d" % (len(out), len(frames)))
for (conv, d, expect), fr in zip(frames, out):
    L = fr["_source"]["layers"]
    g = lambda k: (L.get(k) or [None])[0]
    protos = g("frame.protocols") or ""
    kind, value = expect.split(":")
    errs = []
    sev = [int(s, 0) if isinstance(s, str) else int(s) for s in L.get("_ws.expert.severity", [])]
    msgs = L.get("_ws.expert.message", [])
    expert = ["%s: %s" % (SEV.get(s, hex(s)), m) for s, m in zip(sev, msgs)]
    if "_ws.malformed" in protos or "malformed" in protos:
        errs.append("malformed")
    errs += ["expert %s" % e for e, s in zip(expert, sev) if s >= 0x00800000]
    if "nbss" not in protos.split(":"):
        errs.append("no nbss layer in %s" % protos)
    nbss_type = g("nbss.type")
    if kind == "nbss":
        if nbss_type is None or int(nbss_type, 0) != int(value, 16):
            errs.append("nbss.type %s, want %s" % (nbss_type, value))
        if value == "0x81" and (g("nbss.called_name"), g("nbss.calling_name")) != ("TESTHOST<03>", "CLIENTPC<00>"):
            errs.append("names %s / %s" % (g("nbss.called_name"), g("nbss.calling_name")))
    else:
        cmd = g("smb.cmd")
        if "smb" not in protos.split(":") or cmd is None or int(cmd, 0) != int(value, 16):
            errs.append("smb.cmd %s, want %s (protocols %s)" % (cmd, value, protos))
        is_reply = g("smb.flags.response") in ("1", "True", "true")
        if is_reply != (d == "S"):
            errs.append("reply flag %s in a %s frame" % (g("smb.flags.response"), d))
        if kind == "smberr" and g("smb.error_class") in (None, "0x00", "0"):
            errs.append("no error status: class %s" % g("smb.error_class"))
        if kind == "mailslot":
            name = g("smb.trans_name") or ""
            if not name.startswith("\\MAILSLOT\\") \
                    or g("mailslot.opcode") not in ("1", "0x0001", "0x01"):
                errs.append("not an SMB Mailslot write: name %r opcode %s protocols %s"
                            % (name, g("mailslot.opcode"), protos))
    desc = "conv %s %s %-13s %s" % (conv, d, expect, protos)
    if kind == "smberr":
        desc += " status class=%s code=%s" % (g("smb.error_class"), g("smb.error_code"))
    if kind == "mailslot":
        desc += " name=%s priority=%s class=%s" % (g("smb.trans_name"), g("mailslot.priority"), g("mailslot.class"))
    if expert:
        desc += " expert=[%s]" % "; ".join(expert)
    print(("FAIL " if errs else "ok   ") + desc + ("  <- " + "; ".join(errs) if errs else ""))
    if errs:
        fail.append(desc)
if fail:
    print("tshark-session: FAILED (%d frames)" % len(fail), file=sys.stderr)
    sys.exit(1)
print("tshark-session: all %d frames decoded cleanly" % len(out))
PY
