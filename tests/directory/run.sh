#!/usr/bin/env bash
# Runs the library's suites (Rust, hostile programs, CLI, Messenger, C API) a second time with the
# daemon's mailslot directory serving: each private mailslot then registers its name there instead
# of binding a socket, and writers find it through the directory. The directory is the daemon's
# own server (`cargo run -p mailslotd --example directory`) at an address of this run's, given to
# every process through MAILSLOT_DIRECTORY (the hostile programs that run as nobody inherit it).
#
#   tests/directory/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -q -p mailslotd --example directory
address="mailslot-ci/directory/$$"
log=$(mktemp)
target/debug/examples/directory "$address" >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do
    grep -q ready "$log" && break
    sleep 0.1
done
grep -q ready "$log" || { echo "the directory did not start:"; cat "$log"; exit 1; }
export MAILSLOT_DIRECTORY="$address"

# The mode is really on: a mailslot made now has no socket of its own, and the directory lists it.
probe='\\.\mailslot\ci\directory-probe'
cargo build -q -p mailslot-cli
target/debug/mailslot listen "$probe" >/dev/null 2>&1 &
creator=$!
for _ in $(seq 100); do
    target/debug/mailslot list 2>/dev/null | grep -qi 'ci\\directory-probe' && break
    sleep 0.1
done
target/debug/mailslot list | grep -qi 'ci\\directory-probe' || { echo "the probe mailslot is not listed"; exit 1; }
if grep -qi '@mailslot/v1/ci\\directory-probe' /proc/net/unix; then
    echo "the probe mailslot has a socket of its own: the directory is not used"
    exit 1
fi
kill "$creator" 2>/dev/null || true
echo "directory in use: the probe mailslot is listed and has no socket"

cargo test -q -p mailslot -p mailslot-hostile -p mailslot-cli -p mailslot-messenger
bash tests/c/run.sh
