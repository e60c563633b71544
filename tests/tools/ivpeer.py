#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""ivpeer.py SOCKET MODE: a client of an ivshmem server, written apart from
libnshm's, for tests/server.bats.

  welcome   read the welcome as QEMU does (version 0, own ID, the memory fd,
            then every peer's and our own eventfds); print "id N shm SIZE
            peers P vectors V" once our own vectors stop coming
  watch     welcome, then print "join ID" / "left ID" for each later message
            until the server closes the socket or TIME seconds pass
  garbage   connect and send bytes (the protocol is one-way); wait for the
            server to close the connection; print "dropped"
  vanish    connect and close at once, reading nothing
  hold N V  open N connections (V vectors each), print how many got a welcome ("held K"),
            keep them (reading what the server sends) until stdin closes
  mute N    open N connections and never read; print "connected N"; keep them until
            stdin closes, then print how many the server had closed ("closed K")
  jam       the hostile peer of issue 20 finding 4: welcome, then until stdin closes fill
            every other peer's eventfd counter to the top (0xfffffffffffffffe) and clear
            O_NONBLOCK on it, again and again, for new peers too; at the end print
            "tries N" (how many times it filled a counter and cleared the flag)
"""
import fcntl
import array
import os
import select
import socket
import struct
import sys


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def recv_msg(s, timeout):
    """One 8-byte message and its fd (or -1); None at end of stream."""
    buf, fds = b"", []
    while len(buf) < 8:
        r, _, _ = select.select([s], [], [], timeout)
        if not r:
            raise TimeoutError("no message")
        data, anc, _, _ = s.recvmsg(8 - len(buf), socket.CMSG_SPACE(4 * 4))
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                a = array.array("i")
                a.frombytes(payload[: len(payload) - len(payload) % 4])
                fds.extend(a)
        if not data:
            return None
        buf += data
    if len(fds) > 1:
        raise ValueError("more than one fd with a message")
    return struct.unpack("<q", buf)[0], (fds[0] if fds else -1)


def is_eventfd(fd):
    return os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[eventfd]"


def welcome(s, want=None):
    version, fd = recv_msg(s, 5)
    assert version == 0 and fd == -1, f"version message {version} {fd}"
    me, fd = recv_msg(s, 5)
    assert 0 <= me <= 65535 and fd == -1, f"ID message {me} {fd}"
    shm_size, peers, own = None, {}, 0
    while True:
        try:
            m = recv_msg(s, 0.5 if own else 5)
        except TimeoutError:
            if own:
                break
            raise
        assert m is not None, "server closed during the welcome"
        msg, fd = m
        if msg == -1:
            assert fd >= 0 and shm_size is None, "memory message"
            shm_size = os.fstat(fd).st_size
            os.close(fd)
            continue
        assert 0 <= msg <= 65535 and fd >= 0, f"peer message {msg} {fd}"
        assert is_eventfd(fd), "not an eventfd"
        os.close(fd)
        if msg == me:
            own += 1
            if own == want:
                break
        else:
            assert shm_size is not None, "a peer before the memory"
            peers[msg] = peers.get(msg, 0) + 1
    return me, shm_size, peers, own


FULL = struct.pack("<Q", 0xFFFFFFFFFFFFFFFE)


def jam(s):
    """Keeps every other peer's eventfd counter at the top, in blocking mode."""
    version, _ = recv_msg(s, 5)
    me, _ = recv_msg(s, 5)
    print(f"id {me}", flush=True)
    fds, tries = [], 0
    while not select.select([sys.stdin], [], [], 0)[0]:
        while select.select([s], [], [], 0)[0]:
            m = recv_msg(s, 1)
            if m is None:
                break
            msg, fd = m
            if fd >= 0 and msg >= 0 and msg != me:
                fds.append(fd)
            elif fd >= 0:
                os.close(fd)
        for fd in fds:
            fl = fcntl.fcntl(fd, fcntl.F_GETFL)
            fcntl.fcntl(fd, fcntl.F_SETFL, fl | os.O_NONBLOCK)
            p = select.poll()
            p.register(fd, select.POLLOUT)
            if p.poll(0):               # not full: empty it, then fill it
                try:
                    os.read(fd, 8)
                except BlockingIOError:
                    pass
                try:
                    os.write(fd, FULL)
                except BlockingIOError:
                    pass
            fcntl.fcntl(fd, fcntl.F_SETFL, fl & ~os.O_NONBLOCK)
            tries += 1
    print(f"tries {tries}", flush=True)


def main():
    path, mode = sys.argv[1], sys.argv[2]
    if mode == "welcome":
        me, size, peers, own = welcome(connect(path))
        print(f"id {me} shm {size} peers {len(peers)} vectors {own}")
    elif mode == "watch":
        s = connect(path)
        me, size, peers, own = welcome(s)
        print(f"id {me} peers {' '.join(map(str, sorted(peers))) or '-'}", flush=True)
        limit = float(sys.argv[3]) if len(sys.argv) > 3 else 30
        seen = set(peers)
        while True:
            try:
                m = recv_msg(s, limit)
            except TimeoutError:
                break
            if m is None:
                print("closed", flush=True)
                break
            msg, fd = m
            if fd >= 0:
                os.close(fd)
                if msg not in seen:
                    seen.add(msg)
                    print(f"join {msg}", flush=True)
            else:
                seen.discard(msg)
                print(f"left {msg}", flush=True)
    elif mode == "garbage":
        s = connect(path)
        s.sendall(b"\x00garbage from a client\xff" * 10)
        s.settimeout(10)
        try:
            while s.recv(4096):
                pass
        except ConnectionResetError:
            pass  # closed with our bytes unread: reset
        print("dropped")
    elif mode == "vanish":
        connect(path).close()
    elif mode == "hold":
        socks, held = [], 0
        for _ in range(int(sys.argv[3])):
            s = connect(path)
            socks.append(s)
            try:
                welcome(s, int(sys.argv[4]))
                held += 1
            except (AssertionError, TimeoutError, TypeError):
                pass
        print(f"held {held}", flush=True)
        # A client that reads: the server drops one that leaves its messages unread.
        while True:
            r, _, _ = select.select(socks + [sys.stdin], [], [])
            if sys.stdin in r:
                if not os.read(sys.stdin.fileno(), 1):
                    break
            for s in r:
                if s is not sys.stdin:
                    m = recv_msg(s, 1)
                    if m is None:
                        socks.remove(s)
                    elif m[1] >= 0:
                        os.close(m[1])
    elif mode == "mute":
        socks = [connect(path) for _ in range(int(sys.argv[3]))]
        print(f"connected {len(socks)}", flush=True)
        sys.stdin.read()
        closed = 0
        for s in socks:
            s.setblocking(False)
            try:
                while True:
                    data = s.recv(4096)
                    if not data:
                        closed += 1
                        break
            except (BlockingIOError, ConnectionResetError):
                pass
        print(f"closed {closed}", flush=True)
    elif mode == "jam":
        jam(connect(path))
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
