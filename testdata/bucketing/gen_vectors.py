#!/usr/bin/env python3
"""Generate known-answer vectors for flagstream bucketing (SPEC section 2).

    input  = salt + ":" + value        (UTF-8 bytes)
    hash   = MurmurHash3_x86_32(input, seed 0)
    bucket = hash mod 100000

The hash is testdata/eval/bucket.py's: an independent, pure-Python
MurmurHash3_x86_32 written from the algorithm description (Austin Appleby's
SMHasher), sharing no code with the Go implementation it checks; the
evaluation cases' buckets come from the same one. Before writing anything this
script verifies it against published reference values; if one fails it exits
non-zero and writes nothing.

Rerun from the repository root (standard library only, Python 3.8+):

    python3 testdata/bucketing/gen_vectors.py

It rewrites testdata/bucketing/vectors.json next to this script. The output is
deterministic: rerunning without changing CASES produces an identical file.

Entry fields: "salt", "value" (strings), "hash" (uint32), "bucket" (0..99999),
and for integer values also "int": the int64 whose decimal form is "value"
(checked through BucketInt as well as Bucket).
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "eval"))
from bucket import REFERENCE, murmur3_x86_32, self_check  # noqa: E402

SCALE = 100000

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1

# (salt, value) pairs; an int value is an integer bucketBy attribute, rendered
# in decimal with no exponent and no fraction (str(int) in Python).
CASES = [
    # ordinary flag keys and user keys
    ("new-checkout", "user-123"),
    ("new-checkout", "user-124"),
    ("new-checkout", "user-125"),
    ("banner-text", "user-123"),
    ("beta-testers", "ann@corp.com"),
    ("org-rollout", "uni-7"),
    ("A.b_c-9", "Key.With_Mixed-Chars"),
    # empty strings: input is ":", "salt:", ":value"
    ("", ""),
    ("flag", ""),
    ("", "user"),
    # every input length mod 4 (tail of 0..3 bytes)
    ("s", "v"),      # "s:v"      3 bytes
    ("s", "vv"),     # "s:vv"     4 bytes
    ("s", "vvv"),    # "s:vvv"    5 bytes
    ("s", "vvvv"),   # "s:vvvv"   6 bytes
    ("ss", "vvvv"),  # "ss:vvvv"  7 bytes
    # colons inside salt or value are not escaped
    ("a:b", "c"),
    ("a", "b:c"),
    ("flag", ":"),
    # unicode: hashed as UTF-8 bytes, never UTF-16 code units
    ("ünïcødé", "user"),
    ("flag", "ünïcødé"),
    ("日本語フラグ", "ユーザー"),
    ("emoji", "🚀🔥"),
    ("flag", "e\u0301"),          # combining acute accent, not normalized
    ("flag", "\u00e9"),           # precomposed: different bytes, different hash
    ("flag", "nul\u0000byte"),
    ("flag", "tab\tnewline\n"),
    ("ππππ", "ππππ"),
    # long values; the Go implementation hashes inputs of up to 512 bytes in a
    # stack buffer and longer ones on the heap: cover 511, 512 and 513 bytes
    # ("new-checkout:" is 13 bytes) and well beyond
    ("long", "x" * 300),
    ("long", "0123456789" * 31),
    ("new-checkout", "y" * 498),
    ("new-checkout", "y" * 499),
    ("new-checkout", "y" * 500),
    ("salt-" + "s" * 400, "value-" + "v" * 400),
    ("flag", "é" * 700),
    ("z" * 1024, "z" * 4096),
    # integer values
    ("int-flag", 0),
    ("int-flag", 1),
    ("int-flag", -1),
    ("int-flag", 7),
    ("int-flag", 42),
    ("int-flag", 100000),
    ("int-flag", -273),
    ("org-rollout", 1234567890),
    ("org-rollout", 9007199254740993),   # above 2^53: not representable as a float64
    ("", 12),
    ("int-flag", INT64_MAX),
    ("int-flag", INT64_MIN),
]


def main():
    if not self_check():
        sys.exit("reference vector(s) failed; not writing vectors")
    out = []
    for salt, value in CASES:
        text = str(value) if isinstance(value, int) else value
        h = murmur3_x86_32((salt + ":" + text).encode("utf-8"), 0)
        entry = {"salt": salt, "value": text, "hash": h, "bucket": h % SCALE}
        if isinstance(value, int):
            if not INT64_MIN <= value <= INT64_MAX:
                sys.exit(f"int value {value} out of int64 range")
            entry["int"] = value
        out.append(entry)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vectors.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"reference check passed ({len(REFERENCE)} values); wrote {len(out)} vectors to {path}")


if __name__ == "__main__":
    main()
