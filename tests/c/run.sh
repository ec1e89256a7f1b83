#!/bin/sh
# Builds the C library, installs it into a temporary prefix, compiles every tests/c/t_*.c (and
# helper_*.c) with `cc -Wall -Werror` through pkg-config, compiles examples/c, runs each test
# and each example pair, and prints "N passed, M failed" on the last line.
#
#   tests/c/run.sh            (set CC to choose the compiler, KEEP=1 to keep the temp dir,
#                              MAILSLOT_NO_BUILD=1 to skip cargo build)
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
CC=${CC:-cc}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mailslot-ctest.XXXXXX")
prefix=$tmp/prefix
bin=$tmp/bin
mkdir -p "$bin"
cleanup() { if [ "${KEEP:-0}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi; }
trap cleanup EXIT

passed=0
failed=0
failed_names=""
pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() { failed=$((failed + 1)); failed_names="$failed_names $1"; echo "FAIL $1"; }

if ! "$root/crates/ffi/install.sh" "$prefix" >"$tmp/install.log" 2>&1; then
    cat "$tmp/install.log"
    echo "install failed"
    echo "0 passed, 1 failed"
    exit 1
fi
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
cflags=$(pkg-config --cflags mailslot) || { echo "pkg-config failed"; echo "0 passed, 1 failed"; exit 1; }
libs=$(pkg-config --libs mailslot)
static_libs="$prefix/lib/libmailslot.a $(pkg-config --static --libs-only-l mailslot | sed 's/-lmailslot//')"

# compile NAME OUT SRC... : counts a failure when the build fails
compile() {
    name=$1; out=$2; shift 2
    # shellcheck disable=SC2086
    if ! $CC -std=c99 -Wall -Wextra -Werror -O1 -o "$out" "$@" $cflags $libs -lpthread 2>"$tmp/cc.log"; then
        cat "$tmp/cc.log"
        fail "compile:$name"
        return 1
    fi
    return 0
}

# Helpers first (tests exec them from $bin).
for src in "$here"/helper_*.c; do
    [ -e "$src" ] || continue
    name=$(basename "$src" .c)
    compile "$name" "$bin/$name" "$src" || true
done

export MAILSLOT_TEST_BIN="$bin"
for src in "$here"/t_*.c; do
    name=$(basename "$src" .c)
    compile "$name" "$bin/$name" "$src" || continue
    if timeout 60 "$bin/$name"; then pass "$name"; else fail "$name"; fi
done

# The installed header alone: C89 -pedantic and C++.
printf '#include <mailslot.h>\nint main(void) { return (int)GetLastError(); }\n' >"$tmp/hdr.c"
# shellcheck disable=SC2086
if $CC -std=c89 -pedantic -Wall -Wextra -Werror -c -o "$tmp/hdr.o" "$tmp/hdr.c" $cflags 2>"$tmp/cc.log"; then
    pass "header:c89"
else
    cat "$tmp/cc.log"; fail "header:c89"
fi
CXX=${CXX:-c++}
if command -v "$CXX" >/dev/null 2>&1; then
    # shellcheck disable=SC2086
    if $CXX -x c++ -Wall -Wextra -Werror -o "$tmp/hdr_cxx" "$tmp/hdr.c" $cflags $libs 2>"$tmp/cc.log"; then
        pass "header:c++"
    else
        cat "$tmp/cc.log"; fail "header:c++"
    fi
fi

# One test again, linked statically against libmailslot.a.
# shellcheck disable=SC2086
if $CC -std=c99 -Wall -Wextra -Werror -O1 -o "$bin/t_lanman_static" "$here/t_lanman.c" $cflags \
        $static_libs -lpthread 2>"$tmp/cc.log"; then
    if ldd "$bin/t_lanman_static" | grep -q libmailslot; then
        fail "static-link (still uses libmailslot.so)"
    elif timeout 60 "$bin/t_lanman_static"; then
        pass "t_lanman (static)"
    else
        fail "t_lanman (static)"
    fi
else
    cat "$tmp/cc.log"
    fail "compile:t_lanman_static"
fi

# Examples: build with their Makefile, then run each server/client pair once.
ex=$root/examples/c
if [ -f "$ex/Makefile" ]; then
    if make -s -C "$ex" OUT="$tmp/ex" CC="$CC" >"$tmp/make.log" 2>&1; then
        pass "examples:build"
        for pair in lm win32; do
            if [ $pair = lm ]; then
                slot='\mailslot\ctest\example\lm\'$$
            else
                slot='\\.\mailslot\ctest\example\win32\'$$
            fi
            "$tmp/ex/${pair}_server" "$slot" 3 >"$tmp/$pair.out" 2>&1 &
            spid=$!
            ok=0
            i=0
            # Retry the first message until the server has created the mailslot.
            while [ $i -lt 50 ]; do
                if "$tmp/ex/${pair}_client" "$slot" "hello from $pair" 2>/dev/null; then
                    ok=1
                    break
                fi
                sleep 0.1
                i=$((i + 1))
            done
            if [ $ok = 1 ]; then
                "$tmp/ex/${pair}_client" "$slot" second && "$tmp/ex/${pair}_client" "$slot" third \
                    || ok=0
            fi
            # The server exits after 3 messages.
            i=0
            while kill -0 "$spid" 2>/dev/null && [ $i -lt 100 ]; do
                sleep 0.1
                i=$((i + 1))
            done
            if kill -0 "$spid" 2>/dev/null; then
                kill "$spid"
                ok=0
            fi
            wait "$spid" || ok=0
            if [ $ok = 1 ] && grep -q "hello from $pair" "$tmp/$pair.out" \
                && grep -q third "$tmp/$pair.out"; then
                pass "examples:$pair"
            else
                cat "$tmp/$pair.out"
                fail "examples:$pair"
            fi
        done
    else
        cat "$tmp/make.log"
        fail "examples:build"
    fi
fi

[ -n "$failed_names" ] && echo "failed:$failed_names"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
