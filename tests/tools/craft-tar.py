#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Test tool: writes a hostile (or plain) pax archive for tests/tree.bats
and the fuzz_tree seeds (tests/fuzz/seeds.py imports it).

    craft-tar.py KIND OUT      (craft-tar.py --list: the kinds)

Each archive is what a compromised sender could put in the stream; the
receiver is the real nshm-get (send it with build/tools/send-archive).
"""
import io
import sys
import tarfile


def entry(t, name, data=b"", **kw):
    """One entry; data is its body whatever its type (POSIX lets hard
    links carry data), pax records in kw['pax']."""
    ti = tarfile.TarInfo(name)
    pax = kw.pop("pax", None)
    for k, v in kw.items():
        setattr(ti, k, v)
    if pax:
        ti.pax_headers = dict(pax)
    ti.size = len(data)
    if ti.type == tarfile.DIRTYPE:
        ti.size = 0
    t.addfile(ti, io.BytesIO(data) if ti.size else None)


def sparse10(t, name, realsize, pairs, data=b""):
    """A GNU sparse 1.0 entry: the map is the start of the entry's data,
    "count\\n" then "offset\\nsize\\n" per piece, padded to 512 bytes."""
    body = bytearray(b"%d\n" % len(pairs))
    body += b"".join(b"%d\n%d\n" % p for p in pairs)
    body += b"\0" * (-len(body) % 512)
    body += data
    ti = tarfile.TarInfo("GNUSparseFile.0/" + name)
    ti.size = len(body)
    ti.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
                      "GNU.sparse.name": name, "GNU.sparse.realsize": str(realsize)}
    t.addfile(ti, io.BytesIO(bytes(body)))


def sparse_bomb(out, mb):
    """A GNU sparse 1.0 map of mb MB of empty pieces: libarchive keeps
    each piece in memory (about 48 bytes for 4 bytes of stream)."""
    n = mb * (1 << 20) // 4
    with open(out, "wb") as f:
        t = tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT)
        sparse10(t, "bomb", 1, [(0, 0)] * n)
        t.close()


def build(kind, t):
    P = {"comment": "pax"}   # forces an 'x' header: pax interchange rules
    if kind == "plain":
        entry(t, "dir", type=tarfile.DIRTYPE, mode=0o755)
        entry(t, "dir/a.txt", b"alpha\n", mode=0o644)
        entry(t, "dir/ln", type=tarfile.SYMTYPE, linkname="a.txt")
        entry(t, "dir/hard", type=tarfile.LNKTYPE, linkname="dir/a.txt")
    elif kind == "hardlink-body":
        # A hard link carrying data: libarchive would open the target
        # (an existing file) with O_TRUNC and write the body into it.
        entry(t, "evil", b"owned by the sender\n", type=tarfile.LNKTYPE,
              linkname="victim.txt", mode=0o4755, pax=P)
    elif kind == "hardlink-pre":
        entry(t, "evil", type=tarfile.LNKTYPE, linkname="victim.txt", pax=P)
    elif kind == "hardlink-own-body":
        entry(t, "mine", b"mine\n", mode=0o644)
        entry(t, "evil", b"rewritten\n", type=tarfile.LNKTYPE, linkname="mine", pax=P)
    elif kind == "hardlink-ok":
        entry(t, "first", b"first\n", mode=0o644)
        entry(t, "sub", type=tarfile.DIRTYPE, mode=0o755)
        entry(t, "sub/second", type=tarfile.LNKTYPE, linkname="first")
    elif kind == "hardlink-symlink":
        # A link to a symlink of ours: not a regular file of the transfer.
        entry(t, "sl", type=tarfile.SYMTYPE, linkname="victim.txt")
        entry(t, "evil", type=tarfile.LNKTYPE, linkname="sl")
    elif kind == "chardev":
        entry(t, "mem", type=tarfile.CHRTYPE, devmajor=1, devminor=1, mode=0o666)
    elif kind == "blockdev":
        entry(t, "disk", type=tarfile.BLKTYPE, devmajor=7, devminor=0, mode=0o666)
    elif kind == "fifo":
        entry(t, "pipe", type=tarfile.FIFOTYPE, mode=0o666)
    elif kind == "unknown":
        entry(t, "odd", b"x", type=b"Z", mode=0o644)
    elif kind == "setid":
        entry(t, "suid", b"#!/bin/sh\n", mode=0o4755)
        entry(t, "sgid", b"#!/bin/sh\n", mode=0o2755)
        entry(t, "sticky", b"data\n", mode=0o1644)
        entry(t, "sdir", type=tarfile.DIRTYPE, mode=0o7755)
    elif kind == "dotdir":
        entry(t, ".", type=tarfile.DIRTYPE, mode=0o7777, uid=4242, gid=4242)
        entry(t, "sub", type=tarfile.DIRTYPE, mode=0o7777, uid=4242, gid=4242)
        entry(t, "./sub/", type=tarfile.DIRTYPE, mode=0o7777, uid=4242, gid=4242)
        entry(t, "sub/file", b"new\n", mode=0o644)
    elif kind == "modes":
        entry(t, "rw-all", b"x\n", mode=0o666)
        entry(t, "rwx-all", b"x\n", mode=0o777)
        entry(t, "dir-all", type=tarfile.DIRTYPE, mode=0o777)
    elif kind == "longname":
        entry(t, "d/" * 2100 + "f", b"x")
    elif kind == "longlink":
        entry(t, "ln", type=tarfile.SYMTYPE, linkname="x" * 5000)
    elif kind == "sparse":
        sparse10(t, "holes", 1 << 20, [(4096, 5), (1 << 19, 5)], b"aaaaabbbbb")
    elif kind == "symlink-out":
        # Writing through a symlink that leads out of DEST.
        entry(t, "ln", type=tarfile.SYMTYPE, linkname="../outside")
        entry(t, "ln/victim.txt", b"through the link\n")
    elif kind == "symlink-file-out":
        entry(t, "fl", type=tarfile.SYMTYPE, linkname="../outside/victim.txt")
        entry(t, "h", type=tarfile.LNKTYPE, linkname="fl")
        entry(t, "fl", b"over the link\n", mode=0o644)
    elif kind == "replace":
        # With --force: files replaced, directories and links to them not.
        entry(t, "victim.txt", b"new victim\n", mode=0o600)
        entry(t, "sub/keep", type=tarfile.SYMTYPE, linkname="../../outside/victim.txt")
        entry(t, "sub/hard", type=tarfile.LNKTYPE, linkname="victim.txt")
        entry(t, "victim.txt", type=tarfile.DIRTYPE, mode=0o777)
    elif kind == "replace-dir":
        entry(t, "sub", b"a file over a directory\n")
    elif kind == "big-then-small":
        entry(t, "small", b"s" * 100)
        entry(t, "big", b"b" * (3 << 20))
    else:
        raise SystemExit("craft-tar.py: unknown kind " + kind)


KINDS = ["plain", "hardlink-body", "hardlink-pre", "hardlink-own-body", "hardlink-ok",
         "hardlink-symlink", "chardev", "blockdev", "fifo", "unknown", "setid", "dotdir",
         "modes", "longname", "longlink", "sparse", "symlink-out", "symlink-file-out",
         "replace", "replace-dir",
         "big-then-small"]


def craft(kind, trim=False):
    """The archive's bytes (the small kinds); trim: without the zeros
    that pad the end-of-archive blocks to a 10 KiB record."""
    f = io.BytesIO()
    t = tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT)
    build(kind, t)
    t.close()
    data = f.getvalue()
    if trim:
        end = len(data.rstrip(b"\0"))
        data = data[:end + (-end % 512) + 1024]
    return data


def main():
    if sys.argv[1:] == ["--list"]:
        print("\n".join(KINDS + ["sparse-bomb-MB"]))
        return
    if len(sys.argv) != 3:
        raise SystemExit("usage: craft-tar.py KIND OUT (--list: kinds)")
    kind, out = sys.argv[1], sys.argv[2]
    if kind.startswith("sparse-bomb-"):
        sparse_bomb(out, int(kind[len("sparse-bomb-"):]))
        return
    with open(out, "wb") as f:
        f.write(craft(kind))


if __name__ == "__main__":
    main()
