// Issue rate of the tensor-core instruction the M = 1 GEMV uses (mma.sync m16n8k16, fp16 inputs,
// fp32 accumulators): every warp keeps eight independent accumulators (no dependency between
// consecutive mma), one block per SM, 4..32 warps per SM. Prints cycles per mma per SM sub-partition
// (clock64 of block 0) and the rate in TFLOP/s (events), which sets how much of the GEMV's time the
// eight mma of each 1 KB unit can take.
//
//   mma_rate [iterations]
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace {

__global__ void mma_loop(float* out, int iters, long long* cycles) {
  float d[8][4] = {};
  const std::uint32_t a0 = threadIdx.x, a1 = a0 * 3u, a2 = a0 * 5u, a3 = a0 * 7u, b0 = a0 ^ 9u, b1 = a0 ^ 11u;
  const long long t0 = clock64();
  for (int i = 0; i < iters; ++i) {
#pragma unroll
    for (int c = 0; c < 8; ++c)
      asm volatile(
          "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
          "{%0, %1, %2, %3};\n"
          : "+f"(d[c][0]), "+f"(d[c][1]), "+f"(d[c][2]), "+f"(d[c][3])
          : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  }
  const long long t1 = clock64();
  float s = 0.f;
  for (int c = 0; c < 8; ++c) s += d[c][0] + d[c][1] + d[c][2] + d[c][3];
  out[blockIdx.x * blockDim.x + threadIdx.x] = s;  // keeps the accumulators alive
  if (threadIdx.x == 0 && blockIdx.x == 0) *cycles = t1 - t0;
}

int check(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return 0;
  std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  const int iters = argc > 1 ? std::atoi(argv[1]) : 4096;
  if (iters <= 0) {
    std::fprintf(stderr, "usage: mma_rate [iterations > 0]\n");
    return 2;
  }
  int dev = 0, sms = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), "SM count");
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, dev), "device properties");
  float* out = nullptr;
  long long* cycles = nullptr;
  check(cudaMalloc(&out, static_cast<std::size_t>(sms) * 1024 * sizeof(float)), "cudaMalloc");
  check(cudaMalloc(&cycles, sizeof(long long)), "cudaMalloc");
  cudaEvent_t a, b;
  check(cudaEventCreate(&a), "event");
  check(cudaEventCreate(&b), "event");
  std::printf("%s, %d SMs: mma.sync.m16n8k16 f16 x f16 -> f32, 8 independent accumulators per warp\n", prop.name, sms);
  for (int warps : {4, 8, 16, 32}) {
    mma_loop<<<sms, warps * 32>>>(out, iters, cycles);  // warm-up
    check(cudaEventRecord(a), "record");
    mma_loop<<<sms, warps * 32>>>(out, iters, cycles);
    check(cudaEventRecord(b), "record");
    check(cudaEventSynchronize(b), "kernel");
    float ms = 0.f;
    check(cudaEventElapsedTime(&ms, a, b), "elapsed");
    long long c = 0;
    check(cudaMemcpy(&c, cycles, sizeof c, cudaMemcpyDeviceToHost), "copy");
    const double per_smsp = static_cast<double>(iters) * 8 * warps / 4;  // four sub-partitions per SM
    const double flops = 2.0 * 16 * 8 * 16 * static_cast<double>(iters) * 8 * warps * sms;
    std::printf("  %2d warps per SM: %.1f cycles per mma per sub-partition, %.0f TFLOP/s\n", warps, c / per_smsp,
                flops / (ms * 1e-3) / 1e12);
  }
  return 0;
}
