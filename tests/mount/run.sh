#!/usr/bin/env bash
# Mailslots as files: `mailslot mount` in a temporary directory, exercised with echo, printf,
# cat, dd, `exec 3<>`, a C program (priorities through read(2), poll, EMSGSIZE, EAGAIN, the last
# close) and a Python script; errors; a `nobody` writer; SIGTERM with open files; SIGKILL.
# Needs root, /dev/fuse and fusermount3 (Debian: fuse3); says SKIP otherwise, and fails (exit 1)
# instead when CI=true.
# Last line: "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
pass=0
fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1${2:+: $2}"; fail=$((fail + 1)); }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?; }

skip() {
    echo "SKIP mount tests: $1"
    if [ "${CI:-}" = true ]; then
        echo "mount tests: CI=true, so a skip is an error" >&2
        exit 1
    fi
    finish
}
if [ "$(id -u)" -ne 0 ]; then skip "need root"; fi
if [ ! -c /dev/fuse ]; then skip "no /dev/fuse"; fi
if ! command -v fusermount3 >/dev/null; then skip "no fusermount3 (apt-get install fuse3)"; fi

cargo build -q -p mailslot-cli || { bad build; finish; }
MS="$ROOT/target/debug/mailslot"
WORK=$(mktemp -d)
chmod 755 "$WORK" # nobody must reach the mount point
M="$WORK/mnt"
FSPID=
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    [ -n "$FSPID" ] && kill "$FSPID" 2>/dev/null
    sleep 0.2
    grep -q " $M " /proc/mounts && umount -l "$M"
    rm -rf "$WORK"
}
trap cleanup EXIT
gcc -Wall -O1 -o "$WORK/prio_poll" tests/mount/prio_poll.c || { bad "compile prio_poll.c"; finish; }

mounted() { grep -q " $M fuse" /proc/mounts; }
start_fs() {
    "$MS" mount "$M" 2>"$WORK/fs.log" &
    FSPID=$!
    for _ in $(seq 100); do mounted && return 0; sleep 0.05; done
    return 1
}
# listen NAME ARGS...: a background owner printing JSON lines to $WORK/NAME.out
listen() {
    local n=$1; shift
    "$MS" listen "\\\\.\\mailslot\\test\\$n" --json "$@" >"$WORK/$n.out" 2>>"$WORK/listen.err" &
    PIDS+=($!)
    for _ in $(seq 100); do [ -e "$M/test/$n" ] && return 0; sleep 0.05; done
    return 1
}
lines() { wc -l <"$WORK/$1.out"; }
wait_lines() { for _ in $(seq 100); do [ "$(lines "$1")" -ge "$2" ] && return 0; sleep 0.05; done; return 1; }
errmsg() { "$@" 2>&1 >/dev/null | tail -1; }
# put FILE TEXT: one write(2) with dd, which reports the errno (dash's printf says "I/O error").
put() { printf '%s' "$2" | dd of="$1" status=none; }

start_fs && ok "mount" || { bad mount "$(cat "$WORK/fs.log")"; finish; }

# --- listing and the write side -------------------------------------------------------------
listen events
if ls -R "$M" | grep -q '^events$' && [ -f "$M/test/events" ] && [ -d "$M/test" ]; then ok "ls -R shows test/events"; else bad "ls -R" "$(ls -R "$M")"; fi
[ -f "$M/TEST/Events" ] && ok "names compare case-insensitively" || bad "case-insensitive lookup"
echo 'disk full' >"$M/test/events" && wait_lines events 1 && sleep 0.2
if [ "$(lines events)" -eq 1 ] && grep -q '"text":"disk full\\n"' "$WORK/events.out"; then ok "echo queues exactly one message"; else bad "echo" "$(cat "$WORK/events.out")"; fi
printf 'a' >"$M/test/events"; printf 'bb' >"$M/test/events"
dd if=/dev/zero bs=100 count=3 of="$M/test/events" status=none
wait_lines events 6
if [ "$(lines events)" -eq 6 ] && grep -q '"size":100' "$WORK/events.out"; then ok "printf and dd: each write(2) is one message"; else bad "printf/dd" "$(cat "$WORK/events.out")"; fi
# The sender is the writing process: uid/gid/pid of the caller, not the filesystem's pid.
if grep '"text":"disk full' "$WORK/events.out" | grep -q "\"pid\":$FSPID"; then bad "sender pid is the filesystem's"; else ok "sender pid is the caller's"; fi
echo hi >"$M/test/events:7"; wait_lines events 7
tail -1 "$WORK/events.out" | grep -q '"priority":7' && ok "NAME:7 writes priority 7" || bad "priority suffix" "$(tail -1 "$WORK/events.out")"
"$MS" send //mailslot/test/events unixform && wait_lines events 8 && ok "//mailslot/x name form" || bad "//mailslot/x"

