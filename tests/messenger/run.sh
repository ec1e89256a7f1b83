#!/usr/bin/env bash
# The Messenger service's desktop path on a real session bus: dbus-run-session starts a private
# bus, a recorder (crates/messenger/examples/notification_recorder.rs) owns
# org.freedesktop.Notifications on it and logs every Notify call, `mailslot messenger serve
# --json` runs beside it, and `mailslot messenger deliver` hands it messages. Checked:
#   - the recorder gets Notify with the summary "Message from FROM to TO" and the text in the
#     body, and the service's JSON line says desktop: true;
#   - a server that announces body-markup gets the body escaped (&lt;b&gt;, &amp;);
#   - with no notification server on the bus the service says so and falls back (desktop: false);
#   - SIGTERM ends the service with status 0.
# The terminal path is `cargo test -p mailslot-cli --test messenger`.
#
#   bash tests/messenger/run.sh        # builds the two programs first (debug)
#
# Needs dbus-run-session (Debian package dbus-daemon; installed here when missing and root).
# Prints PASS/FAIL lines; SKIP only with the reason, and under CI=true a skip is a failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)

if [ "${1:-}" = --inside ]; then
    # Inside dbus-run-session: DBUS_SESSION_BUS_ADDRESS names the private bus.
    bin=$2 recorder=$3 tmp=$4
    failures=0 passes=0
    pass() { echo "PASS: $*"; passes=$((passes + 1)); }
    fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
    wait_for() { # FILE PATTERN [SECONDS]
        local end=$((SECONDS + ${3:-10}))
        until grep -q -- "$2" "$1" 2>/dev/null; do
            [ $SECONDS -lt $end ] || return 1
            sleep 0.1
        done
    }
    pids=()
    cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
    trap cleanup EXIT
    start_recorder() { # LOG [--markup]
        "$recorder" ${2:-} >"$1" 2>&1 &
        rec=$!
        pids+=("$rec")
        wait_for "$1" '^ready' || { fail "the recorder did not start: $(cat "$1")"; exit 1; }
    }
    start_serve() { # NAME
        "$bin" messenger serve --json --no-terminals >"$tmp/$1.out" 2>"$tmp/$1.err" &
        srv=$!
        pids+=("$srv")
        wait_for "$tmp/$1.err" 'serving' || { fail "serve did not start: $(cat "$tmp/$1.err")"; exit 1; }
    }
    stop_serve() { # NAME
        kill -TERM "$srv"
        local rc=0
        wait "$srv" || rc=$?
        if [ "$rc" -eq 0 ]; then pass "$1: SIGTERM ends serve with status 0"; else fail "$1: serve exited $rc after SIGTERM"; fi
    }
    json() { # FILE EXPR: a python expression over the last JSON line `v`
        python3 -c 'import json,sys; v=json.loads(open(sys.argv[1]).read().splitlines()[-1]); print(eval(sys.argv[2]))' "$1" "$2"
    }

    # 1. Plain text server.
    start_recorder "$tmp/rec1.log"
    start_serve plain
    grep -q 'desktop on' "$tmp/plain.err" && pass "serve finds the notification server" ||
        fail "serve did not turn the desktop on: $(cat "$tmp/plain.err")"
    printf 'Lunch at noon?\r\nBring \033[31mred\033[0m pens.\n' |
        "$bin" messenger deliver --from ALICE --to BOB
    if wait_for "$tmp/rec1.log" '"summary"'; then
        [ "$(json "$tmp/rec1.log" 'v["summary"]')" = "Message from ALICE to BOB" ] &&
            pass "Notify summary: Message from ALICE to BOB" ||
            fail "Notify summary: $(json "$tmp/rec1.log" 'v["summary"]')"
        [ "$(json "$tmp/rec1.log" 'v["body"].split(chr(10))[:2]')" = "['Lunch at noon?', 'Bring ␛red␛ pens.']" ] &&
            pass "Notify body: the text, CRLF made LF, escapes neutralised" ||
            fail "Notify body: $(json "$tmp/rec1.log" 'repr(v["body"])')"
        [ "$(json "$tmp/rec1.log" '"received " in v["body"] and "local uid" in v["body"]')" = True ] &&
            pass "Notify body: time and origin" || fail "Notify body lacks the time or origin"
        [ "$(json "$tmp/rec1.log" 'v["app"]')" = mailslot ] && pass "Notify app name mailslot" ||
            fail "Notify app: $(json "$tmp/rec1.log" 'v["app"]')"
    else
        fail "the recorder got no Notify: $(cat "$tmp/rec1.log")"
    fi
    if wait_for "$tmp/plain.out" '"from"'; then
        [ "$(json "$tmp/plain.out" '(v["from"], v["to"], v["desktop"], v["terminals"])')" = "('ALICE', 'BOB', True, [])" ] &&
            pass "serve --json: from, to, desktop true" ||
            fail "serve --json: $(tail -1 "$tmp/plain.out")"
    else
        fail "serve printed nothing: $(cat "$tmp/plain.err")"
    fi
    stop_serve plain
    kill "$rec"; wait "$rec" 2>/dev/null || true

    # 2. A server that reads markup: the body is escaped.
    start_recorder "$tmp/rec2.log" --markup
    start_serve markup
    printf '<b>bold</b> & co' | "$bin" messenger deliver --from EVE --to BOB
    if wait_for "$tmp/rec2.log" '"summary"'; then
        case $(json "$tmp/rec2.log" 'v["body"]') in
            '&lt;b&gt;bold&lt;/b&gt; &amp; co'*) pass "markup server: body escaped" ;;
            *) fail "markup server body: $(json "$tmp/rec2.log" 'repr(v["body"])')" ;;
        esac
    else
        fail "the markup recorder got no Notify: $(cat "$tmp/rec2.log")"
    fi
    stop_serve markup
    kill "$rec"; wait "$rec" 2>/dev/null || true

    # 3. No notification server on the bus: desktop off, the message still printed.
    start_serve noserver
    grep -q 'desktop notifications off' "$tmp/noserver.err" &&
        pass "no notification server: serve says desktop off" ||
        fail "no notification server: $(cat "$tmp/noserver.err")"
    echo 'still shown' | "$bin" messenger deliver --from ALICE --to BOB
    if wait_for "$tmp/noserver.out" '"from"' &&
        [ "$(json "$tmp/noserver.out" '(v["text"], v["desktop"])')" = "('still shown', False)" ]; then
        pass "no notification server: printed with desktop false"
    else
        fail "no notification server: $(cat "$tmp/noserver.out")"
    fi
    stop_serve noserver

    echo "messenger desktop: $passes passed, $failures failed"
    [ "$failures" -eq 0 ]
    exit
fi

skip() {
    echo "SKIP: $*"
    if [ "${CI:-}" = true ]; then
        echo "FAIL: a skip is a failure under CI=true"
        exit 1
    fi
    exit 0
}
if ! command -v dbus-run-session >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dbus-daemon >/dev/null
    fi
    command -v dbus-run-session >/dev/null 2>&1 ||
        skip "dbus-run-session is missing (Debian: apt-get install dbus-daemon)"
fi
command -v python3 >/dev/null 2>&1 || skip "python3 is missing (it reads the JSON lines)"

(cd "$root" && cargo build -q -p mailslot-cli --bin mailslot &&
    cargo build -q -p mailslot-messenger --example notification_recorder)
target=${CARGO_TARGET_DIR:-$root/target}
case $target in /*) ;; *) target=$root/$target ;; esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The session bus of the caller, if any, is left out: only the private one is used.
env -u DBUS_SESSION_BUS_ADDRESS dbus-run-session -- bash "$0" --inside \
    "$target/debug/mailslot" "$target/debug/examples/notification_recorder" "$tmp"
