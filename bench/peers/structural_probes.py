"""PyTorch peer of `npm run bench -- parity` (bench/parity.ts): Hewitt & Manning's probes trained
as the authors' code trains them, on the word vectors of our activation store, scored with the
independent reporter reimplementation (test/fixtures/structural/reference.py).

From github.com/john-hewitt/structural-probes (structural-probes/):
  - probe.py TwoWordPSDProbe: proj [dim, rank] ~ uniform(-0.05, 0.05); transformed = batch·proj;
    squared distances from the explicit differences (transformed_i - transformed_j)² summed (here:
    in Gram form while training, explicitly for the test predictions; see predict()).
    OneWordPSDProbe: squared norms of transformed.
  - loss.py L1DistanceLoss / L1DepthLoss: labels -1 on padding masked out, |pred - label| summed per
    sentence, divided by length² (length), summed and divided by the number of sentences.
  - regimen.py ProbeRegimen: Adam(lr=0.001); ReduceLROnPlateau(mode='min', factor=0.1,
    patience=0) stepped on the dev loss; dev loss = Σ batch_loss·batch_count / Σ count; the probe
    kept when the dev loss beats the best by more than 0.0001; stop when the best is 5 epochs old
    (min_dev_loss_epoch < epoch - 4); at most max_epochs (40).
  - data.py: batches of 20 sentences, train shuffled every epoch (DataLoader shuffle=True), dev and
    test in order; custom_pad pads vectors with 0 and labels with -1.

Usage: python3 structural_probes.py SPEC.json  (SPEC as bench/parity.ts writes it)
Prints one JSON line: {"torch", "results": [{"layer", "kind", "epochs", "best_dev_loss", metrics...}]}.
"""
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "fixtures", "structural"))
import reference  # noqa: E402  (the independent reporter: MST/UUAS, DSpr, root accuracy, NSpr)


def read_safetensors(path, name):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        info = header[name]
        assert info["dtype"] == "F32", f"{path}: {name} is {info['dtype']}, this peer reads F32 stores"
        start, end = info["data_offsets"]
        f.seek(8 + n + start)
        return np.frombuffer(f.read(end - start), dtype="<f4").reshape(info["shape"])


def read_layer(store, layer):
    """Word vectors of every sentence of a store (docs/store-format.md), as a list of [n, dim]."""
    index = json.load(open(os.path.join(store, "index.json")))
    out = []
    for k, shard in enumerate(index["shards"]):
        v = read_safetensors(os.path.join(store, f"layer.{layer}", shard["file"]), "vectors")
        at = 0
        for s in range(shard["firstSentence"], shard["firstSentence"] + shard["sentences"]):
            n = index["wordCounts"][s]
            out.append(torch.from_numpy(v[at:at + n].copy()))
            at += n
    return out


def batches(items, size):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def pad(items, kind, dim):
    lengths = torch.tensor([x.shape[0] for x, _ in items])
    m = int(lengths.max())
    x = torch.zeros(len(items), m, dim)
    y = torch.full((len(items), m, m) if kind == "distance" else (len(items), m), -1.0)
    for k, (v, lab) in enumerate(items):
        n = v.shape[0]
        x[k, :n] = v
        if kind == "distance":
            y[k, :n, :n] = lab
        else:
            y[k, :n] = lab
    return x, y, lengths


def predict(proj, x, kind, explicit=False):
    t = torch.matmul(x, proj)
    if kind == "distance":
        if explicit:
            # probe.py's own form: (t_i - t_j)² summed; [b, len, len, rank], so used per sentence.
            diffs = t.unsqueeze(2) - t.unsqueeze(1)
            return (diffs ** 2).sum(-1)
        # The same squared distances in Gram form (‖t_i‖² + ‖t_j‖² - 2 t_i·t_j) for training: the
        # explicit form holds [20, len, len, rank] floats a batch (3.8 GB for the sample's
        # 249-word sentence) and runs ~15x slower.
        s = (t * t).sum(-1)
        return s.unsqueeze(2) + s.unsqueeze(1) - 2 * torch.matmul(t, t.transpose(1, 2))
    return (t * t).sum(-1)


