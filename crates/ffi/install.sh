#!/bin/sh
# Builds and installs the C library of the mailslot project.
#
#   crates/ffi/install.sh PREFIX        e.g. crates/ffi/install.sh /usr/local
#
# Installs PREFIX/lib/libmailslot.so, PREFIX/lib/libmailslot.a, PREFIX/include/mailslot.h and
# PREFIX/lib/pkgconfig/mailslot.pc. Then:
#   PKG_CONFIG_PATH=PREFIX/lib/pkgconfig cc prog.c $(pkg-config --cflags --libs mailslot)
# The .pc file adds -Wl,-rpath,PREFIX/lib, so programs find libmailslot.so without
# LD_LIBRARY_PATH. Set MAILSLOT_NO_BUILD=1 to install what target/release already holds, and
# DESTDIR to stage the files under another root (the .pc file still names PREFIX).
# scripts/install.sh installs this library together with the rest of the project.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 PREFIX" >&2
    exit 2
fi
prefix=$1
case $prefix in
    /*) ;;
    *) prefix=$(pwd)/$prefix ;;
esac

root=$(cd "$(dirname "$0")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
case $target in
    /*) ;;
    *) target=$root/$target ;;
esac

if [ "${MAILSLOT_NO_BUILD:-0}" != 1 ]; then
    (cd "$root" && cargo build --release -p mailslot-ffi)
fi

version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)
destdir=${DESTDIR:-}
libdir=$destdir$prefix/lib
incdir=$destdir$prefix/include

mkdir -p "$libdir/pkgconfig" "$incdir"
# Install the shared library under a temporary name and rename it, so that running programs
# that have the old one mapped are not disturbed.
cp "$target/release/libmailslot.so" "$libdir/.libmailslot.so.tmp"
mv -f "$libdir/.libmailslot.so.tmp" "$libdir/libmailslot.so"
cp "$target/release/libmailslot.a" "$libdir/libmailslot.a"
cp "$root/include/mailslot.h" "$incdir/mailslot.h"
chmod 755 "$libdir/libmailslot.so"
chmod 644 "$libdir/libmailslot.a" "$incdir/mailslot.h"

cat > "$libdir/pkgconfig/mailslot.pc" <<PC
prefix=$prefix
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib
includedir=\${prefix}/include

Name: mailslot
Description: Windows NT / LAN Manager mailslots for Linux (C API)
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir} -Wl,-rpath,\${libdir} -lmailslot
Libs.private: -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
PC

echo "installed libmailslot $version into $destdir$prefix"
