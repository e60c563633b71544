#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""Writes the small seed corpora in tests/fuzz/corpus/ (committed).

The receiver seeds are scripts for fuzz_receiver's fake sender (the format
is the OP_ list in fuzz_receiver.c): good streams and one of each kind of
misbehaviour, so that the fuzzer starts past the handshake. Run it again
after changing the script format: python3 tests/fuzz/seeds.py
"""
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))

(WAIT_READY, OFFER, WAIT_ANSWER, CHUNK, END, ABORT, POKE, FLAP, SLEEP,
 WAIT_CONSUMED, WAIT_VERDICT, OWNER, CHUNKS) = range(13)

u8 = lambda v: struct.pack('<B', v & 0xff)
u16 = lambda v: struct.pack('<H', v & 0xffff)
u32 = lambda v: struct.pack('<I', v & 0xffffffff)
u64 = lambda v: struct.pack('<Q', v & 0xffffffffffffffff)

# Receiver flags: bit0 refuse, bit1 to_fd (a file), bit2 complete-as-failed
# (with to_fd: NSHM_VERIFY=readback),
# bits 3-7 the tail (0-27 cancel once settled, 28 at once, 29 after 20 ms,
# 30 after 60 ms, 31 silence).
def header(pages=16, flags=0):
    return u8(pages - 1) + u8(flags)

def offer(name=b'file', size=100, flags=1, nslots=2, chunk_pages=4, v=0, v2=0,
          mode=0o644, sec=1700000000, nsec=0, name_len=None, echo_xor=None,
          flap=None, session=1, raw_nslots=None, raw_chunk=None):
    if name_len is not None:
        v |= 8
    if raw_nslots is not None:
        v |= 32
    if raw_chunk is not None:
        v2 |= 1
    if echo_xor is not None:
        v2 |= 2
    if flap is not None:
        v2 |= 16
    b = u8(OFFER) + u8(v) + u8(v2)
    b += u64(session) if v & 0x40 else u8(session)
    b += u64(size) if v & 1 else u32(size)
    b += u32(flags) if v & 2 else u8(flags)
    b += u32(mode) + u64(sec) + u32(nsec)
    b += u8(len(name)) + (name.ljust(256, b'\0')[:256] if v & 16 else name)
    if v & 8:
        b += u32(name_len)
    b += u32(raw_nslots) if v & 32 else u8(nslots - 1)
    b += u32(raw_chunk) if v2 & 1 else u8(chunk_pages - 1)
    if v2 & 2:
        b += u64(echo_xor)
    if v2 & 16:
        b += u8(flap)
    return b

def chunk(length=100, seed=7, v=0, crc_xor=None, data=None, seq=None,
          produced=None, flip_at=None, flap_len=None):
    if crc_xor is not None:
        v |= 8
    if data is not None:
        v |= 4
    if seq is not None:
        v |= 16
    if produced is not None:
        v |= 32
    if flip_at is not None:
        v |= 64
    if flap_len is not None:
        v |= 128
    b = u8(CHUNK) + u8(v) + (u32(length) if v & 1 else u16(length))
    if not v & 4:
        b += u8(seed)
    if v & 8:
        b += u32(crc_xor)
    if v & 4:
        b += data
    if v & 16:
        b += u64(seq)
    if v & 32:
        b += u64(produced)
    if v & 64:
        b += u16(flip_at)
    if v & 128:
        b += u32(flap_len)
    return b

def chunks(n, seed=3, length=0):
    return u8(CHUNKS) + u8(n - 1) + u8(seed) + u16(length)

def end(total_len=None, total_crc=None, produced=None):
    v = (1 if total_len is not None else 0) | (2 if total_crc is not None else 0) \
        | (4 if produced is not None else 0)
    b = u8(END) + u8(v)
    if v & 1:
        b += u64(total_len)
    if v & 2:
        b += u32(total_crc)
    if v & 4:
        b += u8(produced)
    return b

def poke(off, val, width=4, anywhere=False):
    v = {1: 0, 2: 1, 4: 2, 8: 3}[width] << 1 | (1 if anywhere else 0)
    return u8(POKE) + u8(v) + (u32(off) if anywhere else u16(off)) + u64(val)

def flap(which, a, b, n=8):
    return u8(FLAP) + u8(which) + u32(a) + u32(b) + u8(n)

def owner(sel, arg=b''):
    return u8(OWNER) + u8(sel) + arg

W_ANS, W_VER, W_CONS = u8(WAIT_ANSWER), u8(WAIT_VERDICT), u8(WAIT_CONSUMED)

def good(n=1):
    return offer(size=n * 16384, chunk_pages=4) + W_ANS + chunks(n) + end() + W_VER

receiver = {
    'good-one-chunk': header() + offer() + W_ANS + chunk() + end() + W_VER,
    'good-five-chunks': header() + good(5),
    'good-empty': header() + offer(size=0) + W_ANS + end() + W_VER,
    'good-size-unknown': header() + offer(flags=0, size=0) + W_ANS + chunk(5000)
        + chunk(3) + end() + W_VER,
    'good-one-slot-full-region': header(pages=4) + offer(nslots=1, chunk_pages=4,
        size=3 * 16384) + W_ANS + chunks(3) + end() + W_VER,
    'good-to-fd': header(flags=2) + good(3),
    'good-then-fail': header(flags=4) + good(2),
    'good-readback': header(flags=6) + good(3),
    'readback-data-changed': header(flags=6) + offer(size=1000) + W_ANS
        + chunk(1000, flip_at=10) + end() + W_VER,
    'good-data-from-input': header() + offer(size=16) + W_ANS
        + chunk(16, data=b'0123456789abcdef') + end() + W_VER,
    'refuse': header(flags=1) + offer() + W_ANS,
    'bad-crc': header() + offer() + W_ANS + chunk(crc_xor=1) + end() + W_VER,
    'bad-seq': header() + offer() + W_ANS + chunk(seq=5),
    'bad-len': header() + offer(size=1 << 20) + W_ANS + chunk(65535),
    'produced-past-slots': header() + offer(size=1 << 20) + W_ANS + chunk(produced=9),
    'more-than-offered': header() + offer(size=50) + W_ANS + chunk(100),
    'less-than-offered': header() + offer(size=500) + W_ANS + chunk(100) + end() + W_VER,
    'wrong-total-len': header() + offer() + W_ANS + chunk() + end(total_len=99) + W_VER,
    'wrong-total-crc': header() + offer() + W_ANS + chunk() + end(total_crc=1) + W_VER,
    'data-changed-after-publish': header() + offer(size=1000) + W_ANS
        + chunk(1000, flip_at=10) + end() + W_VER,
    'len-flaps': header() + offer(size=1000) + W_ANS + chunk(1000, flap_len=70000)
        + end() + W_VER,
    'abort': header() + offer(size=1 << 20) + W_ANS + chunk(1000)
        + u8(ABORT) + u32(7),
    'abort-bad-reason': header() + offer(size=1 << 20) + W_ANS + u8(ABORT) + u32(999),
    'unsafe-name-dotdot': header() + offer(name=b'../evil'),
    'unsafe-name-ctrl': header() + offer(name=b'a\nb'),
    'name-len-lies': header() + offer(name=b'abc', name_len=200),
    'name-no-terminator': header() + offer(name=b'x' * 256, v=16),
    'layout-too-big': header(pages=4) + offer(nslots=4, chunk_pages=8),
    'layout-raw-chunk': header() + offer(raw_chunk=5000),
    'layout-raw-nslots': header() + offer(raw_nslots=65),
    'wrong-ready-echo': header(flags=0xf8) + offer(echo_xor=1),
    'offer-flaps': header() + offer(flap=50) + W_ANS + chunk() + end() + W_VER,
    'sender-released-mid-stream': header() + offer(size=1 << 20) + W_ANS + chunk()
        + W_CONS + owner(0),
    'sender-taken-over': header() + offer(size=1 << 20) + W_ANS + owner(1, u64(77)),
    'sender-pid-dead': header() + offer(size=1 << 20) + W_ANS + chunk() + owner(2, u32(0x7ffffff0)),
    'sender-silent': header(flags=0xf8) + offer(size=1 << 20) + W_ANS + owner(4),
    'sender-magic-changes': header() + offer(size=1 << 20) + W_ANS + owner(5, u32(1)),
    'state-flaps': header() + offer(size=1 << 20) + W_ANS + chunk() + flap(0, 2, 3, 40),
    'produced-flaps': header() + offer(size=1 << 20) + W_ANS + chunk() + flap(1, 0, 1000, 40),
    'poke-rx-owner': header() + offer(size=1 << 20) + W_ANS + poke(256 + 8, 5, 8),
    'poke-tx-version': header() + poke(4, 2),
    'no-sender-live': header(flags=0xf0) + u8(WAIT_READY),
}

validate = {
    'zeros': b'\0' * 64,
    'valid-all': (u8(3) + b'' + u8(1) + b'\0' * 8 * 5 + b'\0' * 4
                  + u8(7) + u8(4) + u16(4) + u32(64)
                  + u8(1 | 2 | 4) + u64(1) + u64(10) + u8(1) + u32(0o644) + u64(0)
                  + u32(5) + u8(4) + b'name'
                  + u32(7) + u8(0) + b'file.txt'),
}

# fuzz_sender: [pages] [flags] [slots-1] [chunk/4096, 0 = default] [len:2]
# [seed], then the fake receiver's ops.
(S_READY, S_WAIT_OFFER, S_ANSWER, S_CONSUME, S_CONSUME_ALL, S_VERDICT, S_POKE,
 S_FLAP, S_SLEEP, S_OWNER, S_WAIT_END) = range(11)

def sheader(pages=16, flags=0, slots=2, chunk=1, length=10000, seed=5):
    return u8(pages - 1) + u8(flags) + u8(slots - 1) + u8(chunk) + u16(length) + u8(seed)

def ready(v=0, nonce=None, state=None):
    if nonce is not None:
        v |= 1
    if state is not None:
        v |= 4
    return u8(S_READY) + u8(v) + (u64(nonce) if v & 1 else b'') + (u32(state) if v & 4 else b'')

def answer(sel=0, reason=None, session=None):
    v = sel << 1 | (8 if reason is not None else 0) | (1 if session is not None else 0)
    return u8(S_ANSWER) + u8(v) + (u32(0) if sel == 3 else b'') \
        + (u32(reason) if reason is not None else b'') + (u64(session) if session is not None else b'')

def verdict(sel=0, wait_end=True, reason=None, session=None, ready_=None, leave=False):
    v = (1 if wait_end else 0) | sel << 1 | (8 if reason is not None else 0) \
        | (0x10 if session is not None else 0) | (0x20 if ready_ is not None else 0) \
        | (0x40 if leave else 0)
    b = u8(S_VERDICT) + u8(v)
    if sel == 3:
        b += u32(9)
    if reason is not None:
        b += u32(reason)
    if session is not None:
        b += u64(session)
    if ready_ is not None:
        b += u64(ready_)
    return b

def consume(ahead=None):
    if ahead is None:
        return u8(S_CONSUME) + u8(0)
    return u8(S_CONSUME) + u8(2) + u8(ahead)

HANDSHAKE = ready() + u8(S_WAIT_OFFER) + answer()
ALL = u8(S_CONSUME_ALL)

sender = {
    'good': sheader() + HANDSHAKE + ALL + verdict(),
    'good-from-fd': sheader(flags=1) + HANDSHAKE + ALL + verdict(),
    'good-pieces': sheader(flags=2, length=30000) + HANDSHAKE + ALL + verdict(),
    'good-empty': sheader(length=0) + HANDSHAKE + ALL + verdict(),
    'good-default-chunk': sheader(chunk=0, length=65535) + HANDSHAKE + ALL + verdict(),
    'good-four-slots': sheader(slots=4, length=65535) + HANDSHAKE + ALL + verdict(),
    'done-and-leave': sheader() + HANDSHAKE + ALL + verdict(leave=True),
    'refuse': sheader() + ready() + u8(S_WAIT_OFFER) + answer(1, reason=1),
    'refuse-bad-reason': sheader() + ready() + u8(S_WAIT_OFFER) + answer(1, reason=999),
    'abort-answer': sheader() + ready() + u8(S_WAIT_OFFER) + answer(2),
    'wrong-session-answer': sheader() + ready() + u8(S_WAIT_OFFER) + answer(0, session=5),
    'fail-verdict': sheader() + HANDSHAKE + ALL + verdict(1, reason=5),
    'abort-mid-stream': sheader(length=60000) + HANDSHAKE + consume() + verdict(2, wait_end=False),
    'consumed-ahead': sheader(length=60000) + HANDSHAKE + consume(ahead=9),
    'never-consumes': sheader(length=60000, flags=0xf8) + HANDSHAKE,
    'done-wrong-session': sheader() + HANDSHAKE + ALL + verdict(session=3),
    'done-wrong-ready': sheader() + HANDSHAKE + ALL + verdict(ready_=3),
    'ready-again': sheader() + HANDSHAKE + consume() + ready(),
    'layout-too-big': sheader(pages=2, slots=4, chunk=4),
    'receiver-silent': sheader(flags=0xf8) + HANDSHAKE + u8(S_OWNER) + u8(4),
    'receiver-released': sheader() + HANDSHAKE + consume() + u8(S_OWNER) + u8(0),
    'state-flaps': sheader() + HANDSHAKE + u8(S_FLAP) + u8(0) + u32(4) + u32(2) + u8(20),
    'poke-tx-owner': sheader() + HANDSHAKE + poke(8, 77, 8),
    'poke-slot-data': sheader(length=60000) + HANDSHAKE + poke(4096 + 100, 0xff, 1, anywhere=True) + ALL + verdict(),
}

def write(dirname, seeds):
    d = os.path.join(HERE, 'corpus', dirname)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    for name, data in seeds.items():
        with open(os.path.join(d, name), 'wb') as f:
            f.write(data)

# fuzz_tree: [flags: 1 --force, 2 owners, 4 small chunks] then a pax
# stream: the crafted archives of tests/tree.bats (tests/tools/craft-tar.py).
def tree_seeds():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'craft_tar', os.path.join(HERE, '..', 'tools', 'craft-tar.py'))
    craft = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(craft)
    seeds = {}
    for kind in craft.KINDS:
        data = craft.craft(kind, trim=True)
        if len(data) >= 16384:   # run.sh's max_len for fuzz_tree
            continue
        seeds[kind] = u8(0) + data
        seeds[kind + '-force'] = u8(1) + data
        seeds[kind + '-force-owner-small'] = u8(7) + data
    return seeds

tree = tree_seeds()

write('fuzz_receiver', receiver)
write('fuzz_validate', validate)
write('fuzz_sender', sender)
write('fuzz_tree', tree)
print('%d receiver, %d sender, %d validate, %d tree seeds'
      % (len(receiver), len(sender), len(validate), len(tree)))
