#!/usr/bin/python3
"""PyHessian-style Hessian-vector products in Python, the reference bench_hvp is compared with.

Runs with Debian's /usr/bin/python3 and its torch (the same LibTorch 1.13 as the C++ build).
The network is the shipped ResNet-50-architecture model (width 16, 3x3 stride-1 stem without
max-pool, 1 input channel, 10 classes) built here from torchvision's own Bottleneck blocks with
torchvision parameter names, and loaded from the same safetensors file when it exists (random
weights otherwise: shapes, and so speed, are identical). BatchNorm in eval mode.

HVPs are computed the way PyHessian computes them: torch.autograd.grad(loss, params,
create_graph=True), then torch.autograd.grad(grads, params, grad_outputs=v). Two modes, both
measured:
  cached     the gradient graph is built once and every HVP is one double backward with
             retain_graph=True (PyHessian's single-batch path); compared with bench_hvp's 1batch
  recompute  the batch as two halves, each HVP running forward + gradient graph + double
             backward per half (PyHessian's full-dataset path); compared with bench_hvp's 2batches
The objective is the same as hawq's oracle: summed cross entropy / number of rows, Hessian over
every convolution weight and fc.weight (the quantizable weights, in hawq's order).

With --dump FILE (written by bench_hvp --dump) the batch and a probe v come from the C++ run, and
the script checks that its H v equals hawq's.

  /usr/bin/python3 bench/pyhessian_ref.py [--threads 2] [--reps 20] [--dump FILE]
                                          [--weights FILE] [--json FILE]
"""
import argparse
import json
import math
import os
import statistics
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.resnet import Bottleneck

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_WEIGHTS = os.path.join(HERE, "..", "assets", "models", "resnet50-w16-fmnist", "model.safetensors")


def read_safetensors(path):
    """Minimal safetensors reader: {name: torch.Tensor}."""
    dtypes = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64, "I32": np.int32,
              "BF16": np.uint16, "U8": np.uint8}
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        arr = np.frombuffer(data[b:end], dtype=dtypes[e["dtype"]]).reshape(e["shape"])
        t = torch.from_numpy(arr.copy())
        if e["dtype"] == "BF16":
            t = (t.to(torch.int32) << 16).view(torch.float32)
        out[name] = t
    return out


class ResNetSmall(nn.Module):
    """ResNet with torchvision names; width = base channels; small stem (3x3/1, no max-pool)."""

    def __init__(self, layers=(3, 4, 6, 3), width=16, in_channels=1, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.inplanes = width
        for i, n in enumerate(layers):
            setattr(self, f"layer{i + 1}", self._make_layer(width << i, n, 1 if i == 0 else 2))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(self.inplanes, num_classes)

    def _make_layer(self, planes, blocks, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes * Bottleneck.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * Bottleneck.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * Bottleneck.expansion))
        mods = [Bottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * Bottleneck.expansion
        mods += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*mods)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def quantizable(model):
    """Convolution weights in forward (registration) order, then fc.weight: hawq's order."""
    ws = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]
    return ws + [model.fc.weight]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--dump", default="")
    ap.add_argument("--weights", default=DEFAULT_WEIGHTS)
    ap.add_argument("--json", default="")
    ap.add_argument("--skip-trace", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = ResNetSmall()
    desc = "resnet50 width16 small-stem (random weights)"
    if os.path.exists(args.weights):
        sd = read_safetensors(args.weights)
        missing, unexpected = model.load_state_dict(
            {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}, strict=False)
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]
        if missing or unexpected:
            sys.exit(f"weights do not match the architecture: missing {missing[:3]}, unexpected {unexpected[:3]}")
        desc = "resnet50-w16-fmnist (shipped weights)"
    model.eval()
    params = quantizable(model)
    n_params = sum(p.numel() for p in params)

    ref_hv = None
    if args.dump:
        d = read_safetensors(args.dump)
        x, y, v_flat, ref_hv = d["input"], d["target"], d["v"], d["hv"]
        data = "batch from bench_hvp --dump"
    else:
        x, y = torch.randn(args.batch, 1, 28, 28), torch.randint(0, 10, (args.batch,))
        v_flat = (torch.randint(0, 2, (n_params,)) * 2 - 1).float()
        data = "random 1x28x28 images"
    sizes = [p.numel() for p in params]
    v = [t.view_as(p) for t, p in zip(torch.split(v_flat, sizes), params)]
    rows = y.numel()

    def objective():
        return F.cross_entropy(model(x), y, reduction="sum") / rows

    half = x.shape[0] // 2
    halves = [(x[:half], y[:half]), (x[half:], y[half:])]

    def hvp_recompute(vec):
        # PyHessian's dataloader_hv_product over the batch cut into two halves.
        out = None
        for xb, yb in halves:
            loss = F.cross_entropy(model(xb), yb, reduction="sum") / rows
            grads = torch.autograd.grad(loss, params, create_graph=True)
            hv = torch.autograd.grad(grads, params, grad_outputs=vec, only_inputs=True, retain_graph=False)
            out = list(hv) if out is None else [a + b for a, b in zip(out, hv)]
        return out

    cached_grads = torch.autograd.grad(objective(), params, create_graph=True)

    def hvp_cached(vec):
        return torch.autograd.grad(cached_grads, params, grad_outputs=vec, only_inputs=True, retain_graph=True)

    out = {"model": desc, "data": data, "threads": args.threads, "params": n_params, "torch": torch.__version__}
    if ref_hv is not None:
        hv = torch.cat([t.reshape(-1) for t in hvp_recompute(v)])
        rel = ((hv.double() - ref_hv.double()).norm() / ref_hv.double().norm()).item()
        out["hv_rel_diff_vs_hawq"] = rel
        print(f"H v relative difference vs hawq: {rel:.2e}")

    for name, fn in (("cached", hvp_cached), ("recompute", hvp_recompute)):
        for _ in range(2):
            fn(v)
        times, cpu = [], []
        for _ in range(args.reps):
            t0, c0 = time.perf_counter(), time.process_time()
            fn(v)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        out[f"hvp_{name}_seconds"] = times
        out[f"hvp_{name}_cpu_seconds"] = cpu
        out[f"hvp_{name}_median_s"] = statistics.median(times)
        print(f"hvp ({name}) median: {statistics.median(times):.4f} s over {len(times)} repetitions")

    if not args.skip_trace:
        # Whole-model Hutchinson trace to 5% relative standard error (at least 4 probes), with the
        # cached graph (PyHessian's single-batch trace()).
        gen = torch.Generator().manual_seed(0)
        t0, c0 = time.perf_counter(), time.process_time()
        xs = []
        se, mean = math.inf, 0.0
        while len(xs) < 4 or se > 0.05 * abs(mean):
            r = [(torch.randint(0, 2, p.shape, generator=gen) * 2 - 1).float() for p in params]
            hv = hvp_cached(r)
            xs.append(sum((a.double() * b.double()).sum().item() for a, b in zip(r, hv)))
            mean = statistics.fmean(xs)
            se = statistics.stdev(xs) / math.sqrt(len(xs)) if len(xs) > 1 else math.inf
            if len(xs) >= 1000:
                break
        secs, cpu = time.perf_counter() - t0, time.process_time() - c0
        out["trace"] = {"probes": len(xs), "seconds": secs, "cpu_seconds": cpu, "estimate": mean, "std_error": se}
        print(f"trace to 5% rel. s.e.: {len(xs)} probes, {secs:.2f} s, trace {mean:.4g} +- {se:.3g}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
