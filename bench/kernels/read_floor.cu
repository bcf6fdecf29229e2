// A plain streaming read, the floor a memory-bound GEMV of the same bytes can approach: every
// thread reads 16-byte words with a grid stride (four independent loads in flight per iteration)
// and folds them with XOR; the result is stored only if it matches a value it never has, which
// keeps the loads alive without adding writes.
#include "read_floor.h"

#include <cstdint>

namespace {

__global__ void stream_read_kernel(const uint4* __restrict__ p, std::size_t words, unsigned* sink) {
  const std::size_t stride = static_cast<std::size_t>(gridDim.x) * blockDim.x;
  std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  unsigned acc = 0;
  for (; i + 3 * stride < words; i += 4 * stride) {
    const uint4 a = __ldg(p + i), b = __ldg(p + i + stride), c = __ldg(p + i + 2 * stride),
                d = __ldg(p + i + 3 * stride);
    acc ^= a.x ^ a.y ^ a.z ^ a.w ^ b.x ^ b.y ^ b.z ^ b.w ^ c.x ^ c.y ^ c.z ^ c.w ^ d.x ^ d.y ^ d.z ^ d.w;
  }
  for (; i < words; i += stride) {
    const uint4 a = __ldg(p + i);
    acc ^= a.x ^ a.y ^ a.z ^ a.w;
  }
  if (acc == 0x9E3779B9u) *sink = acc;
}

}  // namespace

cudaError_t launch_stream_read(const void* data, std::size_t bytes, unsigned* sink, int blocks, cudaStream_t s) {
  stream_read_kernel<<<blocks, 256, 0, s>>>(static_cast<const uint4*>(data), bytes / 16, sink);
  return cudaGetLastError();
}

// ---------------------------------------------------------------- reads in the GEMV's pattern
//
// The stream-K GEMV's access pattern without its arithmetic: 1 KB units (a 4-bit 16 x 128 tile),
// whole row tiles of G units per block, a contiguous run of units per warp, each lane reading the
// 16-byte words at lane * 16 and 512 + lane * 16 of every unit, loaded L2-evict-first. DEPTH units
// are in flight per warp: in registers (a ring of DEPTH batches, as the GEMV's), or copied with
// cp.async into a per-warp shared-memory ring and read back from there.

namespace {

__device__ __forceinline__ uint4 ld_evict_first(const void* p) {
  uint4 v;
  std::uint64_t pol;
  asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(pol));
  asm volatile("ld.global.nc.L1::no_allocate.L2::cache_hint.v4.u32 {%0, %1, %2, %3}, [%4], %5;\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p), "l"(pol));
  return v;
}

__device__ __forceinline__ unsigned fold(uint4 v) { return v.x ^ v.y ^ v.z ^ v.w; }

struct Run {
  const unsigned char* base;
  int nu;
};

__device__ __forceinline__ Run warp_run(const unsigned char* data, int R, int G) {
  const int warps = blockDim.x / 32, warp = threadIdx.x / 32;
  const long long c0 = static_cast<long long>(blockIdx.x) * R / gridDim.x * G;
  const long long c1 = static_cast<long long>(blockIdx.x + 1) * R / gridDim.x * G;
  const long long t0 = c0 + warp * (c1 - c0) / warps;
  const long long t1 = c0 + (warp + 1) * (c1 - c0) / warps;
  return {data + t0 * 1024, static_cast<int>(t1 - t0)};
}

template <int DEPTH>
__global__ void runs_reg_kernel(const unsigned char* data, int R, int G, unsigned* sink) {
  const Run run = warp_run(data, R, G);
  const int lane = threadIdx.x % 32;
  uint4 a[DEPTH], b[DEPTH];
  unsigned acc = 0;
#pragma unroll
  for (int s = 0; s < DEPTH - 1; ++s)
    if (s < run.nu) {
      a[s] = ld_evict_first(run.base + s * 1024 + lane * 16);
      b[s] = ld_evict_first(run.base + s * 1024 + 512 + lane * 16);
    }
  for (int j0 = 0; j0 < run.nu; j0 += DEPTH) {
#pragma unroll
    for (int s = 0; s < DEPTH; ++s) {
      const int r = (s + DEPTH - 1) % DEPTH, jn = j0 + s + DEPTH - 1;
      if (jn < run.nu) {
        a[r] = ld_evict_first(run.base + static_cast<long long>(jn) * 1024 + lane * 16);
        b[r] = ld_evict_first(run.base + static_cast<long long>(jn) * 1024 + 512 + lane * 16);
      }
      if (j0 + s < run.nu) acc ^= fold(a[s]) ^ fold(b[s]);
    }
  }
  if (acc == 0x9E3779B9u) *sink = acc;
}

__device__ __forceinline__ void cp16_evict_first(unsigned dst, const void* src) {
  std::uint64_t pol;
  asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(pol));
  asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "l"(pol)
               : "memory");
}

