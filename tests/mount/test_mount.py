"""Mailslots as files from Python, with nothing but open()/os.write()/os.read().

Usage: python3 test_mount.py MOUNTDIR   (exit 0 = passed)
"""
import errno
import os
import sys

mnt = sys.argv[1]
path = os.path.join(mnt, "py-%d" % os.getpid())

# Create and own: O_RDWR|O_CREAT; mode 0o600 = only this user (and root) may write.
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)

# Each os.write is one message; NAME:P gives the priority.
with open(path + ":3", "wb", buffering=0) as w:
    assert w.write(b"three") == 5
with open(path, "wb", buffering=0) as w:
    w.write(b"zero")
with open(path + ":9", "wb", buffering=0) as w:
    w.write(b"nine")

# A missing mailslot: ENOENT.
try:
    open(path + "-missing", "wb")
    raise SystemExit("open of a missing mailslot succeeded")
except FileNotFoundError:
    pass

# Reads: one whole message each, highest priority first; too small a buffer: EMSGSIZE.
try:
    os.read(fd, 2)
    raise SystemExit("short read succeeded")
except OSError as e:
    assert e.errno == errno.EMSGSIZE, e
got = [os.read(fd, 65536) for _ in range(3)]
assert got == [b"nine", b"three", b"zero"], got

os.set_blocking(fd, False)
try:
    os.read(fd, 100)
    raise SystemExit("read of an empty mailslot did not fail")
except BlockingIOError:
    pass

os.close(fd)
assert not os.path.exists(path), "mailslot outlived its file"
print("python: ok")
