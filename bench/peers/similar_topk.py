"""Peer for `npm run bench -- similar`: median latency (ms) of a brute-force top-10 cosine query
over the same unit-normalised index with numpy (index @ q, argpartition, sort of the 10)."""
import json
import struct
import sys
import time

import numpy as np


def load_f32(path, name):
    # safetensors: u64 header length, JSON header, raw little-endian tensor bytes
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        info = json.loads(f.read(n))[name]
        f.seek(8 + n + info["data_offsets"][0])
        data = np.frombuffer(f.read(info["data_offsets"][1] - info["data_offsets"][0]), dtype="<f4")
    return data.reshape(info["shape"])


index = load_f32(sys.argv[1], "index")
queries = load_f32(sys.argv[2], "queries")
times = []
for q in queries:
    t = time.perf_counter()
    s = index @ q
    top = np.argpartition(-s, 10)[:10]
    top = top[np.argsort(-s[top])]
    times.append((time.perf_counter() - t) * 1000)
print(f"{sorted(times)[len(times) // 2]:.4f}")
