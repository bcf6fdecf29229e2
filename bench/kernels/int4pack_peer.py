#!/usr/bin/env python3
"""Peer measurement: PyTorch's int4 weight-only kernel (aten._weight_int4pack_mm, the kernel
gpt-fast and torchao use) against cuBLAS through torch.matmul (fp16 and bf16), same shapes and
batch sizes as kernels_bench, same method: CUDA graphs of R calls over R weight copies (together
> 256 MB so L2 never holds them), CUDA events, warm-up, median of --reps replays / R.

    python3 bench/kernels/int4pack_peer.py --out DIR [--reps 50] [--quick]

Writes DIR/int4pack_peer.csv; if DIR/kernels.csv (kernels_bench) exists, also prints our uniform
4-bit kernel against the peer point by point (the two runs must be on the same card).
"""
import argparse
import csv
import math
import os
import statistics
import sys

import torch

SHAPES = [(4096, 4096), (11008, 4096), (4096, 11008), (8192, 8192), (28672, 8192)]
MS = [1, 16, 128]
GROUP = 128
ROTATE_BYTES = 256e6


def time_graph(fn_list, reps, warm=3):
    """fn_list: callables, one per weight copy. Returns (median us per call, min us per call)."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for f in fn_list:  # warm-up outside the graph (lazy init, autotuning)
            f()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for f in fn_list:
            f()
    for _ in range(warm):
        g.replay()
    torch.cuda.synchronize()
    a = torch.cuda.Event(enable_timing=True)
    b = torch.cuda.Event(enable_timing=True)
    t = []
    for _ in range(reps):
        a.record()
        g.replay()
        b.record()
        b.synchronize()
        t.append(a.elapsed_time(b) * 1000.0 / len(fn_list))
    return statistics.median(t), min(t)


def pack_int4(q):
    """q: int32 [n, k] in [0, 15] -> the layout _convert_weight_to_int4pack expects."""
    return (q[:, ::2] << 4 | q[:, 1::2]).to(torch.uint8)


def convert(q, inner_k_tiles=8):
    """Tries the known signatures of _convert_weight_to_int4pack (uint8 [n, k/2] since 2.5,
    int32 [n, k] before)."""
    errors = []
    for arg in (pack_int4(q), q.to(torch.int32)):
        try:
            return torch.ops.aten._convert_weight_to_int4pack(arg, inner_k_tiles)
        except Exception as e:  # noqa: BLE001 - report every variant tried
            errors.append(f"{arg.dtype} {tuple(arg.shape)}: {e}")
    raise RuntimeError("no _convert_weight_to_int4pack variant worked:\n" + "\n".join(errors))


def int4_mm(x, packed, sz):
    return torch.ops.aten._weight_int4pack_mm(x, packed, GROUP, sz)


def validate(dev):
    """Checks our reading of the semantics on a small shape: w = (q - 8) * scale + zero."""
    n, k, m = 256, 1024, 8
    q = torch.randint(0, 16, (n, k), dtype=torch.int32, device=dev)
    scale = (torch.rand(k // GROUP, n, device=dev) * 0.02 + 0.005)
    zero = (torch.rand(k // GROUP, n, device=dev) - 0.5) * 0.01
    sz = torch.stack([scale, zero], dim=2).to(torch.bfloat16).contiguous()
    x = torch.randn(m, k, device=dev).to(torch.bfloat16)
    y = int4_mm(x, convert(q), sz).float()
    s_full = sz[..., 0].float().t().repeat_interleave(GROUP, dim=1)
    z_full = sz[..., 1].float().t().repeat_interleave(GROUP, dim=1)
    w = (q.float() - 8.0) * s_full + z_full
    ref = x.float() @ w.t()
    rel = ((y - ref).norm() / ref.norm()).item()
    print(f"int4pack semantics check (w = (q-8)*s + z, bf16): rel. error {rel:.2e}"
          f" {'ok' if rel < 2e-2 else 'MISMATCH'}")
    return rel


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", "results/kernels"))
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("SKIP: no CUDA device")
        return 0
    os.makedirs(args.out, exist_ok=True)
    dev = torch.device("cuda")
    card = torch.cuda.get_device_name(0)
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, card {card}")
    for op in ("_convert_weight_to_int4pack", "_weight_int4pack_mm"):
        try:
            print(" ", getattr(torch.ops.aten, op).default._schema)
        except Exception as e:  # noqa: BLE001
            print(f"  {op}: schema unavailable ({e})")
    validate(dev)
    shapes = [(4096, 4096), (28672, 8192)] if args.quick else SHAPES
    torch.manual_seed(0)
    rows = []
    for n, k in shapes:
        q = torch.randint(0, 16, (n, k), dtype=torch.int32, device=dev)
        packed0 = convert(q)
        sz0 = torch.stack([torch.rand(k // GROUP, n, device=dev) * 0.02 + 0.005,
                           (torch.rand(k // GROUP, n, device=dev) - 0.5) * 0.01],
                          dim=2).to(torch.bfloat16).contiguous()
        del q
        r4 = max(2, min(64, math.ceil(ROTATE_BYTES / (n * k / 2))))
        packed = [packed0.clone() for _ in range(r4)]
        szs = [sz0.clone() for _ in range(r4)]
        w16_0 = (torch.randn(n, k, device=dev) * 0.02).to(torch.float16)
        r16 = max(2, min(64, math.ceil(ROTATE_BYTES / (n * k * 2))))
        w16 = [w16_0.clone() for _ in range(r16)]
        wbf = [w.to(torch.bfloat16) for w in w16]
        del w16_0
        for m in MS:
            xb = torch.randn(m, k, device=dev).to(torch.bfloat16)
            xh = xb.to(torch.float16)
            t16 = time_graph([lambda i=i: torch.matmul(xh, w16[i].t()) for i in range(r16)], args.reps)
            tbf = time_graph([lambda i=i: torch.matmul(xb, wbf[i].t()) for i in range(r16)], args.reps)
            t4 = time_graph([lambda i=i: int4_mm(xb, packed[i], szs[i]) for i in range(r4)], args.reps)
            for name, t in (("torch_fp16", t16), ("torch_bf16", tbf), ("int4pack", t4)):
                rows.append({"card": card, "n": n, "k": k, "m": m, "variant": name,
                             "us": round(t[0], 3), "us_min": round(t[1], 3),
                             "speedup_vs_torch_fp16": round(t16[0] / t[0], 4)})
            print(f"  {n:5d}x{k:<6d} M={m:<3d} fp16 {t16[0]:8.1f} us  bf16 {tbf[0]:8.1f} us  "
                  f"int4pack {t4[0]:8.1f} us  -> int4pack x{t16[0] / t4[0]:.2f} vs fp16", flush=True)
        del packed, szs, w16, wbf
        torch.cuda.empty_cache()
    path = os.path.join(args.out, "int4pack_peer.csv")
    with open(path, "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        wr.writeheader()
        wr.writerows(rows)
    print(f"wrote {path}")

    ours = os.path.join(args.out, "kernels.csv")
    if os.path.exists(ours):
        with open(ours) as f:
            mine = list(csv.DictReader(f))
        print("\nours (kernels_bench) vs the int4pack peer, same card; speedups vs each run's own cuBLAS fp16")
        print(f"{'N x K':>13} {'M':>4} | {'u4 us':>8} {'x cuBLAS':>8} | {'int4pack us':>11} {'x fp16':>7} | {'u4/int4pack':>11}")
        for r in rows:
            if r["variant"] != "int4pack":
                continue
            ou = [x for x in mine if int(x["n"]) == r["n"] and int(x["k"]) == r["k"]
                  and int(x["m"]) == r["m"] and x["variant"] == "u4"]
            if not ou:
                continue
            u = float(ou[0]["us"])
            print(f"{r['n']:6d}x{r['k']:<6d} {r['m']:>4} | {u:8.1f} {float(ou[0]['speedup_vs_cublas']):8.2f} | "
                  f"{r['us']:11.1f} {r['speedup_vs_torch_fp16']:7.2f} | {r['us'] / u:11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
