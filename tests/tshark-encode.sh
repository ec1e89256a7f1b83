#!/usr/bin/env bash
# Let Wireshark judge `mailslot encode`: unique, group and broadcast writes, a
# browser HostAnnouncement and a NETLOGON LOGON_PRIMARY_QUERY must each decode
# as NetBIOS Datagram -> SMB Transaction -> SMB MailSlot, with no malformed
# packet or expert error, and carry the names, mailslot and data we put in.
#
# Uses ../shared/interop/tshark-check (the shared/ checkout beside this repo).
# Exit 0 = all good; non-zero = failure. If tshark is missing: SKIP (exit 0)
# unless $CI is set, then fail.
# Env: MAILSLOT_BIN = the mailslot binary (default: build target/debug/mailslot).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
check="$root/../shared/interop/tshark-check"

if ! command -v tshark >/dev/null 2>&1; then
    if [ -n "${CI:-}" ]; then
        echo "tshark-encode: FAIL: tshark not installed and CI is set" >&2
        exit 1
    fi
    echo "tshark-encode: SKIP: tshark not installed (apt-get install -y tshark)"
    exit 0
fi
if [ ! -x "$check" ]; then
    echo "tshark-encode: FAIL: $check not found" >&2
    exit 1
fi
bin="${MAILSLOT_BIN:-}"
if [ -z "$bin" ]; then
    (cd "$root" && cargo build -q -p mailslot-cli)
    bin="$root/target/debug/mailslot"
fi

fail=0
# case NAME EXPECT_JSON -- encode args...
# EXPECT_JSON: fields that tshark-check's JSON line must have (compared
# case-insensitively for names), plus "proto" = last protocol in the chain.
run_case() {
    local name="$1" expect="$2"
    shift 3
    local hex out rc
    if ! hex="$("$bin" encode "$@")"; then
        echo "tshark-encode: FAIL $name: mailslot encode failed" >&2
        fail=1
        return
    fi
    set +e
    out="$(printf '%s\n' "$hex" | "$check" --hex - 2>&1)"
    rc=$?
    set -e
    if ! python3 - "$name" "$expect" "$rc" "$out" <<'PY'
import json, sys
name, expect, rc, out = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
lines = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
errs = []
if rc != 0:
    errs.append("tshark-check exit %d" % rc)
if len(lines) != 1:
    errs.append("expected 1 mailslot frame, got %d" % len(lines))
else:
    j = lines[0]
    protos = j.get("protocols", "").split(":")
    if j.get("problems"):
        errs.append("problems: %s" % j["problems"])
    for p in ("nbdgm", "smb"):
        if p not in protos:
            errs.append("protocol %s missing in %s" % (p, j.get("protocols")))
    if j.get("smb_cmd") != "0x25":
        errs.append("not SMB_COM_TRANSACTION: %s" % j.get("smb_cmd"))
    if j.get("mailslot_opcode") != 1:
        errs.append("not dissected as SMB MailSlot write")
    want_proto = expect.pop("proto", None)
    if want_proto and want_proto not in protos:
        errs.append("protocol %s missing in %s" % (want_proto, j.get("protocols")))
    for k, v in expect.items():
        got = j.get(k)
        if isinstance(v, str) and isinstance(got, str):
            ok = got.lower() == v.lower()
        else:
            ok = got == v
        if not ok:
            errs.append("%s: want %r, got %r" % (k, v, got))
if errs:
    print("tshark-encode: FAIL %s: %s\n%s" % (name, "; ".join(errs), out), file=sys.stderr)
    sys.exit(1)
print("tshark-encode: ok   %s" % name)
PY
    then
        fail=1
    fi
}

run_case unique '{"nbdgm_type":"DIRECT_UNIQUE","source_name":"CLIENT<00>","dest_name":"SMBPEER<00>","transaction_name":"\\MAILSLOT\\demo\\hello","priority":5,"class":2,"data_len":12,"dgm_id":"0x1234","nbdgm_flags":"0x02"}' -- \
    --from CLIENT --to 'SMBPEER<00>' --mailslot '\MAILSLOT\demo\hello' --text 'hi from ms-a' \
    --priority 5 --source-ip 10.99.0.1 --msg-type unique --dgm-id 4660
run_case group '{"nbdgm_type":"DIRECT_GROUP","source_name":"CLIENT<00>","dest_name":"MSLAB<00>","transaction_name":"\\MAILSLOT\\DEMO","data_len":4,"class":2}' -- \
    --from 'CLIENT<00>' --to 'MSLAB<00>' --mailslot 'DEMO' --data-hex 'deadbeef' --msg-type group --dgm-id 2
run_case broadcast '{"nbdgm_type":"BROADCAST","source_name":"CLIENT<00>","transaction_name":"\\MAILSLOT\\BCAST\\TEST","data_len":5}' -- \
    --from CLIENT --to '*' --mailslot '/mailslot/BCAST/TEST' --text 'hello' --msg-type broadcast --dgm-id 3
run_case host-announcement '{"nbdgm_type":"DIRECT_GROUP","dest_name":"MSLAB<1D>","transaction_name":"\\MAILSLOT\\BROWSE","browser_command":"0x01","proto":"browser","data_len":38}' -- \
    --from CLIENT --to 'MSLAB<1D>' --payload host-announcement --comment hello --msg-type group --dgm-id 4
run_case netlogon-primary-query '{"nbdgm_type":"DIRECT_UNIQUE","dest_name":"SMBPEER<00>","transaction_name":"\\MAILSLOT\\NET\\NETLOGON","netlogon_command":"0x07","proto":"smb_netlogon","data_len":54}' -- \
    --from CLIENT --to SMBPEER --payload netlogon-primary-query --reply-mailslot '\MAILSLOT\NET\GETDC42' --dgm-id 5

if [ "$fail" -ne 0 ]; then
    echo "tshark-encode: FAILED" >&2
    exit 1
fi
echo "tshark-encode: all cases passed"