template <int DEPTH>
__global__ void runs_cp_kernel(const unsigned char* data, int R, int G, unsigned* sink) {
  extern __shared__ __align__(16) unsigned char ring[];
  const Run run = warp_run(data, R, G);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  unsigned char* mine = ring + warp * DEPTH * 1024;
  const unsigned mine_s = static_cast<unsigned>(__cvta_generic_to_shared(mine));
  auto issue = [&](int j) {
    if (j < run.nu) {
      const int s = j % DEPTH;
      cp16_evict_first(mine_s + s * 1024 + lane * 16, run.base + static_cast<long long>(j) * 1024 + lane * 16);
      cp16_evict_first(mine_s + s * 1024 + 512 + lane * 16,
                       run.base + static_cast<long long>(j) * 1024 + 512 + lane * 16);
    }
    asm volatile("cp.async.commit_group;\n" ::: "memory");
  };
  for (int j = 0; j < DEPTH; ++j) issue(j);
  unsigned acc = 0;
  for (int j = 0; j < run.nu; ++j) {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(DEPTH - 1) : "memory");
    const int s = j % DEPTH;
    const uint4 a = *reinterpret_cast<const uint4*>(mine + s * 1024 + lane * 16);
    const uint4 b = *reinterpret_cast<const uint4*>(mine + s * 1024 + 512 + lane * 16);
    acc ^= fold(a) ^ fold(b);
    issue(j + DEPTH);
  }
  if (acc == 0x9E3779B9u) *sink = acc;
}

template <class K>
cudaError_t launch_runs(K kernel, const ReadPattern& rp, int sms, const void* data, int R, int G, unsigned* sink,
                        std::size_t smem, cudaStream_t s) {
  if (smem > 48 * 1024) {
    const cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                               static_cast<int>(smem));
    if (e != cudaSuccess) return e;
  }
  kernel<<<rp.blocks_per_sm * sms, rp.warps * 32, smem, s>>>(static_cast<const unsigned char*>(data), R, G, sink);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_pattern_read(const void* data, int rows, int cols, unsigned* sink, const ReadPattern& rp, int sms,
                                cudaStream_t s) {
  const int R = rows / 16, G = cols / 128;
  if (rp.shared) {
    const std::size_t smem = static_cast<std::size_t>(rp.warps) * rp.depth * 1024;
    switch (rp.depth) {
      case 4: return launch_runs(runs_cp_kernel<4>, rp, sms, data, R, G, sink, smem, s);
      case 8: return launch_runs(runs_cp_kernel<8>, rp, sms, data, R, G, sink, smem, s);
      case 12: return launch_runs(runs_cp_kernel<12>, rp, sms, data, R, G, sink, smem, s);
      default: return cudaErrorInvalidValue;
    }
  }
  switch (rp.depth) {
    case 2: return launch_runs(runs_reg_kernel<2>, rp, sms, data, R, G, sink, 0, s);
    case 4: return launch_runs(runs_reg_kernel<4>, rp, sms, data, R, G, sink, 0, s);
    case 6: return launch_runs(runs_reg_kernel<6>, rp, sms, data, R, G, sink, 0, s);
    case 8: return launch_runs(runs_reg_kernel<8>, rp, sms, data, R, G, sink, 0, s);
    default: return cudaErrorInvalidValue;
  }
}
