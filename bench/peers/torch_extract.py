#!/usr/bin/env python3
"""PyTorch peer of `bert-probe extract` (issue 14): what a user would otherwise write.

A plain eager BERT in PyTorch (the parts and numerics of Hugging Face modeling_bert.py:
embeddings + LayerNorm, L post-LN layers, exact erf GELU; attention through
torch.nn.functional.scaled_dot_product_attention, which is what HF's BertModel uses by default
when no attention probabilities are asked for), on the same weights and the same word pieces as
bert-probe. Sentences sorted by length, cut into batches, each padded to its own longest
sentence; every hidden state (0 = embeddings .. L) mean-pooled from word pieces to words
(a [words, pieces] averaging matrix per sentence); word vectors written to disk, one raw
float32 file per hidden state (layer.N.f32, [words, hidden], corpus order).

Inputs (written by bench/extract-vs-torch.ts):
  --weights  a safetensors file with bert-probe's canonical weight names
             (embeddings.word_embeddings.weight, encoder.layer.N.attention.self.query.weight, ...)
  --config   config.json (hidden_size, num_attention_heads, num_hidden_layers, layer_norm_eps)
  --input    JSON: {"ids": [[...], ...], "spans": [[[a, b], ...], ...]} (pieces incl. [CLS]/[SEP],
             word spans as piece indices [a, b) into them), from bert-probe's tokenizer, so both
             sides run the same pieces; tokenization is therefore not in this process's time
  --out      folder for layer.N.f32 and timing.json
Options: --batch-size (default 8), --threads (default: torch's), --precision fp32|bf16
(bf16: torch.autocast on CPU, the PyTorch user's reduced-precision switch).

Needs only torch (no numpy, transformers or safetensors package).
"""
import argparse
import json
import os
import resource
import struct
import sys
import time

T_START = time.perf_counter()
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32}


def read_safetensors(path):
    """The safetensors layout: u64 little-endian header length, JSON header, raw tensor bytes."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        body = bytearray(f.read())
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        t = torch.frombuffer(body, dtype=DTYPES[info["dtype"]], count=(b - a) // torch.tensor([], dtype=DTYPES[info["dtype"]]).element_size(), offset=a)
        out[name] = t.reshape(info["shape"])
    return out


class Bert:
    def __init__(self, w, cfg):
        self.w = w
        self.H = cfg["hidden_size"]
        self.heads = cfg["num_attention_heads"]
        self.L = cfg["num_hidden_layers"]
        self.eps = cfg.get("layer_norm_eps", 1e-12)

    def ln(self, x, p):
        return F.layer_norm(x, (self.H,), self.w[p + ".weight"], self.w[p + ".bias"], self.eps)

    def lin(self, x, p):
        return F.linear(x, self.w[p + ".weight"], self.w[p + ".bias"])

    def forward(self, ids, mask):
        """ids, mask: [B, T] int64 → list of L+1 hidden states [B, T, H]."""
        B, T = ids.shape
        w = self.w
        pos = torch.arange(T)
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][pos][None] + w["embeddings.token_type_embeddings.weight"][0]
        x = self.ln(x, "embeddings.LayerNorm")
        states = [x]
        d = self.H // self.heads
        # HF's additive mask: 0 for real tokens, finfo.min for padding.
        add = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(torch.float32).min
        for l in range(self.L):
            p = f"encoder.layer.{l}"
            q = self.lin(x, p + ".attention.self.query").view(B, T, self.heads, d).transpose(1, 2)
            k = self.lin(x, p + ".attention.self.key").view(B, T, self.heads, d).transpose(1, 2)
            v = self.lin(x, p + ".attention.self.value").view(B, T, self.heads, d).transpose(1, 2)
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=add.to(q.dtype))
            ctx = ctx.transpose(1, 2).reshape(B, T, self.H)
            a = self.ln(self.lin(ctx, p + ".attention.output.dense") + x, p + ".attention.output.LayerNorm")
            inner = F.gelu(self.lin(a, p + ".intermediate.dense"))
            x = self.ln(self.lin(inner, p + ".output.dense") + a, p + ".output.LayerNorm")
            states.append(x)
        return states


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    with open(args.config) as f:
        cfg = json.load(f)
    model = Bert(read_safetensors(args.weights), cfg)
    with open(args.input) as f:
        data = json.load(f)
    ids_list, spans = data["ids"], data["spans"]
    n = len(ids_list)
    word_counts = [len(s) for s in spans]
    offsets = [0] * (n + 1)
    for i, c in enumerate(word_counts):
        offsets[i + 1] = offsets[i] + c
    H, L = model.H, model.L
    outs = torch.zeros(L + 1, offsets[n], H)
    t_load = time.perf_counter() - t0

    order = sorted(range(n), key=lambda i: -len(ids_list[i]))
    t_forward = t_pool = 0.0
    tokens = 0
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if args.precision == "bf16" else torch.autocast("cpu", enabled=False)
    with torch.inference_mode(), ctx:
        for s in range(0, n, args.batch_size):
            idx = order[s : s + args.batch_size]
            T = len(ids_list[idx[0]])
            ids = torch.zeros(len(idx), T, dtype=torch.int64)
            mask = torch.zeros(len(idx), T, dtype=torch.int64)
            for b, i in enumerate(idx):
                row = ids_list[i]
                ids[b, : len(row)] = torch.tensor(row)
                mask[b, : len(row)] = 1
                tokens += len(row)
            ta = time.perf_counter()
            states = torch.stack(model.forward(ids, mask)).float()  # [L+1, B, T, H]
            tb = time.perf_counter()
            for b, i in enumerate(idx):
                W, P = word_counts[i], len(ids_list[i])
                pool = torch.zeros(W, P)
                for w_, (a, e) in enumerate(spans[i]):
                    if e > a:
                        pool[w_, a:e] = 1.0 / (e - a)
                outs[:, offsets[i] : offsets[i + 1]] = torch.matmul(pool, states[:, b, :P])
            t_pool += time.perf_counter() - tb
            t_forward += tb - ta
    tw = time.perf_counter()
    os.makedirs(args.out, exist_ok=True)
    for l in range(L + 1):
        # torch.from_file(shared=True) maps the file: copying into it writes the raw float32 bytes (no numpy needed).
        path = os.path.join(args.out, f"layer.{l}.f32")
        if os.path.exists(path):
            os.remove(path)
        mapped = torch.from_file(path, shared=True, size=outs[l].numel(), dtype=torch.float32)
        mapped.copy_(outs[l].reshape(-1))
        del mapped
    t_write = time.perf_counter() - tw
    ru = resource.getrusage(resource.RUSAGE_SELF)
    timing = {
        "peer": "torch",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "precision": args.precision,
        "batchSize": args.batch_size,
        "sentences": n,
        "words": offsets[n],
        "tokens": tokens,
        "importSeconds": t0 - T_START,
        "loadSeconds": t_load,
        "forwardSeconds": t_forward,
        "poolSeconds": t_pool,
        "writeSeconds": t_write,
        "seconds": time.perf_counter() - T_START,
        "cpuSeconds": ru.ru_utime + ru.ru_stime,
        "peakRssMiB": ru.ru_maxrss / 1024,
    }
    with open(os.path.join(args.out, "timing.json"), "w") as f:
        json.dump(timing, f)
    json.dump(timing, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
