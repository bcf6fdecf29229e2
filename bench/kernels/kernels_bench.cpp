// Benchmark of the mixed-precision GEMV/GEMM kernels against cuBLAS fp16, in one run on one GPU.
//
//   kernels_bench --out DIR [--reps 50] [--quick] [--no-e2e] [--allocation FILE] [--shapes NxK,...]
//                 [--variants u4,...] [--ms 1,...] [--verbose-tuning] [--read-patterns] [--no-hold]
//                 [--calls N]
//
// For every shape (N x K) and M in {1, 16, 128}: cuBLAS fp16 (cublasGemmEx, fp32 accumulate) and
// the packed variants (uniform 2/3/4/8-bit aligned, uniform 4-bit unaligned, mixed {2,4,8} on
// 128x128 tiles (aligned) and the same width mix on row runs of 1..40 rows (unaligned)).
// Every variant is first checked against the CPU reference on random data (never zero); a failed
// check is reported and makes the exit code 1. Launch configurations (warps per block, K splits)
// are tuned per point. Times: CUDA events around CUDA-graph replays of max(R, --calls) launches
// (default 64) cycling over R copies of the weights (copies together > 256 MB, so L2 (50 MB) never
// holds them), warm-up, median of --reps replays divided by the launches; the stream is held by a
// spinning kernel while the host enqueues each timed replay, so host launch latency is not timed
// (--no-hold: without the hold; --calls 0: one launch per copy; both together: the method of runs
// up to h100_2026-11-26c). The device-to-device copy bandwidth (read + write) is measured in
// the same run. Writes DIR/kernels.csv, DIR/kernels.json and DIR/latency.yaml (the latency table
// the `hardware` allocator reads: a YAML list of {n, k, m, bits, layout, us}).
// An end-to-end LLaMA-7B decode step (32 layers of q,k,v,o 4096x4096, gate/up 11008x4096,
// down 4096x11008; M = 1; the GEMVs only, one graph) compares cuBLAS fp16 with uniform 4-bit, the
// random mixed maps and, per --allocation FILE, a HAWQ-V3 allocation (written by llama7b_allocation:
// one width per weight or per block of rows, per layer; the variant is named in the file), whose
// predicted latency it prints beside the measured one.
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "hawq/kernels/format.h"
#include "hawq/kernels/gemm.h"
#include "allocation_file.h"
#include "hold.h"
#include "read_floor.h"

using namespace hawq::kernels;