# --- errors -------------------------------------------------------------------------------------
e=$(errmsg sh -c "echo x > '$M/test/missing'")
[[ $e == *"No such file"* || $e == *"nonexistent"* ]] && ok "missing slot: ENOENT" || bad "ENOENT" "$e"
listen small --max-size 10 --quota 20
e=$(errmsg dd if=/dev/zero bs=11 count=1 of="$M/test/small" status=none)
[[ $e == *"Message too long"* ]] && ok "larger than the maximum: EMSGSIZE" || bad "EMSGSIZE" "$e"
# The owner here is `listen`, which reads as fast as it can: fill a slot nobody reads instead.
exec 5<>"$M/full-$$"
for i in $(seq 16); do dd if=/dev/zero bs=65536 count=1 of="$M/full-$$" status=none || break; done
e=$(errmsg dd if=/dev/zero bs=10 count=1 of="$M/full-$$" status=none)
[[ $e == *"Resource temporarily unavailable"* ]] && ok "full slot: EAGAIN" || bad "EAGAIN" "$e"
# First class (O_SYNC): waits for room instead.
dd if=/dev/zero bs=10 count=1 of="$M/full-$$" oflag=sync status=none &
DD=$!
sleep 0.5
if kill -0 $DD 2>/dev/null; then
    dd bs=65536 count=1 <&5 of=/dev/null status=none
    if timeout 5 tail --pid=$DD -f /dev/null && wait $DD; then ok "O_SYNC write waits for room, then succeeds"; else bad "O_SYNC write did not finish after a read"; fi
else
    bad "O_SYNC write to a full slot did not wait"
fi
exec 5<&-
e=$(errmsg sh -c "exec 3< '$M/test/events'")
[[ $e == *"Permission denied"* ]] && ok "opening someone else's slot for reading: EACCES" || bad "reader EACCES" "$e"
[ -z "$(ls "$M" | grep "full-$$")" ] && ok "slot gone after its last close" || bad "slot left after close"

# --- nobody ---------------------------------------------------------------------------------
NOBODY=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
listen owneronly
e=$(errmsg "${NOBODY[@]}" sh -c "echo sneaky > '$M/test/owneronly'")
[[ $e == *"Permission denied"* ]] && ok "nobody cannot write to an owner-only slot (EACCES)" || bad "nobody EACCES" "$e"
sleep 0.2
[ "$(lines owneronly)" -eq 0 ] && ok "and nothing arrived" || bad "nobody's message arrived" "$(cat "$WORK/owneronly.out")"
listen open --access everyone
"${NOBODY[@]}" sh -c "echo from-nobody > '$M/test/open'" && wait_lines open 1
if grep -q '"uid":65534' "$WORK/open.out" && ! grep -q '"uid":0' "$WORK/open.out"; then ok "nobody's message to an open slot arrives as uid 65534"; else bad "nobody sender" "$(cat "$WORK/open.out")"; fi

