"""Train a small spiking digits classifier in snnTorch and export it to NIR.

Run by hand in a throwaway environment (never by CI):

    python3 -m venv /tmp/venv-nir
    /tmp/venv-nir/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
    /tmp/venv-nir/bin/pip install snntorch==1.0.0 nir==1.0.8 nirtorch==2.6
    /tmp/venv-nir/bin/python examples/nir/train_digits_snntorch.py

Writes `models/digits-snn-snntorch.nir` and `models/digits-snn-snntorch.expected.json`
(snnTorch's own predictions and spike counts on the test split, for the cross-check in
`tests/all/nir.rs`). The network: Linear(64, 128) -> Leaky -> Linear(128, 10) -> Leaky, per-neuron
beta 0.9 and threshold 1 (a scalar beta does not export), reset to zero (the reset NIR can
express), 8 time steps with the image as a constant input current each step (direct coding), the
class scores the output spikes summed over the steps.
"""

import csv
import json
import os
import sys

import nir
import snntorch as snn
from snntorch import utils as snn_utils
import torch
from snntorch import surrogate
from snntorch.export_nir import export_to_nir

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS, HIDDEN, EPOCHS, SEED = 8, 128, 150, 1


def read(name):
    xs, ys = [], []
    with open(os.path.join(ROOT, "data", "digits", name)) as f:
        for row in csv.reader(f):
            if row:
                xs.append([float(v) / 16.0 for v in row[:64]])
                ys.append(int(row[64]))
    return torch.tensor(xs, dtype=torch.float32), torch.tensor(ys)


def leaky(n, output=False):
    return snn.Leaky(beta=torch.full((n,), 0.9), threshold=torch.ones(n),
                     reset_mechanism="zero", init_hidden=True, output=output,
                     spike_grad=surrogate.atan(), learn_beta=False, learn_threshold=False)


def build():
    return torch.nn.Sequential(torch.nn.Linear(64, HIDDEN), leaky(HIDDEN),
                               torch.nn.Linear(HIDDEN, 10), leaky(10, output=True))


def run(net, x):
    """Output spikes per step [steps, batch, 10] and hidden spikes per step."""
    snn_utils.reset(net)
    out, hid = [], []
    for _ in range(STEPS):
        h = net[1](net[0](x))
        spk, _ = net[3](net[2](h))
        out.append(spk)
        hid.append(h)
    return torch.stack(out), torch.stack(hid)


def main():
    torch.manual_seed(SEED)
    xtr, ytr = read("digits-train.csv")
    xte, yte = read("digits-test.csv")
    net = build()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    for epoch in range(EPOCHS):
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 64):
            idx = perm[i:i + 64]
            out, _ = run(net, xtr[idx])
            loss = loss_fn(out.sum(0) * 2.0, ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if epoch % 25 == 24:
            with torch.no_grad():
                acc = (run(net, xte)[0].sum(0).argmax(1) == yte).float().mean().item()
            print(f"epoch {epoch + 1}: loss {loss.item():.3f}, test top-1 {acc:.4f}", file=sys.stderr)
    with torch.no_grad():
        out, hid = run(net, xte)
        scores = out.sum(0)
        # ties broken towards the lower class, as argmax does in both
        pred = scores.argmax(1)
        acc = (pred == yte).float().mean().item()
    graph = export_to_nir(net, xte[:1], ignore_dims=[0])
    nir.write(os.path.join(ROOT, "models", "digits-snn-snntorch.nir"), graph)
    expected = {
        "framework": f"snntorch {snn.__version__}, torch {torch.__version__}, nir {nir.__version__}",
        "steps": STEPS,
        "test_top1": acc,
        "predictions": pred.tolist(),
        "output_spikes": int(out.sum().item()),
        "hidden_spikes": int(hid.sum().item()),
    }
    with open(os.path.join(ROOT, "models", "digits-snn-snntorch.expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    print(f"test top-1 {acc:.4f}", file=sys.stderr)


if __name__ == "__main__":
    main()
