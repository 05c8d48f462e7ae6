"""PyTorch peer of `npm run bench -- trainer` (bench/trainer.ts): the same two trainings, timed.

(a) distance: Hewitt & Manning's distance probe as structural-probes trains it (probe.py
    TwoWordPSDProbe: X·proj on the padded batch; loss.py L1DistanceLoss; regimen.py: Adam
    lr 0.001, dev loss each epoch), with the squared distances in Gram form
    ‖Bhᵢ‖² + ‖Bhⱼ‖² − 2 (Bhᵢ)·(Bhⱼ) instead of their explicit differences. Batches of 20
    sentences, shuffled each epoch; the sentence lengths and tree distances come from the spec
    file bench/trainer.ts writes, the word vectors are seeded standard normals of that shape.
(b) mlp: Tenney et al.'s classifier (jiant simple_modules.py Classifier 'mlp'):
    Linear(768,256) → Tanh → LayerNorm → Dropout(0.3) → Linear(256,17), sigmoid BCE on one-hot
    targets (jiant edge_probing.py), Adam lr 1e-4, gradient norm clipped to 5, batches of 32,
    examples seeded standard normals.

Prints one JSON line: {"task", "threads", "torch", "epoch_seconds": [...], "epoch_cpu_seconds": [...]}.
Usage: python3 trainer.py SPEC.json   (SPEC: {"task", "threads", "epochs", ...} as bench/trainer.ts writes)
"""
import json
import sys
import time

import torch


def distance(spec):
    hidden, rank, bs = spec["hidden"], spec["rank"], spec["batch_size"]
    g = torch.Generator().manual_seed(spec["seed"])

    def sentences(part):
        out = []
        for n, dist in zip(part["lengths"], part["distances"]):
            out.append((torch.randn(n, hidden, generator=g), torch.tensor(dist, dtype=torch.float32).view(n, n)))
        return out

    train, dev = sentences(spec["train"]), sentences(spec["dev"])

    def batch(items):
        # structural-probes' data.py custom_pad: vectors padded with 0, labels with -1.
        lengths = torch.tensor([x.shape[0] for x, _ in items])
        maxlen = int(lengths.max())
        x = torch.zeros(len(items), maxlen, hidden)
        y = torch.full((len(items), maxlen, maxlen), -1.0)
        for k, (v, d) in enumerate(items):
            n = v.shape[0]
            x[k, :n] = v
            y[k, :n, :n] = d
        return x, y, lengths

    proj = torch.nn.Parameter(torch.empty(hidden, rank).uniform_(-0.05, 0.05, generator=g))
    opt = torch.optim.Adam([proj], lr=0.001)

    def loss_of(x, y, lengths):
        t = torch.matmul(x, proj)  # probe.py: the padded batch times proj
        s = (t * t).sum(-1)
        pred = s.unsqueeze(2) + s.unsqueeze(1) - 2 * torch.matmul(t, t.transpose(1, 2))
        # loss.py L1DistanceLoss
        ones = (y != -1).float()
        per_sent = torch.sum(torch.abs(pred * ones - y * ones), dim=(1, 2)) / lengths.pow(2).float()
        return torch.sum(per_sent) / torch.sum(lengths != 0).float()

    dev_batches = [batch(dev[i:i + bs]) for i in range(0, len(dev), bs)]
    times, cpu = [], []
    for _ in range(spec["epochs"]):
        t0, c0 = time.perf_counter(), time.process_time()
        order = torch.randperm(len(train), generator=g).tolist()
        for i in range(0, len(order), bs):
            x, y, lengths = batch([train[j] for j in order[i:i + bs]])
            opt.zero_grad()
            loss = loss_of(x, y, lengths)
            loss.backward()
            opt.step()
        with torch.no_grad():
            for x, y, lengths in dev_batches:
                loss_of(x, y, lengths).item()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return times, cpu


def mlp(spec):
    n, d_in, hid, classes, bs = spec["examples"], spec["hidden"], spec["mlp_hidden"], spec["classes"], spec["batch_size"]
    g = torch.Generator().manual_seed(spec["seed"])
    x = torch.randn(n, d_in, generator=g)
    labels = torch.randint(0, classes, (n,), generator=g)
    targets = torch.nn.functional.one_hot(labels, classes).float()
    torch.manual_seed(spec["seed"])
    model = torch.nn.Sequential(
        torch.nn.Linear(d_in, hid), torch.nn.Tanh(), torch.nn.LayerNorm(hid), torch.nn.Dropout(0.3), torch.nn.Linear(hid, classes)
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    model.train()
    times, cpu = [], []
    for _ in range(spec["epochs"]):
        t0, c0 = time.perf_counter(), time.process_time()
        order = torch.randperm(n, generator=g)
        for i in range(0, n, bs):
            idx = order[i:i + bs]
            opt.zero_grad()
            logits = model(x[idx])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets[idx])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return times, cpu


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    torch.set_num_threads(spec["threads"])
    times, cpu = distance(spec) if spec["task"] == "distance" else mlp(spec)
    print(json.dumps({"task": spec["task"], "threads": torch.get_num_threads(), "torch": torch.__version__, "epoch_seconds": times, "epoch_cpu_seconds": cpu}))


if __name__ == "__main__":
    main()
