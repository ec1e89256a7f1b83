#!/usr/bin/env bash
# Installs the project with scripts/install.sh into a temporary root (DESTDIR) and checks it as a
# package would be checked:
#   - every file is in place (binaries, C library, header, pkg-config file, man pages,
#     completions, units, configuration), and the installed files name the prefix;
#   - `systemd-analyze verify --root` passes for the system units and, with --user, for the
#     Messenger's user unit: it resolves their ExecStart binaries
#     inside the root and runs `man` for their man: links (MANPATH points into the root);
#   - the same check fails when a unit's binary or man page is missing (so it proves something);
#   - the installed daemon accepts the installed configuration (the unit's ExecStartPre), man finds
#     the pages, and the bash completions load.
#
#   bash tests/install/run.sh                 # builds in release first (scripts/install.sh)
#   MAILSLOT_NO_BUILD=1 bash tests/install/run.sh   # installs what target/release holds
#
# Needs systemd-analyze (package systemd) and man (man-db); does not need root.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/root
prefix=/usr/local
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

for tool in systemd-analyze man pkg-config; do
    command -v "$tool" >/dev/null || { echo "FAIL: $tool is missing" >&2; exit 1; }
done

args=(--prefix "$prefix" --destdir "$dest")
[ "${MAILSLOT_NO_BUILD:-0}" = 1 ] && args+=(--no-build)
"$root/scripts/install.sh" "${args[@]}"

# 1. The files.
for f in bin/mailslot bin/mailslotd lib/libmailslot.so lib/libmailslot.a include/mailslot.h \
    lib/pkgconfig/mailslot.pc share/man/man1/mailslot.1 share/man/man1/mailslot-listen.1 \
    share/man/man1/mailslot-daemon.1 share/man/man1/mailslot-mount.1 share/man/man8/mailslotd.8 \
    share/bash-completion/completions/mailslot share/bash-completion/completions/mailslotd \
    share/zsh/site-functions/_mailslot share/fish/vendor_completions.d/mailslot.fish \
    lib/systemd/system/mailslotd.service lib/systemd/system/mailslot-mount.service \
    lib/systemd/system/mailslot-messenger-system.service lib/systemd/user/mailslot-messenger.service \
    share/man/man1/mailslot-messenger.1; do
    [ -s "$dest$prefix/$f" ] || fail "$prefix/$f not installed"
done
for f in mailslotd.toml mailslotd.toml.example policy.toml.example; do
    [ -s "$dest/etc/mailslot/$f" ] || fail "/etc/mailslot/$f not installed"
done
[ -x "$dest$prefix/bin/mailslotd" ] || fail "mailslotd is not executable"
[ ! -e "$dest/etc/mailslot/policy.toml" ] || fail "a name policy was installed (only the example should be)"
grep -q "^ExecStart=$prefix/bin/mailslotd --config /etc/mailslot/mailslotd.toml$" \
    "$dest$prefix/lib/systemd/system/mailslotd.service" || fail "mailslotd.service paths"
grep -q "^ExecStart=$prefix/bin/mailslot messenger serve --no-terminals$" \
    "$dest$prefix/lib/systemd/user/mailslot-messenger.service" || fail "mailslot-messenger.service paths"
grep -q "^ExecStart=$prefix/bin/mailslot messenger serve --no-desktop$" \
    "$dest$prefix/lib/systemd/system/mailslot-messenger-system.service" ||
    fail "mailslot-messenger-system.service paths"
grep -q "^prefix=$prefix$" "$dest$prefix/lib/pkgconfig/mailslot.pc" || fail "mailslot.pc prefix"
if grep -rq "$dest" "$dest$prefix/lib/systemd" "$dest$prefix/lib/pkgconfig"; then
    fail "an installed file names the staging directory"
fi
v=$(PKG_CONFIG_PATH=$dest$prefix/lib/pkgconfig pkg-config --modversion mailslot) ||
    fail "pkg-config does not find mailslot"
echo "pkg-config: mailslot $v"

