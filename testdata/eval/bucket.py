#!/usr/bin/env python3
"""Independent bucketing calculator for the SPEC section 2 arithmetic.

    input  = salt + ":" + value   (UTF-8 bytes)
    h      = MurmurHash3_x86_32(input, seed 0)
    bucket = h mod 100000

Pure Python, no dependencies, written from the published MurmurHash3 algorithm
(not from the Go implementation). Run with no arguments to self-check against
published reference hashes; run with SALT VALUE... to print buckets:

    python3 bucket.py roll-basic user-1 user-2
"""
import sys

MASK = 0xFFFFFFFF


def _rotl32(x, r):
    return ((x << r) | (x >> (32 - r))) & MASK


def _fmix32(h):
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & MASK
    h ^= h >> 16
    return h


def murmur3_x86_32(data, seed=0):
    """MurmurHash3_x86_32 of bytes (str is encoded as UTF-8)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    c1, c2 = 0xCC9E2D51, 0x1B873593
    h = seed & MASK
    n = len(data)
    nblocks = n // 4
    for i in range(nblocks):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * c1) & MASK
        k = _rotl32(k, 15)
        k = (k * c2) & MASK
        h ^= k
        h = _rotl32(h, 13)
        h = (h * 5 + 0xE6546B64) & MASK
    tail = data[4 * nblocks:]
    k = 0
    if len(tail) >= 3:
        k ^= tail[2] << 16
    if len(tail) >= 2:
        k ^= tail[1] << 8
    if len(tail) >= 1:
        k ^= tail[0]
        k = (k * c1) & MASK
        k = _rotl32(k, 15)
        k = (k * c2) & MASK
        h ^= k
    h ^= n
    return _fmix32(h)


def bucket(salt, value):
    """SPEC section 2 bucket (0..99999) for a salt and an already-stringified value."""
    return murmur3_x86_32(salt + ":" + value, 0) % 100000


# Published MurmurHash3_x86_32 reference values (Ian Boyd's vectors,
# stackoverflow.com/a/31929528, repeated in the test suites of many independent
# ports, plus the widely used string vectors). testdata/bucketing/gen_vectors.py
# checks them too before it writes vectors.
REFERENCE = [
    (b"", 0, 0x00000000),
    (b"", 1, 0x514E28B7),
    (b"", 0xFFFFFFFF, 0x81F16F39),
    (b"\xff\xff\xff\xff", 0, 0x76293B50),
    (b"\x21\x43\x65\x87", 0, 0xF55B516B),
    (b"\x21\x43\x65\x87", 0x5082EDEE, 0x2362F9DE),
    (b"\x21\x43\x65", 0, 0x7E4A8634),
    (b"\x21\x43", 0, 0xA0F7B07A),
    (b"\x21", 0, 0x72661CF4),
    (b"\x00\x00\x00\x00", 0, 0x2362F9DE),
    (b"\x00\x00\x00", 0, 0x85F0B427),
    (b"\x00\x00", 0, 0x30F4C306),
    (b"\x00", 0, 0x514E28B7),
    (b"a", 0x9747B28C, 0x7FA09EA6),
    (b"aaaa", 0x9747B28C, 0x5A97808A),
    (b"hello", 0, 0x248BFA47),
    (b"test", 0, 0xBA6BD213),
    (b"abc", 0, 0xB3DD93FA),
    (b"Hello, world!", 0, 0xC0363E43),
    (b"Hello, world!", 0x9747B28C, 0x24884CBA),
    ("ππππππππ".encode("utf-8"), 0x9747B28C, 0xD58063C1),
    (b"The quick brown fox jumps over the lazy dog", 0, 0x2E4FF723),
    (b"The quick brown fox jumps over the lazy dog", 0x9747B28C, 0x2FA826CD),
    (b"a" * 256, 0x9747B28C, 0x37405BDC),
]


def self_check():
    ok = True
    for data, seed, want in REFERENCE:
        got = murmur3_x86_32(data, seed)
        if got != want:
            ok = False
            print("MISMATCH %r seed %#x: got %#010x want %#010x" % (data, seed, got, want))
    print("reference hashes: %s" % ("all %d match" % len(REFERENCE) if ok else "FAILED"))
    return ok


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(0 if self_check() else 1)
    salt = sys.argv[1]
    for v in sys.argv[2:]:
        print("%s:%s -> %d" % (salt, v, bucket(salt, v)))