# A mailslot created by another process (not through the mount): stat and the extended
# attributes ask its owner, which here holds its messages unread.
listen held --hold 60000
"$MS" send "\\\\.\\mailslot\\test\\held" low --priority 1
"$MS" send "\\\\.\\mailslot\\test\\held" urgent! --priority 7
"$MS" send "\\\\.\\mailslot\\test\\held" lowest
s=$(stat -c %s "$M/test/held")
c=$(python3 -c "import os,sys; print(os.getxattr(sys.argv[1], 'user.mailslot.count').decode(), os.getxattr(sys.argv[1], 'user.mailslot.next_priority').decode())" "$M/test/held" 2>&1)
[ "$s/$c" = "7/3 7" ] && ok "stat size and xattrs of a mailslot another process owns" || bad "stat of another owner's slot" "size $s, count/prio $c"
# The view keeps the connection it asked on; a new owner of the name is asked on a new one.
s2=$(stat -c %s "$M/test/held")
HELD=${PIDS[-1]}
kill "$HELD"; wait "$HELD" 2>/dev/null
for _ in $(seq 100); do [ -e "$M/test/held" ] || break; sleep 0.05; done
listen held --hold 60000
"$MS" send "\\\\.\\mailslot\\test\\held" xy --priority 4
s3=$(stat -c %s "$M/test/held")
c3=$(python3 -c "import os,sys; print(os.getxattr(sys.argv[1], 'user.mailslot.count').decode())" "$M/test/held" 2>&1)
[ "$s2/$s3/$c3" = "7/2/1" ] && ok "stat again, and of a new owner of the name" || bad "stat after a new owner" "sizes $s2 then $s3, count $c3"
# Every attribute listed for a priority name (held:7) is there, as for the name itself.
m=$(python3 -c "import os,sys; print(*(os.getxattr(sys.argv[1] + s, 'user.mailslot.max_message_size').decode() for s in ('', ':7')))" "$M/test/held" 2>&1)
read -r m0 m7 <<<"$m"
[[ $m0 =~ ^[0-9]+$ ]] && [ "$m0" = "$m7" ] && ok "max_message_size of a priority name as of the name" || bad "max_message_size of held:7" "$m"

# --- the read side from the shell ----------------------------------------------------------------
exec 3<>"$M/inbox-$$"
"$MS" send "\\\\.\\mailslot\\inbox-$$" low --priority 1
"$MS" send "\\\\.\\mailslot\\inbox-$$" urgent --priority 9
[ "$(stat -c %s "$M/inbox-$$")" = 6 ] && ok "stat size = next message size" || bad "stat size" "$(stat -c %s "$M/inbox-$$")"
if command -v getfattr >/dev/null; then
    c=$(getfattr --only-values -n user.mailslot.count "$M/inbox-$$" 2>&1)
    [ "$c" = 2 ] && ok "xattr user.mailslot.count" || bad "xattr count" "$c"
else
    c=$(python3 -c "import os,sys; print(os.getxattr(sys.argv[1], 'user.mailslot.count').decode())" "$M/inbox-$$" 2>&1)
    [ "$c" = 2 ] && ok "xattr user.mailslot.count" || bad "xattr count" "$c"
fi
m1=$(dd bs=1000 count=1 <&3 status=none); m2=$(dd bs=1000 count=1 <&3 status=none)
[ "$m1/$m2" = "urgent/low" ] && ok "exec 3<> and dd: one message per read, priority first" || bad "read order" "$m1/$m2"
echo via-cat >"$M/inbox-$$"; echo second >"$M/inbox-$$"
out=$(timeout 1 cat <&3)
rc=$?
[ $rc -eq 124 ] && ok "a blocked read(2) ends when its process is signalled" || bad "cat after timeout" "rc=$rc"
[ "$out" = "$(printf 'via-cat\nsecond')" ] && ok "cat reads the messages" || bad "cat" "$out"
exec 3<&-
sleep 0.1
"$MS" list | grep -q "inbox-$$" && bad "slot left after exec 3<&-" || ok "exec 3<&- deletes the slot"

# --- C and Python ----------------------------------------------------------------------------
o=$("$WORK/prio_poll" "$M" 2>&1) && ok "C: priorities through read(2), EMSGSIZE, EAGAIN, poll, last close" || bad "C prio_poll" "$o"
o=$(python3 tests/mount/test_mount.py "$M" 2>&1) && ok "Python: open/os.write/os.read" || bad "Python" "$o"

# --- remote names: a second mount with a daemon in a network namespace of its own ---------------
M2="$WORK/mnt2"
mkdir -p "$M2"
unshare -n bash -c "ip link set lo up
    '$MS' daemon --netbios-name TESTA --workgroup LAB --interface lo >'$WORK/daemon.log' 2>&1 & echo \$! >'$WORK/daemon.pid'
    '$MS' mount '$M2' 2>'$WORK/fs2.log' & echo \$! >'$WORK/fs2.pid'
    wait" &