# 2. systemd-analyze verify in the root. It needs the system's own units there (sysinit.target,
# network-online.target, ...): a copy of this host's.
sysunits=$(readlink -f /usr/lib/systemd/system 2>/dev/null || true)
[ -d "$sysunits" ] || sysunits=$(readlink -f /lib/systemd/system)
mkdir -p "$dest/usr/lib/systemd/system"
cp -a "$sysunits/." "$dest/usr/lib/systemd/system/"
units=(mailslotd.service mailslot-mount.service mailslot-messenger-system.service)
verify() {
    MANPATH=$dest$prefix/share/man systemd-analyze verify --root="$dest" "${units[@]}" 2>&1
}
if out=$(verify); then
    # Warnings do not change the status: none are expected either.
    [ -z "$out" ] || fail "systemd-analyze verify warns: $out"
    echo "systemd-analyze verify: ${units[*]} ok"
else
    fail "systemd-analyze verify: $out"
fi
# The Messenger's user unit, as the user manager loads it: `verify --user` cannot take --root,
# so a copy whose ExecStart names the staged binary is checked, with a runtime directory of its
# own (the user manager needs one). A missing binary makes it fail too.
mkdir -m 700 "$tmp/runtime"
sed "s|^ExecStart=$prefix/bin/|ExecStart=$dest$prefix/bin/|" \
    "$dest$prefix/lib/systemd/user/mailslot-messenger.service" >"$tmp/mailslot-messenger.service"
verify_user() {
    XDG_RUNTIME_DIR=$tmp/runtime MANPATH=$dest$prefix/share/man \
        systemd-analyze verify --user "$tmp/mailslot-messenger.service" 2>&1
}
if out=$(verify_user); then
    [ -z "$out" ] || fail "systemd-analyze verify --user warns: $out"
    echo "systemd-analyze verify --user: mailslot-messenger.service ok"
else
    fail "systemd-analyze verify --user: $out"
fi
mv "$dest$prefix/bin/mailslot" "$tmp/mailslot"
if out=$(verify_user); then
    fail "systemd-analyze verify --user passed without the mailslot binary"
else
    echo "without mailslot: verify --user fails as it must (${out%%$'\n'*})"
fi
mv "$tmp/mailslot" "$dest$prefix/bin/mailslot"

# 3. The same check catches a missing binary and a missing man page.
mv "$dest$prefix/bin/mailslotd" "$tmp/mailslotd"
if out=$(verify); then
    fail "systemd-analyze verify passed without the mailslotd binary"
else
    echo "without mailslotd: verify fails as it must (${out%%$'\n'*})"
fi
mv "$tmp/mailslotd" "$dest$prefix/bin/mailslotd"
mv "$dest$prefix/share/man/man8/mailslotd.8" "$tmp/mailslotd.8"
if out=$(verify); then
    fail "systemd-analyze verify passed without mailslotd(8)"
else
    echo "without mailslotd(8): verify fails as it must (${out%%$'\n'*})"
fi
mv "$tmp/mailslotd.8" "$dest$prefix/share/man/man8/mailslotd.8"

# 4. The unit's ExecStartPre: the daemon accepts the installed configuration.
if ! "$dest$prefix/bin/mailslotd" --validate --config "$dest/etc/mailslot/mailslotd.toml" \
    >"$tmp/validate.log" 2>&1; then
    fail "mailslotd --validate rejects the installed configuration: $(cat "$tmp/validate.log")"
fi
MANPATH=$dest$prefix/share/man man -w mailslot-listen >/dev/null || fail "man does not find mailslot-listen(1)"
# The bash completion loads and registers both commands.
for cmd in mailslot mailslotd; do
    bash -c "source '$dest$prefix/share/bash-completion/completions/$cmd' && complete -p $cmd" \
        >/dev/null 2>&1 || fail "the bash completion of $cmd does not load"
done

if [ "$failures" -ne 0 ]; then
    echo "install: $failures check(s) failed" >&2
    exit 1
fi
echo "install: all checks passed"
