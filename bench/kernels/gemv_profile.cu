// A profiler target: the default M = 1 GEMV (LaunchConfig{}) of a random uniform 4-bit N x K matrix,
// eight calls over four weight copies, nothing else on the device. scripts/kernels_profile.sh runs
// it under Nsight Compute (the fifth call is profiled, its caches flushed first).
//
//   gemv_profile [N K]      (default 11008 4096)
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "hawq/kernels/format.h"
#include "hawq/kernels/gemm.h"

using namespace hawq::kernels;

int main(int argc, char** argv) {
  const int n = argc > 2 ? std::atoi(argv[1]) : 11008, k = argc > 2 ? std::atoi(argv[2]) : 4096;
  if (n <= 0 || k <= 0 || n % kTileRows || k % kGroupSize) {
    std::fprintf(stderr, "usage: gemv_profile [N K] (N a multiple of %d, K of %d)\n", kTileRows, kGroupSize);
    return 2;
  }
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.f, 0.02f);
  std::vector<float> w(static_cast<std::size_t>(n) * k);
  for (float& v : w) v = normal(rng);
  const PackedWeights p = pack_weights(w.data(), n, k, uniform_blocks(n, k, 4), Layout::kAligned);
  std::vector<GpuWeights> copies;
  for (int i = 0; i < 4; ++i) copies.emplace_back(p);
  std::uniform_real_distribution<float> uniform(-1.f, 1.f);
  std::vector<__half> x(static_cast<std::size_t>(k));
  for (__half& v : x) v = __float2half(uniform(rng));
  __half *dx = nullptr, *dy = nullptr;
  if (cudaMalloc(&dx, x.size() * sizeof(__half)) != cudaSuccess ||
      cudaMalloc(&dy, static_cast<std::size_t>(n) * sizeof(__half)) != cudaSuccess) {
    std::fprintf(stderr, "cudaMalloc failed\n");
    return 1;
  }
  cudaMemcpy(dx, x.data(), x.size() * sizeof(__half), cudaMemcpyHostToDevice);
  Workspace ws = make_workspace(n);
  for (int i = 0; i < 8; ++i) {
    const cudaError_t e = mixed_gemm(copies[i % 4].view(), dx, dy, 1, ws, LaunchConfig{});
    if (e != cudaSuccess) {
      std::fprintf(stderr, "mixed_gemm: %s\n", cudaGetErrorString(e));
      return 1;
    }
  }
  const cudaError_t e = cudaDeviceSynchronize();
  std::printf("gemv_profile %dx%d: %s\n", n, k, cudaGetErrorString(e));
  free_workspace(ws);
  cudaFree(dx);
  cudaFree(dy);
  return e == cudaSuccess ? 0 : 1;
}
