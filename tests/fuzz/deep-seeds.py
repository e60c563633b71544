#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Writes fuzz_tree inputs of deep trees into DIR (not committed seeds):
what a long run's corpus drifts to, to measure the late-run rate in a
short one:

    python3 tests/fuzz/deep-seeds.py build/fuzz/corpus/fuzz_tree
    FUZZ_NO_BUILD=1 FUZZ_JOBS=2 tests/fuzz/run.sh 60 fuzz_tree

One file 100, 400, 1000 and 2000 directories deep by implicit parents
(with and without --force), a chain of 20 directory entries ending in a
file, a symlink and a hard link, and 5 files in 5 branches 300 deep.
Each input is [flags] then the archive, under run.sh's 16384 bytes.
"""
import io
import os
import sys
import tarfile


def archive(entries, flags=0):
    b = io.BytesIO()
    t = tarfile.open(fileobj=b, mode="w", format=tarfile.PAX_FORMAT)
    for name, data, kind, link in entries:
        ti = tarfile.TarInfo(name)
        ti.type, ti.linkname = kind, link
        ti.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data) if data else None)
    t.close()
    # Two zero blocks end it; tarfile pads to 10 KiB, which the fuzzer
    # would only have to cut.
    v = b.getvalue().rstrip(b"\0")
    v += b"\0" * (-len(v) % 512) + b"\0" * 1024
    return bytes([flags]) + v


def plain(name, data):
    return (name, data, tarfile.REGTYPE, "")


def chain(depth):
    entries, path = [], ""
    for i in range(depth):
        path = (path + "/" if path else "") + "d%d" % i
        entries.append((path, b"", tarfile.DIRTYPE, ""))
    return entries + [plain(path + "/f", b"y\n"),
                      (path + "/l", b"", tarfile.SYMTYPE, "f"),
                      (path + "/h", b"", tarfile.LNKTYPE, path + "/f")]


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    inputs = []
    for depth in (100, 400, 1000, 2000):
        path = "/".join(["d"] * depth) + "/f"
        inputs += [archive([plain(path, b"x\n")]), archive([plain(path, b"x\n")], flags=1)]
    inputs.append(archive(chain(20)))
    branch = "/".join(["a"] * 300)
    inputs.append(archive([plain("%s/x%d/f" % (branch, i), b"z\n") for i in range(5)]))
    for i, data in enumerate(inputs):
        assert len(data) <= 16384
        with open(os.path.join(out, "deep%02d" % i), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
