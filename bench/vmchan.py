#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Host ends of bench/run's two no-network vm methods (vm setting only).

  vmchan.py raw SOCKET FILE
      Send FILE's bytes down QEMU's socket chardev of a virtserialport
      (sendfile), wait for the guest's one-byte answer ("k"), close.  The
      guest reads exactly as many bytes as the file has: no framing.
  vmchan.py qga SOCKET FILE GUEST-PATH [--chunk BYTES]
      Write FILE to GUEST-PATH through qemu-guest-agent's JSON protocol, the
      way Proxmox and most scripts do: guest-sync-delimited, guest-file-open
      (mode "w"), guest-file-write with base64 chunks (default 48 KiB of data,
      64 KiB of base64), guest-file-close, each answer awaited.

Exits 0 when every command was answered without error and every write
reported its full count; prints the agent's error and exits 1 otherwise.
"""
import base64
import json
import os
import random
import socket
import sys


def connect(path, timeout):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def raw(sock_path, src):
    with open(src, "rb") as f, connect(sock_path, 600) as s:
        size = os.fstat(f.fileno()).st_size
        sent = s.sendfile(f)
        if sent != size:
            sys.exit(f"vmchan: sent {sent} of {size} bytes")
        # The guest answers one byte once it has read them all: closing
        # earlier could make QEMU drop what it has not yet passed on.
        if s.recv(1) != b"k":
            sys.exit("vmchan: the guest did not confirm")


class Agent:
    def __init__(self, sock_path):
        self.s = connect(sock_path, 600)
        self.buf = b""

    def _line(self):
        while b"\n" not in self.buf:
            got = self.s.recv(65536)
            if not got:
                raise EOFError("the agent closed the channel")
            self.buf += got
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def call(self, execute, **arguments):
        self.s.sendall(json.dumps({"execute": execute, "arguments": arguments}).encode() + b"\n")
        while True:
            line = self._line().strip(b"\xff \r")
            if not line:
                continue
            reply = json.loads(line)
            if "error" in reply:
                raise RuntimeError(f"{execute}: {reply['error'].get('desc', reply['error'])}")
            if "return" in reply:
                return reply["return"]

    def sync(self):
        """guest-sync-delimited: the agent answers after a 0xff byte, so any
        answer left in the channel by an earlier client is skipped."""
        token = random.randrange(1, 2**31)
        self.s.sendall(json.dumps({"execute": "guest-sync-delimited",
                                   "arguments": {"id": token}}).encode() + b"\n")
        while True:
            while b"\xff" not in self.buf:
                got = self.s.recv(65536)
                if not got:
                    raise EOFError("the agent closed the channel")
                self.buf += got
            self.buf = self.buf.split(b"\xff", 1)[1]
            if json.loads(self._line()).get("return") == token:
                return


def qga(sock_path, src, dst, chunk):
    a = Agent(sock_path)
    a.sync()
    handle = a.call("guest-file-open", path=dst, mode="w")
    try:
        with open(src, "rb") as f:
            while True:
                data = f.read(chunk)
                if not data:
                    break
                r = a.call("guest-file-write", handle=handle, **{"buf-b64": base64.b64encode(data).decode()})
                if r.get("count") != len(data):
                    raise RuntimeError(f"guest-file-write wrote {r.get('count')} of {len(data)} bytes")
    finally:
        a.call("guest-file-close", handle=handle)


def main():
    args = sys.argv[1:]
    chunk = 48 * 1024
    if "--chunk" in args:
        i = args.index("--chunk")
        chunk = int(args[i + 1])
        del args[i:i + 2]
    try:
        if len(args) == 3 and args[0] == "raw":
            raw(args[1], args[2])
        elif len(args) == 4 and args[0] == "qga":
            qga(args[1], args[2], args[3], chunk)
        else:
            sys.exit(__doc__.split("\n\n")[1])
    except (OSError, EOFError, RuntimeError, ValueError) as e:
        sys.exit(f"vmchan: {e}")


if __name__ == "__main__":
    main()