namespace {

#define CUDA_OK(expr)                                                                  \
  do {                                                                                 \
    const cudaError_t e_ = (expr);                                                     \
    if (e_ != cudaSuccess) {                                                           \
      std::fprintf(stderr, "FATAL %s:%d: %s: %s\n", __FILE__, __LINE__, #expr,         \
                   cudaGetErrorString(e_));                                            \
      std::exit(2);                                                                    \
    }                                                                                  \
  } while (0)
#define CUBLAS_OK(expr)                                                                \
  do {                                                                                 \
    const cublasStatus_t s_ = (expr);                                                  \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                                 \
      std::fprintf(stderr, "FATAL %s:%d: %s: cublas status %d\n", __FILE__, __LINE__,  \
                   #expr, static_cast<int>(s_));                                       \
      std::exit(2);                                                                    \
    }                                                                                  \
  } while (0)

constexpr double kRotateBytes = 256e6;  // > 2x the 50 MB L2 of an H100
constexpr double kTol = 2e-3;

int g_failures = 0;

template <class F>
void parallel_for(long count, F f) {
  const int t = static_cast<int>(std::max(1u, std::min(std::thread::hardware_concurrency(), 64u)));
  std::vector<std::thread> pool;
  for (int i = 0; i < t; ++i) pool.emplace_back([=, &f] { f(count * i / t, count * (i + 1) / t); });
  for (auto& th : pool) th.join();
}

std::vector<float> random_weights(int n, int k, std::uint64_t seed) {
  std::vector<float> w(static_cast<std::size_t>(n) * k);
  parallel_for(n, [&](long r0, long r1) {
    for (long r = r0; r < r1; ++r) {
      std::mt19937_64 rng(seed * 1000003 + r);
      std::normal_distribution<float> nd(0.f, 0.02f);
      float* row = &w[static_cast<std::size_t>(r) * k];
      for (int c = 0; c < k; ++c) {
        float v = nd(rng);
        row[c] = v == 0.f ? 1e-4f : v;
      }
    }
  });
  return w;
}

std::vector<std::uint16_t> random_x(int m, int k, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> ud(-1.f, 1.f);
  std::vector<std::uint16_t> x(static_cast<std::size_t>(m) * k);
  for (auto& v : x) {
    float f = ud(rng);
    if (std::fabs(f) < 1e-3f) f = 0.25f;
    v = float_to_half(f);
  }
  return x;
}

// Width mix of the mixed variants: 1/3 2-bit, 1/2 4-bit, 1/6 8-bit (average 4.0 bits).
int draw_width(std::mt19937_64& rng) {
  const int u = static_cast<int>(rng() % 6);
  return u < 2 ? 2 : u < 5 ? 4 : 8;
}

// 128x128 tiles, widths shuffled so the mix is exact up to one tile.
std::vector<BitBlock> tile_map(int n, int k, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<BitBlock> blocks;
  for (int r = 0; r < n; r += 128)
    for (int c = 0; c < k; c += 128) blocks.push_back({r, std::min(n, r + 128), c, std::min(k, c + 128), 0});
  const std::size_t T = blocks.size();
  std::vector<int> widths(T);
  for (std::size_t i = 0; i < T; ++i) widths[i] = (6 * i < 2 * T) ? 2 : (6 * i < 5 * T) ? 4 : 8;
  std::shuffle(widths.begin(), widths.end(), rng);
  for (std::size_t i = 0; i < T; ++i) blocks[i].bits = widths[i];
  return blocks;
}

// Row runs of 1..40 rows per 128-column group, widths drawn from the same mix.
std::vector<BitBlock> run_map(int n, int k, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<BitBlock> blocks;
  for (int c = 0; c < k; c += kGroupSize)
    for (int r = 0; r < n;) {
      const int r1 = std::min(n, r + 1 + static_cast<int>(rng() % 40));
      blocks.push_back({r, r1, c, c + kGroupSize, draw_width(rng)});
      r = r1;
    }
  return blocks;
}

struct Variant {
  std::string name;    // cublas_fp16, u4, mixed_aligned, ...
  std::string layout;  // dense, aligned, unaligned
  int bits;            // 16, 2, 3, 4, 8, or 0 for mixed
  Layout pack_layout;
  std::function<std::vector<BitBlock>(int, int)> blocks;
};

std::vector<Variant> variants() {
  return {
      {"cublas_fp16", "dense", 16, Layout::kAligned, nullptr},
      {"u4", "aligned", 4, Layout::kAligned, [](int n, int k) { return uniform_blocks(n, k, 4); }},
      {"u8", "aligned", 8, Layout::kAligned, [](int n, int k) { return uniform_blocks(n, k, 8); }},
      {"u2", "aligned", 2, Layout::kAligned, [](int n, int k) { return uniform_blocks(n, k, 2); }},
      {"u3", "aligned", 3, Layout::kAligned, [](int n, int k) { return uniform_blocks(n, k, 3); }},
      {"u4_unaligned", "unaligned", 4, Layout::kUnaligned,
       [](int n, int k) { return uniform_blocks(n, k, 4); }},
      {"mixed_aligned", "aligned", 0, Layout::kAligned,
       [](int n, int k) { return tile_map(n, k, 11 + n + k); }},
      {"mixed_unaligned", "unaligned", 0, Layout::kUnaligned,
       [](int n, int k) { return run_map(n, k, 13 + n + k); }},
  };
}

struct Row {
  int n, k, m;
  std::string variant, layout;
  int bits;
  double avg_bits = 16, eff_bits = 16, us = 0, us_min = 0, speedup = 1, bytes = 0, gbps = 0,
         pct_copy = 0, rel_err = 0;
  int warps = 0, splits = 0, copies = 0;
  int gemv = 0;  // units per batch of the M = 1 GEMV path when it was the fastest configuration
  bool sk = false;     // ... in its stream-K form (unit runs over one wave of blocks)
  bool whole = false;  // ... with whole row tiles per block
  int stages = 2;      // ... register batches in flight per warp
  bool warp_x = false;  // ... x staged per warp with each unit's weights
  bool spread = false;  // ... the blocks with a row tile more spread over the grid
};

bool g_verbose_tuning = false;  // --verbose-tuning: print every M = 1 candidate's time
bool g_read_patterns = false;   // --read-patterns: time plain reads in the GEMV's access pattern
bool g_hold = true;             // --no-hold: time without holding the stream (see time_events)
int g_hold_timeouts = 0;        // holds that ended by their timeout instead of release (reported)
// --calls N: launches per timed graph, at least one per copy of the weights (cycling the copies).
// Each replay pays the graph's start once (about 3 us on an H100); spread over 64 calls it is
// 0.05 us a call at every shape, where one launch per copy spread it over 3 to 64 calls depending
// on the matrix size.
int g_min_calls = 64;

// Which kernel path a row's timing came from: cublas, mma (the GEMM), gemvU (the M = 1 GEMV over a
// (row block, K split) grid), skU (the M = 1 GEMV in stream-K form, equal runs) or sktU (stream-K,
// whole row tiles per block); U = units per batch; stream-K with more than two batches in flight
// adds sN, with x staged per warp x, with the longer block runs spread over the grid p (e.g. skt1s4x,
// skt1s4xp).
std::string path_name(const Row& r) {
  if (r.bits == 16) return "cublas";
  if (!r.gemv) return "mma";
  std::string name = (r.sk ? (r.whole ? "skt" : "sk") : "gemv") + std::to_string(r.gemv);
  if (r.sk && r.stages > 2) name += "s" + std::to_string(r.stages);
  if (r.sk && r.warp_x) name += "x";
  if (r.sk && r.spread) name += "p";
  return name;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Timing {
  double median_us, min_us;
};

// Events around timed work, with the stream held (StreamHold) while the host enqueues the start
// event, the work and the stop event: the device then runs them back to back, and the interval is
// device time only. Without the hold (--no-hold) the interval also includes the host's enqueue
// latency (microseconds per cudaGraphLaunch or cudaMemcpyAsync), which is not the device's work.
double time_events(cudaStream_t s, cudaEvent_t a, cudaEvent_t b, const std::function<void()>& work) {
  static StreamHold hold;
  if (g_hold) CUDA_OK(hold.hold(s));
  CUDA_OK(cudaEventRecord(a, s));
  work();
  CUDA_OK(cudaEventRecord(b, s));
  if (g_hold) hold.release();
  CUDA_OK(cudaEventSynchronize(b));
  if (g_hold && !hold.released_in_time()) ++g_hold_timeouts;
  float ms = 0;
  CUDA_OK(cudaEventElapsedTime(&ms, a, b));
  return ms;
}

// Captures enqueue(stream) into a graph and times `reps` replays (each between two events).
Timing time_graph(cudaStream_t s, const std::function<void(cudaStream_t)>& enqueue, int calls,
                  int reps, int warm) {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CUDA_OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  enqueue(s);
  CUDA_OK(cudaStreamEndCapture(s, &graph));
  CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
  cudaEvent_t a, b;
  CUDA_OK(cudaEventCreate(&a));
  CUDA_OK(cudaEventCreate(&b));
  for (int i = 0; i < warm; ++i) CUDA_OK(cudaGraphLaunch(exec, s));
  CUDA_OK(cudaStreamSynchronize(s));
  std::vector<double> t;
  for (int i = 0; i < reps; ++i)
    t.push_back(1000.0 * time_events(s, a, b, [&] { CUDA_OK(cudaGraphLaunch(exec, s)); }) / calls);
  CUDA_OK(cudaGetLastError());
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  return {median(t), *std::min_element(t.begin(), t.end())};
}

double copy_bandwidth_gbps(cudaStream_t s) {
  const std::size_t bytes = std::size_t(1) << 30;
  void *a = nullptr, *b = nullptr;
  CUDA_OK(cudaMalloc(&a, bytes));
  CUDA_OK(cudaMalloc(&b, bytes));
  CUDA_OK(cudaMemset(a, 1, bytes));
  cudaEvent_t e0, e1;
  CUDA_OK(cudaEventCreate(&e0));
  CUDA_OK(cudaEventCreate(&e1));
  std::vector<double> t;
  constexpr int kCopies = 4;  // per timed interval, so that its start is a small part of it
  for (int i = 0; i < 23; ++i) {
    const double ms = time_events(s, e0, e1, [&] {
      for (int j = 0; j < kCopies; ++j) CUDA_OK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, s));
    });
    if (i >= 3) t.push_back(ms / kCopies);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaFree(a);
  cudaFree(b);
  return 2.0 * bytes / (median(t) * 1e-3) / 1e9;
}

std::string today() {
  std::time_t now = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", std::gmtime(&now));
  return buf;
}

// The decode step's built-in variants; an --allocation file may not take one of these names.
const std::vector<std::string>& e2e_base_variants() {
  static const std::vector<std::string> v = {"cublas_fp16", "u4", "mixed_aligned", "mixed_unaligned"};
  return v;
}

struct Options {
  std::string out = "results/kernels";
  std::vector<std::string> allocations;  // --allocation (repeatable): allocations for the decode step
  std::vector<LayerAllocation> layer_allocs;  // ... read and checked before any device work
  int reps = 50;
  bool quick = false, e2e = true;
  std::string shapes;  // --shapes NxK[,NxK...]: only these shapes
  std::set<std::string> only;  // --variants a,b,...: only these (and cublas_fp16, the speedup baseline)
  std::vector<int> ms = {1, 16, 128};  // --ms 1,16,...: batch sizes
};

struct Context {
  cudaStream_t stream;
  cublasHandle_t cublas;
  Workspace ws;
  __half* x;  // 128 x Kmax
  __half* y;  // 128 x Nmax
  int sms;
  double copy_gbps;
  std::string card;
  Options opt;
  unsigned* sink;  // stream-read result (never written in practice)
  struct Floor {
    int n, k;
    double bytes, us, gbps, pct_copy;
    int blocks;
  };
  std::vector<Floor> floors;  // plain streaming read of the u4 M = 1 bytes, per shape
};

void cublas_gemm(Context& c, const __half* w, int n, int k, int m, const __half* x, __half* y,
                 cudaStream_t s) {
  const float alpha = 1.f, beta = 0.f;
  CUBLAS_OK(cublasSetStream(c.cublas, s));
  // column-major: y^T (n x m) = W (k x n col-major, transposed) . x^T (k x m)
  CUBLAS_OK(cublasGemmEx(c.cublas, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &alpha, w, CUDA_R_16F, k, x,
                         CUDA_R_16F, k, &beta, y, CUDA_R_16F, n, CUBLAS_COMPUTE_32F,
                         CUBLAS_GEMM_DEFAULT));
}

std::vector<int> check_rows(int m) {
  std::vector<int> rows;
  for (int r : {0, 1, 3, 4, 7, 15, 16, 63, 100, 127})
    if (r < m) rows.push_back(r);
  return rows;
}

double check_result(Context& c, int n, int m, const std::vector<double>& ref_all,
                    const std::vector<int>& ref_rows) {
  std::vector<std::uint16_t> y(static_cast<std::size_t>(m) * n);
  CUDA_OK(cudaStreamSynchronize(c.stream));
  CUDA_OK(cudaMemcpy(y.data(), c.y, y.size() * 2, cudaMemcpyDeviceToHost));
  const std::vector<int> rows = check_rows(m);
  std::vector<double> ref;
  for (int r : rows) {
    const std::size_t i = std::find(ref_rows.begin(), ref_rows.end(), r) - ref_rows.begin();
    ref.insert(ref.end(), ref_all.begin() + i * n, ref_all.begin() + (i + 1) * n);
  }
  return relative_error(y.data(), n, rows, ref);
}

std::map<std::string, LaunchConfig> g_tuned;  // "variant n k m" -> config

void bench_shape(Context& c, int n, int k, const std::vector<int>& ms, std::vector<Row>& rows) {
  std::printf("== shape N=%d K=%d\n", n, k);
  std::fflush(stdout);
  const std::vector<float> w = random_weights(n, k, 1 + n * 7 + k);
  const std::vector<int> ref_rows = check_rows(128);
  std::vector<std::uint16_t> xh = random_x(128, k, 3 + k);
  CUDA_OK(cudaMemcpy(c.x, xh.data(), xh.size() * 2, cudaMemcpyHostToDevice));
  std::map<int, double> cublas_us;
  for (const Variant& v : variants()) {
    if (!c.opt.only.empty() && v.bits != 16 && !c.opt.only.count(v.name)) continue;
    auto t0 = std::chrono::steady_clock::now();
    std::vector<double> ref;
    std::vector<GpuWeights> copies;
    std::vector<__half*> dense;
    double wbytes = 0, avg_bits = 16, eff_bits = 16;
    if (v.bits == 16) {
      std::vector<std::uint16_t> wh(w.size());
      parallel_for(static_cast<long>(w.size()), [&](long a, long b) {
        for (long i = a; i < b; ++i) wh[i] = float_to_half(w[i]);
      });
      reference_gemm_dense(wh.data(), n, k, xh.data(), ref_rows, ref);
      wbytes = static_cast<double>(wh.size()) * 2;
      const int R = static_cast<int>(std::min(64.0, std::max(2.0, std::ceil(kRotateBytes / wbytes))));
      for (int i = 0; i < R; ++i) {
        __half* d = nullptr;
        CUDA_OK(cudaMalloc(&d, wh.size() * 2));
        CUDA_OK(cudaMemcpy(d, wh.data(), wh.size() * 2, cudaMemcpyHostToDevice));
        dense.push_back(d);
      }
    } else {
      const PackedWeights p = pack_weights(w.data(), n, k, v.blocks(n, k), v.pack_layout);
      reference_gemm(p, xh.data(), ref_rows, ref);
      wbytes = static_cast<double>(p.device_bytes());
      avg_bits = p.avg_bits();
      eff_bits = p.effective_bits();
      const int R = static_cast<int>(std::min(64.0, std::max(2.0, std::ceil(kRotateBytes / wbytes))));
      copies.emplace_back(p);
      for (int i = 1; i < R; ++i) copies.push_back(copies[0].clone());
    }
    const int R = v.bits == 16 ? static_cast<int>(dense.size()) : static_cast<int>(copies.size());
    const int C = std::max(R, g_min_calls);  // launches per timed graph, cycling the R copies
    const double prep_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    for (int m : ms) {
      Row row{n, k, m, v.name, v.layout, v.bits};
      row.avg_bits = avg_bits;
      row.eff_bits = eff_bits;
      row.copies = R;
      row.bytes = wbytes + 2.0 * m * k + 2.0 * m * n;
      LaunchConfig best{};
      std::function<void(cudaStream_t, int)> call;  // call(stream, copy index)
      if (v.bits == 16) {
        call = [&, m](cudaStream_t s, int i) { cublas_gemm(c, dense[i], n, k, m, c.x, c.y, s); };
      } else {
        // tune (warps, splits) on short timings
        const LaunchConfig a = auto_config(copies[0].view(), m);
        std::vector<LaunchConfig> cands = {a};
        const int G = k / kGroupSize;
        for (int wp : {4, 8})
          for (int sp : {1, 2, 3, 4, 6, 8, 12, 16})
            if (sp <= std::max(1, G / 2) && !(wp == a.warps && sp == a.splits)) cands.push_back({wp, sp});
        if (m == 1 && v.pack_layout == Layout::kAligned) {
          for (int u : {1, 2, 4}) {
            for (int wp : {4, 8})  // the register-streaming GEMV over (row block, K split)
              for (int sp : {1, 2, 3, 4, 6, 8})
                if (sp <= std::max(1, G / 2)) cands.push_back({wp, sp, false, u});
            // ... in stream-K form (one wave of blocks): equal runs, whole tiles
            for (int wp : {4, 8, 16}) cands.push_back({wp, 1, false, u, true});
            for (int wp : {8, 16, 32}) cands.push_back({wp, 1, false, u, true, true});
          }
          for (int st : {3, 4}) {  // ... with 3 or 4 one-unit batches in flight
            for (int wp : {8, 16}) cands.push_back({wp, 1, false, 1, true, false, 0, st});
            for (int wp : {8, 12, 16}) cands.push_back({wp, 1, false, 1, true, true, 0, st});
            for (bool whole : {false, true})  // ... each warp staging its own x
              for (int wp : {4, 8, 12, 16}) cands.push_back({wp, 1, false, 1, true, whole, 0, st, true});
            for (int wp : {8, 16})  // ... the blocks with a row tile more spread over the grid
              cands.push_back({wp, 1, false, 1, true, true, 0, st, true, true});
          }
        }
        double best_t = 1e30, best_gemv_t[5] = {1e30, 1e30, 1e30, 1e30, 1e30}, best_mma_t = 1e30,
               best_sk_t[5] = {1e30, 1e30, 1e30, 1e30, 1e30}, best_skt_t[5] = {1e30, 1e30, 1e30, 1e30, 1e30};
        for (const LaunchConfig& cfg : cands) {
          if (shared_bytes(copies[0].view(), m, cfg.warps) > max_shared_bytes()) continue;
          if (mixed_gemm(copies[0].view(), c.x, c.y, m, c.ws, cfg, c.stream) != cudaSuccess) {
            cudaGetLastError();
            continue;
          }
          const Timing t = time_graph(
              c.stream,
              [&](cudaStream_t s) {
                for (int i = 0; i < C; ++i) CUDA_OK(mixed_gemm(copies[i % R].view(), c.x, c.y, m, c.ws, cfg, s));
              },
              C, 5, 1);
          if (g_verbose_tuning && m == 1)
            std::printf("    %-14s warps %2d splits %2d gemv %d sk %d whole %d stages %d xw %d spread %d: %.2f us\n",
                        v.name.c_str(), cfg.warps, cfg.splits, cfg.gemv, cfg.stream_k ? 1 : 0, cfg.whole_tiles ? 1 : 0,
                        cfg.stages, cfg.warp_x ? 1 : 0, cfg.spread_runs ? 1 : 0, t.median_us);
          if (t.median_us < best_t) {
            best_t = t.median_us;
            best = cfg;
          }
          if (cfg.gemv && cfg.stream_k && cfg.whole_tiles)
            best_skt_t[cfg.gemv] = std::min(best_skt_t[cfg.gemv], t.median_us);
          else if (cfg.gemv && cfg.stream_k) best_sk_t[cfg.gemv] = std::min(best_sk_t[cfg.gemv], t.median_us);
          else if (cfg.gemv) best_gemv_t[cfg.gemv] = std::min(best_gemv_t[cfg.gemv], t.median_us);
          else best_mma_t = std::min(best_mma_t, t.median_us);
        }
        row.warps = best.warps;
        row.splits = best.splits;
        row.gemv = best.gemv;
        row.sk = best.gemv && best.stream_k;
        row.whole = row.sk && best.whole_tiles;
        row.stages = best.stages ? best.stages : 2;
        row.warp_x = row.sk && best.warp_x;
        row.spread = row.sk && best.spread_runs;
        // the traffic of the timed path: a GEMV on a uniform matrix does not read the metadata
        row.bytes = static_cast<double>(bytes_read(copies[0].view(), m, best)) + 2.0 * m * k + 2.0 * m * n;
        if (best_gemv_t[4] < 1e30)
          std::printf("  (tuning %s M=1: best mma %.2f us, gemv1/2/4 %.2f %.2f %.2f us, sk1/2/4 %.2f %.2f %.2f us, "
                      "skt1/2/4 %.2f %.2f %.2f us)\n",
                      v.name.c_str(), best_mma_t, best_gemv_t[1], best_gemv_t[2], best_gemv_t[4], best_sk_t[1],
                      best_sk_t[2], best_sk_t[4], best_skt_t[1], best_skt_t[2], best_skt_t[4]);
        g_tuned[v.name + " " + std::to_string(n) + " " + std::to_string(k) + " " + std::to_string(m)] = best;
        call = [&, m, best](cudaStream_t s, int i) {
          CUDA_OK(mixed_gemm(copies[i].view(), c.x, c.y, m, c.ws, best, s));
        };
      }
      // correctness of the configuration that is timed (y poisoned with NaN first)
      CUDA_OK(cudaMemsetAsync(c.y, 0xFF, static_cast<std::size_t>(m) * n * 2, c.stream));
      call(c.stream, 0);
      row.rel_err = check_result(c, n, m, ref, ref_rows);
      if (!(row.rel_err < kTol)) {
        ++g_failures;
        std::printf("FAIL %s N=%d K=%d M=%d: relative error %.3g >= %.1e\n", v.name.c_str(), n, k, m,
                    row.rel_err, kTol);
      }
      const Timing t = time_graph(
          c.stream, [&](cudaStream_t s) { for (int i = 0; i < C; ++i) call(s, i % R); }, C, c.opt.reps, 3);
      row.us = t.median_us;
      row.us_min = t.min_us;
      if (v.bits == 16) cublas_us[m] = row.us;
      row.speedup = cublas_us.count(m) ? cublas_us[m] / row.us : 1.0;
      row.gbps = row.bytes / (row.us * 1e-6) / 1e9;
      row.pct_copy = 100.0 * row.gbps / c.copy_gbps;
      std::printf("  %-16s M=%-3d %9.2f us  x%5.2f vs cuBLAS  %7.1f GB/s (%5.1f%% of copy)  err %.1e  "
                  "cfg %d/%d%s  bits %.2f\n",
                  v.name.c_str(), m, row.us, row.speedup, row.gbps, row.pct_copy, row.rel_err,
                  row.warps, row.splits, row.gemv ? (" " + path_name(row)).c_str() : "", row.avg_bits);
      std::fflush(stdout);
      rows.push_back(row);
      // The same configuration with programmatic dependent launch: each GEMM requests its first
      // weight stages while the previous one finishes (the back-to-back case of a decode step).
      if (v.name == "u4" || v.name == "mixed_aligned" || v.name == "mixed_unaligned" || v.name == "u2") {
        Row pr = row;
        pr.variant = v.name + "_pdl";
        LaunchConfig pc = best;
        pc.pdl = true;
        CUDA_OK(cudaMemsetAsync(c.y, 0xFF, static_cast<std::size_t>(m) * n * 2, c.stream));
        const Timing tp = time_graph(
            c.stream,
            [&](cudaStream_t s) {
              for (int i = 0; i < C; ++i) CUDA_OK(mixed_gemm(copies[i % R].view(), c.x, c.y, m, c.ws, pc, s));
            },
            C, c.opt.reps, 3);
        pr.rel_err = check_result(c, n, m, ref, ref_rows);  // y of the last GEMM of the chain
        if (!(pr.rel_err < kTol)) {
          ++g_failures;
          std::printf("FAIL %s N=%d K=%d M=%d: relative error %.3g >= %.1e\n", pr.variant.c_str(), n, k, m,
                      pr.rel_err, kTol);
        }
        pr.us = tp.median_us;
        pr.us_min = tp.min_us;
        pr.speedup = cublas_us.count(m) ? cublas_us[m] / pr.us : 1.0;
        pr.gbps = pr.bytes / (pr.us * 1e-6) / 1e9;
        pr.pct_copy = 100.0 * pr.gbps / c.copy_gbps;
        std::printf("  %-16s M=%-3d %9.2f us  x%5.2f vs cuBLAS  %7.1f GB/s (%5.1f%% of copy)  err %.1e\n",
                    pr.variant.c_str(), m, pr.us, pr.speedup, pr.gbps, pr.pct_copy, pr.rel_err);
        std::fflush(stdout);
        rows.push_back(pr);
      }
      // The floor for these bytes: a plain streaming read over the same rotating copies (launch,
      // ramp-up and tail included), best of three grid sizes.
      if (v.name == "u4" && m == 1) {
        Context::Floor fl{n, k, wbytes, 1e30, 0, 0, 0};
        for (int per_sm : {4, 8, 16}) {
          const int blocks = per_sm * c.sms;
          const Timing t = time_graph(
              c.stream,
              [&](cudaStream_t s) {
                for (int i = 0; i < C; ++i)
                  CUDA_OK(launch_stream_read(copies[i % R].view().data, copies[i % R].view().bytes / 16 * 16, c.sink,
                                             blocks, s));
              },
              C, c.opt.reps, 3);
          if (t.median_us < fl.us) {
            fl.us = t.median_us;
            fl.blocks = blocks;
          }
        }
        fl.gbps = fl.bytes / (fl.us * 1e-6) / 1e9;
        fl.pct_copy = 100.0 * fl.gbps / c.copy_gbps;
        std::printf("  %-16s M=%-3d %9.2f us  (plain read of the u4 bytes: %7.1f GB/s, %5.1f%% of copy; "
                    "u4 takes %.2fx its time)\n",
                    "read_floor", m, fl.us, fl.gbps, fl.pct_copy, row.us / fl.us);
        std::fflush(stdout);
        c.floors.push_back(fl);
        if (g_read_patterns) {
          std::vector<ReadPattern> pats;
          for (int d : {2, 4, 6, 8})
            for (int w : {8, 16})
              for (int b : {1, 2, 4}) pats.push_back({false, d, w, b});
          for (int d : {4, 8, 12})
            for (int w : {4, 8, 16})
              for (int b : {1, 2, 4})
                if (d * w * b <= 200) pats.push_back({true, d, w, b});
          for (const ReadPattern& rp : pats) {
            const Timing t = time_graph(
                c.stream,
                [&](cudaStream_t s) {
                  for (int i = 0; i < C; ++i)
                    CUDA_OK(launch_pattern_read(copies[i % R].view().data, n, k, c.sink, rp, c.sms, s));
                },
                C, c.opt.reps, 3);
            const double gbps = fl.bytes / (t.median_us * 1e-6) / 1e9;
            std::printf("  (read pattern %s depth %2d, %2d warps x %d blocks/SM) %8.2f us  %5.1f%% of copy\n",
                        rp.shared ? "cp.async" : "regs    ", rp.depth, rp.warps, rp.blocks_per_sm, t.median_us,
                        100.0 * gbps / c.copy_gbps);
          }
          std::fflush(stdout);
        }
      }
    }
    (void)prep_s;
    for (__half* d : dense) cudaFree(d);
  }
}

struct E2E {
  std::string variant;
  double us = 0, speedup = 1, weight_bytes = 0, avg_bits = 16;
  double read_bytes = 0;    // weight bytes the step's GEMVs read (bytes_read; the footprint for cuBLAS)
  double predicted_us = 0;  // hawq_v3: the allocator's latency estimate from the table
};

// LLaMA-7B decode step: 32 x {q,k,v,o: 4096x4096; gate,up: 11008x4096; down: 4096x11008}, M = 1.
std::vector<E2E> bench_e2e(Context& c) {
  const std::vector<WeightShape>& mats = llama7b_layer_weights();
  const int L = kLlama7bLayers;
  std::vector<E2E> out;
  std::printf("== end-to-end LLaMA-7B decode step (32 layers x 7 GEMVs, M=1)\n");
  std::vector<std::vector<float>> wf;
  for (const WeightShape& mt : mats) wf.push_back(random_weights(mt.n, mt.k, 101 + mt.n + mt.k * 3 + wf.size()));
  const std::vector<std::uint16_t> xh = random_x(1, 11008, 5);
  CUDA_OK(cudaMemcpy(c.x, xh.data(), xh.size() * 2, cudaMemcpyHostToDevice));

  std::map<std::string, LayerAllocation> allocs;  // by variant name
  std::vector<std::string> variants = e2e_base_variants();
  for (const LayerAllocation& a : c.opt.layer_allocs) {
    variants.push_back(a.variant);
    allocs[a.variant] = a;
  }
  for (std::size_t i = 1, nv = variants.size(); i < nv; ++i) variants.push_back(variants[i] + "_pdl");
  double fp16_us = 0;
  for (const std::string& vs : variants) {
    const char* vname = vs.c_str();
    std::string name = vname;
    const bool pdl = name.size() > 4 && name.substr(name.size() - 4) == "_pdl";
    if (pdl) name = name.substr(0, name.size() - 4);
    E2E e;
    e.variant = vname;
    std::function<void(cudaStream_t)> enqueue;
    std::vector<__half*> dense;
    std::vector<GpuWeights> packed;  // [layer * 7 + j]
    double code_bits = 0, numel = 0;
    if (name == "cublas_fp16") {
      for (int j = 0; j < 7; ++j) {
        std::vector<std::uint16_t> wh(wf[j].size());
        for (std::size_t i = 0; i < wh.size(); ++i) wh[i] = float_to_half(wf[j][i]);
        __half* d0 = nullptr;
        CUDA_OK(cudaMalloc(&d0, wh.size() * 2));
        CUDA_OK(cudaMemcpy(d0, wh.data(), wh.size() * 2, cudaMemcpyHostToDevice));
        dense.push_back(d0);
      }
      for (int l = 1; l < L; ++l)
        for (int j = 0; j < 7; ++j) {
          __half* d = nullptr;
          const std::size_t bytes = static_cast<std::size_t>(mats[j].n) * mats[j].k * 2;
          CUDA_OK(cudaMalloc(&d, bytes));
          CUDA_OK(cudaMemcpy(d, dense[j], bytes, cudaMemcpyDeviceToDevice));
          dense.push_back(d);
          e.weight_bytes += bytes;
        }
      for (int j = 0; j < 7; ++j) e.weight_bytes += static_cast<double>(mats[j].n) * mats[j].k * 2;
      enqueue = [&](cudaStream_t s) {
        for (int l = 0; l < L; ++l)
          for (int j = 0; j < 7; ++j) cublas_gemm(c, dense[l * 7 + j], mats[j].n, mats[j].k, 1, c.x, c.y, s);
      };
    } else if (allocs.count(name)) {  // one packing per layer: every layer has its own map
      LayerAllocation& alloc = allocs[name];
      for (int l = 0; l < L; ++l)
        for (int j = 0; j < 7; ++j) {
          const PackedWeights p =
              pack_weights(wf[j].data(), mats[j].n, mats[j].k, alloc.blocks[{l, mats[j].role}], Layout::kAligned);
          code_bits += p.avg_bits() * mats[j].n * static_cast<double>(mats[j].k);
          numel += static_cast<double>(mats[j].n) * mats[j].k;
          packed.emplace_back(p);
          e.weight_bytes += static_cast<double>(packed.back().view().bytes);
        }
      e.avg_bits = code_bits / numel;
      e.predicted_us = alloc.predicted_us;
    } else {
      std::vector<GpuWeights> first;
      for (int j = 0; j < 7; ++j) {
        const int n = mats[j].n, k = mats[j].k;
        std::vector<BitBlock> blocks;
        Layout lay = Layout::kAligned;
        if (name == "u4") blocks = uniform_blocks(n, k, 4);
        else if (name == "mixed_aligned") blocks = tile_map(n, k, 900 + j);
        else {
          blocks = run_map(n, k, 900 + j);
          lay = Layout::kUnaligned;
        }
        const PackedWeights p = pack_weights(wf[j].data(), n, k, blocks, lay);
        code_bits += p.avg_bits() * n * static_cast<double>(k);
        numel += static_cast<double>(n) * k;
        first.emplace_back(p);
      }
      for (int l = 0; l < L; ++l)
        for (int j = 0; j < 7; ++j) {
          packed.push_back(l == 0 ? std::move(first[j]) : packed[j].clone());
          e.weight_bytes += static_cast<double>(packed.back().view().bytes);
        }
      e.avg_bits = code_bits / numel;
    }
    int untuned = 0;  // GEMVs of the step without a configuration tuned in this run
    if (name != "cublas_fp16") {
      // the configuration tuned for this shape: allocations run the one tuned for the uniform
      // width of the matrix, or the one tuned on random mixed maps; where this run did not tune
      // that width (e.g. with --variants), the library's default M = 1 configuration
      std::vector<LaunchConfig> cfgs;
      for (int l = 0; l < L; ++l)
        for (int j = 0; j < 7; ++j) {
          const DeviceWeights& v = packed[l * 7 + j].view();
          std::string tuned = name;
          if (allocs.count(name)) tuned = v.uniform_bits ? "u" + std::to_string(v.uniform_bits) : "mixed_aligned";
          const std::string key = tuned + " " + std::to_string(mats[j].n) + " " + std::to_string(mats[j].k) + " 1";
          const auto it = g_tuned.find(key);
          if (it == g_tuned.end()) ++untuned;
          cfgs.push_back(it != g_tuned.end() ? it->second : LaunchConfig{});
          cfgs.back().pdl = pdl;
        }
      for (std::size_t i = 0; i < cfgs.size(); ++i) e.read_bytes += static_cast<double>(bytes_read(packed[i].view(), 1, cfgs[i]));
      enqueue = [&, cfgs](cudaStream_t s) {
        for (std::size_t i = 0; i < cfgs.size(); ++i)
          CUDA_OK(mixed_gemm(packed[i].view(), c.x, c.y, 1, c.ws, cfgs[i], s));
      };
    }
    enqueue(c.stream);
    CUDA_OK(cudaStreamSynchronize(c.stream));
    const Timing t = time_graph(c.stream, enqueue, 1, std::max(10, c.opt.reps / 2), 2);
    e.us = t.median_us;
    if (name == "cublas_fp16") fp16_us = e.us;
    e.speedup = fp16_us > 0 ? fp16_us / e.us : 1.0;
    if (name == "cublas_fp16") e.read_bytes = e.weight_bytes;
    std::printf("  %-16s %9.1f us per decode step  x%5.2f vs cuBLAS fp16  weights %.2f GB  avg bits %.2f  "
                "%.0f GB/s",
                vname, e.us, e.speedup, e.weight_bytes / 1e9, e.avg_bits,
                e.read_bytes / (e.us * 1e-6) / 1e9);
    if (e.predicted_us > 0) std::printf("  (allocator's estimate %.1f us)", e.predicted_us);
    if (untuned) std::printf("  [%d of %d GEMVs with the default configuration: width not tuned in this run]", untuned, L * 7);
    std::printf("\n");
    std::fflush(stdout);
    out.push_back(e);
    for (__half* d : dense) cudaFree(d);
  }
  return out;
}

void write_outputs(const Context& c, const std::vector<Row>& rows, const std::vector<E2E>& e2e) {
  const std::string date = today();
  {
    FILE* f = std::fopen((c.opt.out + "/kernels.csv").c_str(), "w");
    if (!f) { std::perror("kernels.csv"); std::exit(2); }
    std::fprintf(f, "card,date,n,k,m,variant,layout,bits,avg_bits,effective_bits,us,us_min,speedup_vs_cublas,"
                    "bytes,gbps,pct_copy_bw,copy_gbps,rel_err,warps,splits,copies,path\n");
    for (const Row& r : rows)
      std::fprintf(f, "\"%s\",%s,%d,%d,%d,%s,%s,%d,%.4f,%.4f,%.3f,%.3f,%.4f,%.0f,%.1f,%.2f,%.1f,%.3e,%d,%d,%d,%s\n",
                   c.card.c_str(), date.c_str(), r.n, r.k, r.m, r.variant.c_str(), r.layout.c_str(), r.bits,
                   r.avg_bits, r.eff_bits, r.us, r.us_min, r.speedup, r.bytes, r.gbps, r.pct_copy,
                   c.copy_gbps, r.rel_err, r.warps, r.splits, r.copies,
                   path_name(r).c_str());
    std::fclose(f);
  }
  {
    FILE* f = std::fopen((c.opt.out + "/latency.yaml").c_str(), "w");
    if (!f) { std::perror("latency.yaml"); std::exit(2); }
    std::fprintf(f, "# Measured GEMM latency of hawq-bench kernels (kernels_bench), one entry per point.\n");
    std::fprintf(f, "# card: %s; date: %s; device-to-device copy bandwidth %.0f GB/s\n", c.card.c_str(),
                 date.c_str(), c.copy_gbps);
    std::fprintf(f, "# n x k = out x in features, m = batch rows, us = median microseconds per GEMM.\n");
    std::fprintf(f, "# layout: dense (cuBLAS fp16, bits 16), aligned (one width per 16x128 unit),\n");
    std::fprintf(f, "# unaligned (one width per row and 128-column group). Entries with `mix` are mixed\n");
    std::fprintf(f, "# {2,4,8} matrices (1/3, 1/2, 1/6 of the weights), bits = their average width.\n");
    for (const Row& r : rows) {
      if (r.variant.size() > 4 && r.variant.substr(r.variant.size() - 4) == "_pdl") continue;
      if (r.bits == 0)
        std::fprintf(f, "- {n: %d, k: %d, m: %d, bits: %.3f, layout: %s, mix: \"2:0.333,4:0.5,8:0.167\", us: %.3f}\n",
                     r.n, r.k, r.m, r.avg_bits, r.layout.c_str(), r.us);
      else
        std::fprintf(f, "- {n: %d, k: %d, m: %d, bits: %d, layout: %s, us: %.3f}\n", r.n, r.k, r.m, r.bits,
                     r.layout.c_str(), r.us);
    }
    std::fclose(f);
  }
  {
    FILE* f = std::fopen((c.opt.out + "/kernels.json").c_str(), "w");
    if (!f) { std::perror("kernels.json"); std::exit(2); }
    int rt = 0, drv = 0;
    cudaRuntimeGetVersion(&rt);
    cudaDriverGetVersion(&drv);
    std::fprintf(f, "{\n  \"card\": \"%s\",\n  \"date\": \"%s\",\n  \"cuda_runtime\": %d,\n  \"cuda_driver\": %d,\n"
                    "  \"sms\": %d,\n  \"copy_gbps\": %.1f,\n  \"reps\": %d,\n  \"tolerance\": %.1e,\n  \"failures\": %d,\n"
                    "  \"timing\": \"%s\",\n  \"launches_per_graph\": \"max(copies, %d)\",\n  \"hold_timeouts\": %d,\n",
                 c.card.c_str(), date.c_str(), rt, drv, c.sms, c.copy_gbps, c.opt.reps, kTol, g_failures,
                 g_hold ? "graph replays between events, stream held while enqueuing"
                        : "graph replays between events, enqueued on an idle stream (--no-hold)",
                 g_min_calls, g_hold_timeouts);
    std::fprintf(f, "  \"rows\": [\n");
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      std::fprintf(f, "    {\"n\": %d, \"k\": %d, \"m\": %d, \"variant\": \"%s\", \"layout\": \"%s\", \"bits\": %d, "
                      "\"avg_bits\": %.4f, \"us\": %.3f, \"us_min\": %.3f, \"speedup_vs_cublas\": %.4f, \"gbps\": %.1f, "
                      "\"pct_copy_bw\": %.2f, \"rel_err\": %.3e, \"warps\": %d, \"splits\": %d, \"path\": \"%s\"}%s\n",
                   r.n, r.k, r.m, r.variant.c_str(), r.layout.c_str(), r.bits, r.avg_bits, r.us, r.us_min,
                   r.speedup, r.gbps, r.pct_copy, r.rel_err, r.warps, r.splits,
                   path_name(r).c_str(), i + 1 < rows.size() ? "," : "");
    }
    std::fprintf(f, "  ],\n  \"read_floor\": [\n");
    for (std::size_t i = 0; i < c.floors.size(); ++i) {
      const Context::Floor& fl = c.floors[i];
      std::fprintf(f, "    {\"n\": %d, \"k\": %d, \"bytes\": %.0f, \"us\": %.3f, \"gbps\": %.1f, \"pct_copy_bw\": %.2f, "
                      "\"blocks\": %d}%s\n",
                   fl.n, fl.k, fl.bytes, fl.us, fl.gbps, fl.pct_copy, fl.blocks, i + 1 < c.floors.size() ? "," : "");
    }
    std::fprintf(f, "  ],\n  \"e2e_llama7b_decode\": [\n");
    for (std::size_t i = 0; i < e2e.size(); ++i)
      std::fprintf(f, "    {\"variant\": \"%s\", \"us\": %.2f, \"speedup_vs_cublas\": %.4f, \"weight_bytes\": %.0f, "
                      "\"read_bytes\": %.0f, \"avg_bits\": %.3f, \"predicted_us\": %.2f}%s\n",
                   e2e[i].variant.c_str(), e2e[i].us, e2e[i].speedup, e2e[i].weight_bytes, e2e[i].read_bytes,
                   e2e[i].avg_bits, e2e[i].predicted_us, i + 1 < e2e.size() ? "," : "");
    std::fprintf(f, "  ]\n}\n");
    std::fclose(f);
  }
}

}  // namespace