for _ in $(seq 100); do grep -q " $M2 fuse" /proc/mounts && grep -q "names registered" "$WORK/daemon.log" 2>/dev/null && break; sleep 0.05; done
PIDS+=("$(cat "$WORK/daemon.pid")" "$(cat "$WORK/fs2.pid")")
[ -d "$M2/.net/TESTA" ] && ls -a "$M2" | grep -q '^\.net$' && ok ".net/COMPUTER is a directory" || bad ".net listing" "$(ls -a "$M2")"
e=$(errmsg sh -c "exec 3< '$M2/.net/testa/x'")
[[ $e == *"Permission denied"* ]] && ok "remote names are write-only" || bad "remote read" "$e"
e=$(errmsg put "$M2/.net/nosuch/x" hi)
[[ $e == *"No route to host"* ]] && ok "unresolvable computer: EHOSTUNREACH" || bad "EHOSTUNREACH" "$e"
e=$(errmsg dd if=/dev/zero bs=425 count=1 of="$M2/.net/testa/chatty" status=none)
[[ $e == *"Message too long"* ]] && ok "425 bytes to a remote name: EMSGSIZE (424-byte rule)" || bad "remote EMSGSIZE" "$e"
exec 7<>"$M2/chatty"
if dd if=/dev/zero bs=424 count=1 of="$M2/.net/testa/chatty" status=none && put "$M2/.net/*/chatty:4" 'over the net'; then
    # Priority 4 first, then the 424 bytes of priority 0.
    a=$(timeout 5 dd bs=1000 count=1 status=none <&7); b=$(timeout 5 dd bs=1000 count=1 status=none <&7 | wc -c)
    [ "$a/$b" = "over the net/424" ] && ok "remote writes travel through mailslotd (COMPUTER and *)" || bad "remote delivery" "$a/$b"
else
    bad "remote write failed"
fi
exec 7<&-
kill "$(cat "$WORK/fs2.pid")" "$(cat "$WORK/daemon.pid")"
e=$(errmsg put "$M/.net/testa/x" hi)
[[ $e == *"Connection refused"* ]] && ok "remote name without a daemon: ECONNREFUSED" || bad "no daemon" "$e"

# --- SIGTERM with open files ------------------------------------------------------------------
exec 3<>"$M/keep-$$"
exec 4>"$M/test/events"
kill -TERM "$FSPID"
if timeout 5 tail --pid="$FSPID" -f /dev/null; then ok "SIGTERM ends the filesystem with files open"; else bad "filesystem still running after SIGTERM"; fi
FSPID=
sleep 0.2
mounted && bad "still mounted after SIGTERM" || ok "unmounted after SIGTERM"
"$MS" list | grep -q "keep-$$" && bad "slot created through the mount outlived it" || ok "nothing left behind"
timeout 5 sh -c 'echo x >&4' 2>/dev/null
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && ok "a write on a file left open fails, no hang" || bad "write after unmount" "rc=$rc"
exec 3<&- 4>&-

# --- SIGKILL ----------------------------------------------------------------------------------
start_fs || bad "remount"
exec 5<>"$M/kill-$$"
for i in $(seq 16); do dd if=/dev/zero bs=65536 count=1 of="$M/kill-$$" status=none || break; done
dd if=/dev/zero bs=10 count=1 of="$M/kill-$$" oflag=sync status=none 2>/dev/null &
DD=$!
exec 6>"$M/test/events"
sleep 0.3
kill -KILL "$FSPID"
wait "$FSPID" 2>/dev/null
FSPID=
if timeout 5 tail --pid=$DD -f /dev/null; then
    wait $DD && bad "blocked writer succeeded after SIGKILL" || ok "SIGKILL: a blocked writer gets an error"
else
    bad "blocked writer hangs after SIGKILL"
fi
timeout 5 sh -c 'echo x >&6' 2>/dev/null
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && ok "SIGKILL: a write on an open file fails, no hang" || bad "write after SIGKILL" "rc=$rc"
exec 5<&- 6>&-
# fusermount3 (auto_unmount) unmounts once it sees the file system's end; on a loaded machine
# that can take a few seconds.
for _ in $(seq 200); do mounted || break; sleep 0.05; done
if mounted; then
    bad "still mounted 10 s after SIGKILL (auto_unmount)" \
        "$(grep " $M " /proc/mounts; pgrep -a fusermount3)"
else
    ok "SIGKILL: fusermount3 unmounted it"
fi

finish
