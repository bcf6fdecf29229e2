#!/usr/bin/env bash
# HVP speed of hawq's oracle against a PyHessian-style Python reference on the same machine,
# model, data and thread count, plus trace-estimation costs; prints one table with ratios.
#
#   scripts/bench_estimators.sh [--threads N] [--reps R] [--rounds K] [--build DIR] [--out DIR] [--quick]
#
# --threads intra-op threads of both processes (default 1: the reference machine is a shared
#           2-core VM, where a second OpenMP thread competing with other work slows both sides
#           erratically; use 2 on an idle machine)
# --reps    HVP repetitions per side (default 20), run in --rounds interleaved rounds (default 4)
# --build   build folder holding bench/bench_hvp (default: build; built there if missing)
# --out     where the JSON of both runs and the table go (default: results/bench_estimators)
# --quick   4 repetitions in 2 rounds, no trace or per-block study (a smoke run)
# Both processes get the same OMP_NUM_THREADS and intra-op thread count. The Python side is
# Debian's /usr/bin/python3 with its torch (the same LibTorch as the C++ build).
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
threads=1
reps=20
rounds=4
build="$here/build"
out="$here/results/bench_estimators"
quick=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) threads="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --quick) quick=1; reps=4; rounds=2; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "bench_estimators.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

bench="$build/bench/bench_hvp"
if [[ ! -x "$bench" ]]; then
  cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHAWQ_BUILD_BENCH=ON >/dev/null
  ninja -C "$build" bench_hvp
fi
mkdir -p "$out"
export OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads"

# HVP timings in interleaved rounds (C++, Python, C++, Python, ...), so that a change in the
# machine's load during the run hits both sides alike; medians are over all rounds' repetitions.
per_round=$(( (reps + rounds - 1) / rounds ))
rm -f "$out"/hawq_round*.json "$out"/pyhessian_round*.json "$out"/hawq.json "$out"/pyhessian.json
for r in $(seq 1 "$rounds"); do
  dump=()
  [[ $r == 1 ]] && dump=(--dump "$out/batch.safetensors")
  echo "== round $r/$rounds: hawq (C++) $bench --threads $threads --reps $per_round"
  "$bench" --threads "$threads" --reps "$per_round" --skip-trace --skip-perblock "${dump[@]}" \
    --json "$out/hawq_round$r.json" --benchmark_color=false 2>&1 | grep -E "^(model|data|threads)|hvp \(" || true
  echo "== round $r/$rounds: PyHessian-style /usr/bin/python3 bench/pyhessian_ref.py --threads $threads --reps $per_round"
  /usr/bin/python3 "$here/bench/pyhessian_ref.py" --threads "$threads" --reps "$per_round" --skip-trace \
    --dump "$out/batch.safetensors" --json "$out/pyhessian_round$r.json"
done
if [[ $quick == 0 ]]; then
  echo "== hawq (C++): trace to 5% and Hutchinson vs Hutch++"
  "$bench" --threads "$threads" --reps 1 --json "$out/hawq.json" --benchmark_color=false 2>&1 \
    | grep -vE "^(hvp/|\[|-|Benchmark|Run on|CPU|  L|Load|\*\*\*)" | tee "$out/hawq.log"
  echo "== PyHessian-style reference: trace to 5%"
  /usr/bin/python3 "$here/bench/pyhessian_ref.py" --threads "$threads" --reps 1 \
    --dump "$out/batch.safetensors" --json "$out/pyhessian.json" 2>&1 | tee "$out/pyhessian.log"
fi

/usr/bin/python3 - "$out" <<'EOF' | tee "$out/table.md"
import json, platform, os, sys
out = sys.argv[1]
import glob, statistics
def load(name):
    rounds = [json.load(open(f)) for f in sorted(glob.glob(os.path.join(out, name + "_round*.json")))]
    d = dict(rounds[0])
    full = os.path.join(out, name + ".json")
    if os.path.exists(full):
        d.update({k: v for k, v in json.load(open(full)).items() if not k.startswith("hvp")})
    for k in rounds[0]:
        if k.startswith("hvp_") and k.endswith("_seconds"):
            d[k] = [t for r in rounds for t in r[k]]
            d[k.replace("_seconds", "_median_s")] = statistics.median(d[k])  # *_cpu_median_s too
    d["rounds"] = len(rounds)
    return d