// A whole decimal integer in [lo, hi] (nothing else in the text), into out.
bool parse_int(const std::string& text, long lo, long hi, long& out) {
  char* end = nullptr;
  out = std::strtol(text.c_str(), &end, 10);
  return end != text.c_str() && *end == '\0' && out >= lo && out <= hi;
}

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--out" && i + 1 < argc) opt.out = argv[++i];
    else if (a == "--reps" && i + 1 < argc) opt.reps = std::max(5, std::atoi(argv[++i]));
    else if (a == "--quick") opt.quick = true;
    else if (a == "--verbose-tuning") g_verbose_tuning = true;
    else if (a == "--read-patterns") g_read_patterns = true;
    else if (a == "--no-hold") g_hold = false;
    else if (a == "--calls" && i + 1 < argc) {
      const std::string v = argv[++i];
      long n = 0;
      if (!parse_int(v, 0, 4096, n)) {
        std::fprintf(stderr, "kernels_bench: --calls: '%s' is not a launch count in 0..4096\n", v.c_str());
        return 2;
      }
      g_min_calls = static_cast<int>(n);
    }
    else if (a == "--shapes" && i + 1 < argc) opt.shapes = argv[++i];
    else if (a == "--no-e2e") opt.e2e = false;
    else if (a == "--allocation" && i + 1 < argc) opt.allocations.push_back(argv[++i]);
    else if (a == "--variants" && i + 1 < argc) {
      std::stringstream list(argv[++i]);
      for (std::string item; std::getline(list, item, ',');) opt.only.insert(item);
    } else if (a == "--ms" && i + 1 < argc) {
      opt.ms.clear();
      std::stringstream list(argv[++i]);
      for (std::string item; std::getline(list, item, ',');) {
        long m = 0;
        if (!parse_int(item, 1, 128, m)) {
          std::fprintf(stderr, "kernels_bench: --ms: '%s' is not a batch size in 1..128\n", item.c_str());
          return 2;
        }
        opt.ms.push_back(static_cast<int>(m));
      }
    } else {
      std::fprintf(stderr, "usage: kernels_bench [--out DIR] [--reps N] [--quick] [--no-e2e] [--allocation FILE] "
                           "[--shapes NxK,...] [--variants u4,...] [--ms 1,...] [--verbose-tuning] [--read-patterns] "
                           "[--no-hold] [--calls N]\n");
      return 2;
    }
  }
  // Shapes and names are checked before any device work, so bad arguments fail the same way with
  // or without a GPU.
  const int nmax = 28672, kmax = 11008;  // the largest shape the buffers below are sized for
  std::vector<std::pair<int, int>> shapes = {{4096, 4096}, {11008, 4096}, {4096, 11008}, {8192, 8192}, {28672, 8192}};
  if (opt.quick) shapes = {{4096, 4096}, {28672, 8192}};
  if (!opt.shapes.empty()) {  // NxK[,NxK...]
    shapes.clear();
    std::stringstream list(opt.shapes);
    for (std::string item; std::getline(list, item, ',');) {
      int n = 0, k = 0;
      char sep = 0;
      std::stringstream one(item);
      if (!(one >> n >> sep >> k) || sep != 'x' || n <= 0 || k <= 0 || n % 16 || k % 128 || n > nmax ||
          k > kmax) {
        std::fprintf(stderr,
                     "kernels_bench: --shapes: '%s' is not NxK with N a multiple of 16 up to %d, K of 128 up to %d\n",
                     item.c_str(), nmax, kmax);
        return 2;
      }
      shapes.emplace_back(n, k);
    }
  }
  for (const std::string& name : opt.only) {
    bool known = false;
    std::string names;
    for (const Variant& v : variants()) {
      known = known || v.name == name;
      names += (names.empty() ? "" : ", ") + v.name;
    }
    if (!known) {
      std::fprintf(stderr, "kernels_bench: --variants: unknown variant '%s' (expected some of: %s)\n", name.c_str(),
                   names.c_str());
      return 2;
    }
  }
  std::vector<std::string> taken = e2e_base_variants();
  for (const std::string& file : opt.allocations) {
    LayerAllocation a;
    try {
      a = read_layer_allocation(file, kLlama7bLayers, llama7b_layer_weights());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "kernels_bench: --allocation: %s\n", e.what());
      return 2;
    }
    if (a.variant.find("_pdl") != std::string::npos || std::find(taken.begin(), taken.end(), a.variant) != taken.end()) {
      std::fprintf(stderr, "kernels_bench: --allocation: %s: variant name '%s' is taken\n", file.c_str(),
                   a.variant.c_str());
      return 2;
    }
    taken.push_back(a.variant);
    opt.layer_allocs.push_back(std::move(a));
  }
  int ndev = 0;
  if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
    std::printf("SKIP: no CUDA device\n");
    return 0;
  }
  std::string mk = "mkdir -p '" + opt.out + "'";
  if (std::system(mk.c_str()) != 0) return 2;
  Context c;
  c.opt = opt;
  cudaDeviceProp prop{};
  CUDA_OK(cudaGetDeviceProperties(&prop, 0));
  c.card = prop.name;
  c.sms = prop.multiProcessorCount;
  CUDA_OK(cudaStreamCreateWithFlags(&c.stream, cudaStreamNonBlocking));
  CUBLAS_OK(cublasCreate(&c.cublas));
  void* cublas_ws = nullptr;
  CUDA_OK(cudaMalloc(&cublas_ws, 64 << 20));
  CUBLAS_OK(cublasSetWorkspace(c.cublas, cublas_ws, 64 << 20));
  c.ws = make_workspace(nmax);
  CUDA_OK(cudaMalloc(&c.x, static_cast<std::size_t>(128) * kmax * 2));
  CUDA_OK(cudaMalloc(&c.y, static_cast<std::size_t>(128) * nmax * 2));
  CUDA_OK(cudaMalloc(&c.sink, sizeof(unsigned)));
  c.copy_gbps = copy_bandwidth_gbps(c.stream);
  std::printf("card: %s, %d SMs, L2 %d MB; device-to-device copy %.0f GB/s (read + write); timing %s, "
              "at least %d launches per graph\n",
              c.card.c_str(), c.sms, prop.l2CacheSize >> 20, c.copy_gbps,
              g_hold ? "with the stream held while enqueuing" : "without a hold (--no-hold)", g_min_calls);

  const std::vector<int> ms = opt.ms;
  std::vector<Row> rows;
  for (const auto& [n, k] : shapes) bench_shape(c, n, k, ms, rows);
  std::vector<E2E> e2e;
  if (opt.e2e) e2e = bench_e2e(c);
  write_outputs(c, rows, e2e);

  std::printf("\nsummary (%s): us per GEMM, speedup vs cuBLAS fp16 in the same run\n", c.card.c_str());
  std::printf("%-13s %4s | %9s | %14s %14s %14s %14s %14s %14s %14s %14s\n", "N x K", "M", "cuBLAS", "u4",
              "u8", "u2", "mixed-al", "mixed-unal", "u4-unal", "u4+pdl", "mixed-al+pdl");
  for (const auto& [n, k] : shapes)
    for (int m : ms) {
      auto find = [&](const char* v) -> const Row* {
        for (const Row& r : rows)
          if (r.n == n && r.k == k && r.m == m && r.variant == v) return &r;
        return nullptr;
      };
      const Row* cb = find("cublas_fp16");
      std::printf("%5dx%-7d %4d | %9.1f |", n, k, m, cb ? cb->us : 0.0);
      for (const char* v : {"u4", "u8", "u2", "mixed_aligned", "mixed_unaligned", "u4_unaligned", "u4_pdl",
                            "mixed_aligned_pdl"}) {
        const Row* r = find(v);
        if (r) std::printf(" %7.1f x%4.2f", r->us, r->speedup);
      }
      std::printf("\n");
    }
  for (const E2E& e : e2e)
    std::printf("e2e %-16s %9.1f us  x%.2f\n", e.variant.c_str(), e.us, e.speedup);
  std::printf("u4 M=1 bandwidth: ");
  for (const Row& r : rows)
    if (r.variant == "u4" && r.m == 1) std::printf("%dx%d %.0f%% ", r.n, r.k, r.pct_copy);
  std::printf("of copy bandwidth %.0f GB/s\n", c.copy_gbps);
  if (g_hold_timeouts)  // the host did not enqueue within 1 s: those replays include host time
    std::printf("kernels_bench: WARNING: %d timed replays were not held to the end of their enqueue\n",
                g_hold_timeouts);
  free_workspace(c.ws);
  cudaFree(c.x);
  cudaFree(c.y);
  cudaFree(c.sink);
  cudaFree(cublas_ws);
  cublasDestroy(c.cublas);
  if (g_failures) {
    std::printf("kernels_bench: %d correctness check(s) FAILED\n", g_failures);
    return 1;
  }
  return 0;
}