def l1(pred, y, lengths, kind):
    ones = (y != -1).float()
    dims = (1, 2) if kind == "distance" else (1,)
    norm = lengths.pow(2).float() if kind == "distance" else lengths.float()
    per_sent = torch.sum(torch.abs(pred * ones - y * ones), dim=dims) / norm
    return torch.sum(per_sent) / torch.sum(lengths != 0).float()


def labels(sentences, kind):
    if kind == "distance":
        return [torch.tensor(reference.gold_distances(s["heads"]), dtype=torch.float32) for s in sentences]
    return [torch.tensor(reference.gold_depths(s["heads"]), dtype=torch.float32) for s in sentences]


def train_probe(kind, data, dim, rank, seed, max_epochs, batch_size):
    g = torch.Generator().manual_seed(seed)
    proj = torch.nn.Parameter(torch.empty(dim, rank).uniform_(-0.05, 0.05, generator=g))
    opt = torch.optim.Adam([proj], lr=0.001)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.1, patience=0)
    train = list(zip(data["train"]["x"], labels(data["train"]["sentences"], kind)))
    dev = [pad(b, kind, dim) for b in batches(list(zip(data["dev"]["x"], labels(data["dev"]["sentences"], kind))), batch_size)]
    best, best_epoch, best_proj, epochs = float("inf"), -1, proj.detach().clone(), 0
    for epoch in range(max_epochs):
        epochs = epoch + 1
        order = torch.randperm(len(train), generator=g).tolist()
        for b in batches([train[i] for i in order], batch_size):
            x, y, lengths = pad(b, kind, dim)
            opt.zero_grad()
            loss = l1(predict(proj, x, kind), y, lengths, kind)
            loss.backward()
            opt.step()
        with torch.no_grad():
            total = count = 0.0
            for x, y, lengths in dev:
                total += float(l1(predict(proj, x, kind), y, lengths, kind)) * len(lengths)
                count += len(lengths)
            dev_loss = total / count
        sched.step(dev_loss)
        if dev_loss < best - 0.0001:
            best, best_epoch, best_proj = dev_loss, epoch, proj.detach().clone()
        elif best_epoch < epoch - 4:
            break
    return best_proj, best, epochs


def main(spec_path):
    spec = json.load(open(spec_path))
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(spec["seed"])
    results = []
    for layer in spec["layers"]:
        data = {k: {"sentences": spec["splits"][k]["sentences"], "x": read_layer(spec["splits"][k]["store"], layer)} for k in ("train", "dev", "test")}
        dim = data["train"]["x"][0].shape[1]
        for kind in spec["kinds"]:
            proj, best, epochs = train_probe(kind, data, dim, spec["rank"] or dim, spec["seed"], spec["max_epochs"], spec["batch_size"])
            test = data["test"]["sentences"]
            with torch.no_grad():
                preds = [predict(proj, x.unsqueeze(0), kind, explicit=True)[0].double().numpy() for x in data["test"]["x"]]
            sents = [{"heads": s["heads"], "xpos": s.get("xpos"), "upos": s.get("upos"),
                      "predicted_distances": p if kind == "distance" else None,
                      "predicted_depths": p if kind == "depth" else None} for s, p in zip(test, preds)]
            scored = reference.score(sents)
            row = {"layer": f"layer.{layer}", "kind": kind, "epochs": epochs, "best_dev_loss": best}
            if kind == "distance":
                row.update(uuas=scored["uuas"], dspr=scored["dspr"]["value"])
            else:
                row.update(root_acc=scored["root_acc"], nspr=scored["nspr"]["value"])
            results.append(row)
            print(json.dumps({"progress": row}), file=sys.stderr, flush=True)
    print(json.dumps({"torch": torch.__version__, "results": results}))


if __name__ == "__main__":
    main(sys.argv[1])
