// GPU unit test: the CUDA kernels against the CPU reference on the packed format, for every width
// {2,3,4,8}, both layouts, mixed maps, several shapes, M in {1,5,16,128} (and a chunked M), and
// several launch configurations (split-K included, run twice to check the self-cleaning
// workspace). Exit code 0 = pass; without a CUDA device it prints "SKIP: no CUDA device" and
// exits 0.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "hawq/kernels/format.h"
#include "hawq/kernels/gemm.h"

using namespace hawq::kernels;

namespace {

int failures = 0, checks = 0;

#define CUDA_OK(expr)                                                                 \
  do {                                                                                \
    const cudaError_t e_ = (expr);                                                    \
    if (e_ != cudaSuccess) {                                                          \
      std::printf("FAIL %s:%d: %s: %s\n", __FILE__, __LINE__, #expr, cudaGetErrorString(e_)); \
      std::exit(1);                                                                   \
    }                                                                                 \
  } while (0)

std::vector<float> random_weights(int n, int k, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.f, 0.02f);
  std::vector<float> w(static_cast<std::size_t>(n) * k);
  for (auto& v : w) {
    v = nd(rng);
    if (v == 0.f) v = 1e-3f;
  }
  return w;
}

std::vector<std::uint16_t> random_x(int m, int k, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> ud(-1.f, 1.f);
  std::vector<std::uint16_t> x(static_cast<std::size_t>(m) * k);
  for (auto& v : x) {
    float f = ud(rng);
    if (std::fabs(f) < 1e-3f) f = 0.5f;
    v = float_to_half(f);
  }
  return x;
}

std::vector<BitBlock> tile_map(int n, int k, int tr, int tc, const std::vector<int>& widths,
                               std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<BitBlock> blocks;
  for (int r = 0; r < n; r += tr)
    for (int c = 0; c < k; c += tc)
      blocks.push_back({r, std::min(n, r + tr), c, std::min(k, c + tc),
                        widths[rng() % widths.size()]});
  return blocks;
}

std::vector<BitBlock> run_map(int n, int k, const std::vector<int>& widths, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<BitBlock> blocks;
  for (int c = 0; c < k; c += kGroupSize)
    for (int r = 0; r < n;) {
      const int r1 = std::min(n, r + 1 + static_cast<int>(rng() % 13));
      blocks.push_back({r, r1, c, c + kGroupSize, widths[rng() % widths.size()]});
      r = r1;
    }
  return blocks;
}

void run_case(const std::string& name, int n, int k, Layout layout,
              const std::vector<BitBlock>& blocks, const std::vector<int>& ms, Workspace& ws) {
  const std::vector<float> w = random_weights(n, k, 77 + n * 3 + k);
  const PackedWeights p = pack_weights(w.data(), n, k, blocks, layout);
  GpuWeights g(p);
  int mmax = 0;
  for (int m : ms) mmax = std::max(mmax, m);
  const std::vector<std::uint16_t> x = random_x(mmax, k, 5 + n + k);
  std::vector<int> all_rows;
  for (int i = 0; i < mmax; ++i) all_rows.push_back(i);
  std::vector<double> ref;
  reference_gemm(p, x.data(), all_rows, ref);

  __half *dx = nullptr, *dy = nullptr;
  CUDA_OK(cudaMalloc(&dx, x.size() * 2));
  CUDA_OK(cudaMalloc(&dy, static_cast<std::size_t>(mmax) * n * 2));
  CUDA_OK(cudaMemcpy(dx, x.data(), x.size() * 2, cudaMemcpyHostToDevice));
  std::vector<std::uint16_t> y(static_cast<std::size_t>(mmax) * n);
  // gemv = 1, 2 or 4: the M = 1 aligned GEMV path (other M and the unaligned layout ignore it),
  // stream_k its stream-K form (whole_tiles: see gemm.h), blocks its grid (0 = one wave).
  const LaunchConfig configs[] = {{0, 0, false},    {4, 1, false},    {8, 1, false},    {4, 3, false},
                                  {8, 7, false},    {4, 3, true},     {8, 1, true},     {4, 1, false, 4},
                                  {8, 3, false, 4}, {4, 2, true, 4},  {8, 1, true, 2},  {4, 4, false, 2},
                                  {8, 2, false, 2}, {4, 3, false, 1}, {8, 1, true, 1},
                                  // stream-K GEMV, equal runs: one wave; few blocks (runs span tiles)
                                  {8, 1, false, 1, true}, {4, 1, true, 2, true}, {8, 1, false, 4, true},
                                  {4, 1, false, 1, true, false, 3}, {8, 1, true, 2, true, false, 2},
                                  {4, 1, false, 4, true, false, 5},
                                  // ... whole row tiles per block: one wave, large blocks, few blocks
                                  {32, 1, false, 1, true, true}, {16, 1, true, 2, true, true},
                                  {8, 1, false, 1, true, true, 3}, {12, 1, false, 4, true, true, 2},
                                  {1, 1, false, 1, true, true, 0}, {2, 1, false, 4, true, false, 0}, {12, 1, true, 2, true, true, 2},
                                  // ... three or four one-unit batches in flight per warp
                                  {16, 1, false, 1, true, true, 0, 4}, {8, 1, true, 1, true, false, 0, 3},
                                  {12, 1, false, 1, true, true, 3, 3}, {4, 1, false, 1, true, false, 5, 4},
                                  // ... each warp staging the x of its own units
                                  {16, 1, false, 1, true, true, 0, 2, true}, {8, 1, true, 2, true, false, 0, 2, true},
                                  {12, 1, true, 1, true, true, 3, 3, true}, {4, 1, false, 4, true, false, 5, 2, true},
                                  {32, 1, false, 1, true, false, 0, 4, true},
                                  // ... the longer block runs spread over the grid
                                  {8, 1, false, 1, true, true, 0, 4, true, true}, {4, 1, false, 1, true, true, 3, 3, true, true},
                                  {8, 1, true, 1, true, false, 5, 4, true, true}, {2, 1, false, 2, true, false, 0, 2, false, true}};
  for (int m : ms) {
    std::vector<int> rows;
    for (int i = 0; i < m; ++i) rows.push_back(i);
    std::vector<double> ref_m(ref.begin(), ref.begin() + static_cast<std::size_t>(m) * n);
    for (const LaunchConfig& cfg : configs)
      for (int rep = 0; rep < 2; ++rep) {
        CUDA_OK(cudaMemset(dy, 0xFF, static_cast<std::size_t>(m) * n * 2));  // NaN poison
        // with programmatic dependent launch: a chain of three launches sharing the workspace
        for (int chain = 0; chain < (cfg.pdl ? 3 : 1); ++chain)
          CUDA_OK(mixed_gemm(g.view(), dx, dy, m, ws, cfg));
        CUDA_OK(cudaDeviceSynchronize());
        CUDA_OK(cudaMemcpy(y.data(), dy, static_cast<std::size_t>(m) * n * 2, cudaMemcpyDeviceToHost));
        const double rel = relative_error(y.data(), n, rows, ref_m);
        ++checks;
        if (!(rel < 2e-3)) {
          ++failures;
          std::printf("FAIL %-30s n=%d k=%d m=%d warps=%d splits=%d pdl=%d gemv=%d sk=%d whole=%d blocks=%d "
                      "stages=%d xw=%d spread=%d rep=%d: rel. error %.3g\n", name.c_str(), n, k, m, cfg.warps, cfg.splits,
                      cfg.pdl ? 1 : 0, cfg.gemv, cfg.stream_k ? 1 : 0, cfg.whole_tiles ? 1 : 0, cfg.blocks, cfg.stages,
                      cfg.warp_x ? 1 : 0, cfg.spread_runs ? 1 : 0, rep, rel);
        } else if (cfg.warps == 0 && rep == 0) {
          std::printf("  ok %-30s n=%-5d k=%-5d m=%-3d rel. error %.2e\n", name.c_str(), n, k, m, rel);
        }
      }
  }
  cudaFree(dx);
  cudaFree(dy);
}

// Programmatic dependent launch where each GEMV reads the previous one's output: y1 = W x,
// y2 = W y1, y3 = W y2 launched back to back on one stream (n = k), against the CPU reference
// chained the same way (each y rounded to fp16). A kernel that read x before waiting for the
// previous kernel would read the NaN poison of y1 / y2.
void run_pdl_chain(const std::string& name, int n, const std::vector<BitBlock>& blocks) {
  const std::vector<float> w = random_weights(n, n, 91 + n);
  const PackedWeights p = pack_weights(w.data(), n, n, blocks, Layout::kAligned);
  GpuWeights g(p);
  Workspace ws = make_workspace(n);
  std::vector<std::uint16_t> x = random_x(1, n, 17 + n);
  const std::vector<int> row0 = {0};
  std::vector<double> ref;
  std::vector<std::uint16_t> xr = x;
  for (int step = 0; step < 3; ++step) {
    reference_gemm(p, xr.data(), row0, ref);
    for (int i = 0; i < n; ++i) xr[i] = float_to_half(static_cast<float>(ref[i]));
  }
  __half* buf[4];
  for (auto& b : buf) CUDA_OK(cudaMalloc(&b, static_cast<std::size_t>(n) * 2));
  CUDA_OK(cudaMemcpy(buf[0], x.data(), static_cast<std::size_t>(n) * 2, cudaMemcpyHostToDevice));
  const LaunchConfig configs[] = {{0, 0, true},
                                  {8, 1, true, 1, true, true, 0, 4, true},
                                  {4, 1, true, 1, true, false, 0, 3, true, true},
                                  {8, 1, true, 2, true, true},
                                  {4, 2, true, 2}};
  std::vector<std::uint16_t> y(n);
  for (const LaunchConfig& cfg : configs) {
    for (int i = 1; i < 4; ++i) CUDA_OK(cudaMemset(buf[i], 0xFF, static_cast<std::size_t>(n) * 2));
    CUDA_OK(cudaDeviceSynchronize());
    for (int i = 0; i < 3; ++i) CUDA_OK(mixed_gemm(g.view(), buf[i], buf[i + 1], 1, ws, cfg));
    CUDA_OK(cudaDeviceSynchronize());
    CUDA_OK(cudaMemcpy(y.data(), buf[3], static_cast<std::size_t>(n) * 2, cudaMemcpyDeviceToHost));
    const double rel = relative_error(y.data(), n, row0, ref);
    ++checks;
    if (!(rel < 2e-3)) {
      ++failures;
      std::printf("FAIL %-30s n=k=%d PDL chain warps=%d gemv=%d sk=%d whole=%d stages=%d xw=%d: rel. error %.3g\n",
                  name.c_str(), n, cfg.warps, cfg.gemv, cfg.stream_k ? 1 : 0, cfg.whole_tiles ? 1 : 0, cfg.stages,
                  cfg.warp_x ? 1 : 0, rel);
    }
  }
  for (auto& b : buf) cudaFree(b);
  free_workspace(ws);
}

// bytes_read: the M = 1 GEMV on a uniform matrix skips the metadata; every other call reads it.
void check_bytes_read() {
  const int n = 208, k = 640;
  const std::vector<float> w = random_weights(n, k, 5);
  const PackedWeights u = pack_weights(w.data(), n, k, uniform_blocks(n, k, 4), Layout::kAligned);
  const PackedWeights mx = pack_weights(w.data(), n, k, tile_map(n, k, 16, 128, {2, 4, 8}, 3), Layout::kAligned);
  GpuWeights gu(u), gm(mx);
  const std::size_t meta = u.meta.size() * 4;
  const struct {
    const char* what;
    std::size_t got, want;
  } cases[] = {
      {"uniform, M = 1, default", bytes_read(gu.view(), 1), u.device_bytes() - meta},
      {"uniform, M = 1, stream-K GEMV", bytes_read(gu.view(), 1, {8, 1, false, 1, true, true}), u.device_bytes() - meta},
      {"uniform, M = 1, the GEMM", bytes_read(gu.view(), 1, {4, 2}), u.device_bytes()},
      {"uniform, M = 16", bytes_read(gu.view(), 16), u.device_bytes()},
      {"mixed, M = 1, default", bytes_read(gm.view(), 1), mx.device_bytes()},
  };
  for (const auto& c : cases) {
    ++checks;
    if (c.got != c.want) {
      ++failures;
      std::printf("FAIL bytes_read %s: %zu, expected %zu\n", c.what, c.got, c.want);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::string(argv[1]) == "--quick";  // small set for compute-sanitizer
  int ndev = 0;
  if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
    std::printf("SKIP: no CUDA device\n");
    return 0;
  }
  cudaDeviceProp prop{};
  CUDA_OK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s (sm_%d%d, %d SMs)\n", prop.name, prop.major, prop.minor,
              prop.multiProcessorCount);
  if (prop.major < 8) {
    std::printf("SKIP: needs compute capability 8.0 or newer\n");
    return 0;
  }
  check_bytes_read();
  Workspace ws = make_workspace(4096);
  if (quick) {
    run_case("uniform 3-bit aligned", 208, 640, Layout::kAligned, uniform_blocks(208, 640, 3), {1, 16}, ws);
    run_case("mixed {2,3,4,8} row runs unaligned", 208, 768, Layout::kUnaligned,
             run_map(208, 768, {2, 3, 4, 8}, 4), {5, 70}, ws);
    run_case("mixed {2,3,4,8} 16x128 aligned", 208, 768, Layout::kAligned,
             tile_map(208, 768, 16, 128, {2, 3, 4, 8}, 2), {128}, ws);
    free_workspace(ws);
    std::printf("kernels_test --quick: %d of %d checks failed\n", failures, checks);
    return failures ? 1 : 0;
  }
  const std::vector<int> ms = {1, 5, 16, 128};
  for (Layout layout : {Layout::kAligned, Layout::kUnaligned})
    for (int b : {2, 3, 4, 8}) {
      const std::string name = std::string("uniform ") + std::to_string(b) + "-bit " + layout_name(layout);
      run_case(name, 208, 640, layout, uniform_blocks(208, 640, b), ms, ws);
      run_case(name, 512, 1024, layout, uniform_blocks(512, 1024, b), {1, 16}, ws);
    }
  run_case("mixed {2,4,8} 128x128 aligned", 512, 1024, Layout::kAligned,
           tile_map(512, 1024, 128, 128, {2, 4, 8}, 1), ms, ws);
  run_case("mixed {2,3,4,8} 16x128 aligned", 208, 768, Layout::kAligned,
           tile_map(208, 768, 16, 128, {2, 3, 4, 8}, 2), ms, ws);
  run_case("mixed {2,4,8} row runs unaligned", 512, 1024, Layout::kUnaligned,
           run_map(512, 1024, {2, 4, 8}, 3), ms, ws);
  run_case("mixed {2,3,4,8} row runs unaligned", 208, 768, Layout::kUnaligned,
           run_map(208, 768, {2, 3, 4, 8}, 4), ms, ws);
  run_case("mixed {2,4} aligned, M chunks", 256, 512, Layout::kAligned,
           tile_map(256, 512, 16, 128, {2, 4}, 5), {33, 70, 200}, ws);
  run_case("mixed {2,4} unaligned, M chunks", 256, 512, Layout::kUnaligned,
           run_map(256, 512, {2, 4}, 6), {33, 70, 200}, ws);
  free_workspace(ws);
  for (int n : {512, 2048}) {
    run_pdl_chain("uniform 4-bit aligned", n, uniform_blocks(n, n, 4));
    run_pdl_chain("mixed {2,4,8} aligned", n, tile_map(n, n, 16, 128, {2, 4, 8}, 7));
  }
  if (failures) {
    std::printf("kernels_test: %d of %d checks failed\n", failures, checks);
    return 1;
  }
  std::printf("kernels_test: all %d checks passed\n", checks);
  return 0;
}