c = load("hawq")
p = load("pyhessian")
print(f"\nmachine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores; threads {c['threads']}; "
      f"torch {p['torch']} (C++ LibTorch {c['torch']}); {c['rounds']} interleaved rounds; load average now "
      f"{os.getloadavg()[0]:.1f}")
print(f"model: {c['model']}, {c['params']} quantizable weights; data: {c['data']}")
if "hv_rel_diff_vs_hawq" in p:
    print(f"H v of the reference vs hawq: relative difference {p['hv_rel_diff_vs_hawq']:.1e}")
print("\n| measurement | hawq (C++) | PyHessian-style (Python) | hawq / Python |")
print("|---|---|---|---|")
def row(name, a, b, fmt="{:.3f} s"):
    print(f"| {name} | {fmt.format(a)} | {fmt.format(b)} | {a / b:.3f}× |")
n = len(c["hvp_1batch_seconds"])
row(f"HVP median of {n}, graph kept (1 batch of 64): wall", c["hvp_1batch_median_s"], p["hvp_cached_median_s"])
row(f"  same, process CPU time", c["hvp_1batch_cpu_median_s"], p["hvp_cached_cpu_median_s"])
row(f"HVP median of {n}, recomputed (2 batches of 32): wall", c["hvp_2batches_median_s"], p["hvp_recompute_median_s"])
row(f"  same, process CPU time", c["hvp_2batches_cpu_median_s"], p["hvp_recompute_cpu_median_s"])
if "trace" in c and "trace" in p:
    ct, pt = c["trace"], p["trace"]
    row("whole-model trace to 5% rel. s.e.: seconds", ct["seconds"], pt["seconds"], "{:.1f} s")
    row("  probes used", ct["probes"], pt["probes"], "{:d}")
    row("  process CPU seconds", ct["cpu_seconds"], pt["cpu_seconds"], "{:.1f} s")
    row("  wall seconds per probe", ct["seconds"] / ct["probes"], pt["seconds"] / pt["probes"])
    print(f"\ntrace estimates: hawq {ct['estimate']:.4g} ± {ct['std_error']:.2g}, "
          f"reference {pt['estimate']:.4g} ± {pt['std_error']:.2g}")
pb = c.get("perblock")
if pb:
    print(f"\nHutchinson vs Hutch++ (sketch {pb['sketch']}) on the {pb['partition']} partition "
          f"({pb['blocks']} blocks), from {pb['budget']} matvecs each:\n")
    print("| target | Hutchinson HVPs | Hutch++ HVPs | Hutchinson / Hutch++ |")
    print("|---|---|---|---|")
    for key, label in (("median_block_10pct", "median layer ≤ 10% rel. s.e."),
                       ("every_block_20pct", "every layer ≤ 20% rel. s.e."),
                       ("every_block_10pct", "every layer ≤ 10% rel. s.e."),
                       ("every_block_5pct", "every layer ≤ 5% rel. s.e."),
                       ("whole_model_5pct", "whole model ≤ 5% rel. s.e.")):
        r = pb[key]
        print(f"| {label} | {r['hutchinson_hvps']:.0f} | {r['hutchpp_hvps']:.0f} | {r['ratio']:.2f}× |")
    a = pb["at_budget"]
    print(f"\nat {pb['budget']} matvecs: median layer rel. s.e. Hutchinson {a['hutchinson_median_rel_se']:.3f}, "
          f"Hutch++ {a['hutchpp_median_rel_se']:.3f}; worst {a['hutchinson_worst_rel_se']:.3f} vs "
          f"{a['hutchpp_worst_rel_se']:.3f}")
EOF
