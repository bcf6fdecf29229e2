// Mixed-precision weight-only GEMM kernels (see docs/KERNELS.md for the design).
//
// Grid: x = blocks of WARPS row tiles (16 rows each, one tile per warp), y = K splits.
// Every block walks the groups (128 columns) of its K split through a 4-stage cp.async ring:
//   * the x slice of the group (M x 128 fp16) is copied by all threads into a shared ring slot;
//   * each lane copies the bytes of its own fragments (and its scale pair and metadata word)
//     into a private part of its warp's ring slot, so only the x slice needs the block barrier.
// A warp then decodes its fragments (fp16 magic-number trick, exact integers q - z), multiplies
// them with x on the tensor cores (mma.sync m16n8k16, fp32 accumulation) and applies the fp32
// group scale to the group's partial sums (M <= 32) or multiplies the scale in before the mma
// (larger M, where per-group accumulators would cost too many registers).
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "hawq/kernels/fragment.h"
#include "hawq/kernels/gemm.h"

namespace hawq::kernels {

namespace {

constexpr int kStages = 4;
constexpr int kXRowBytes = 272;  // 128 fp16 + 16 bytes of padding: conflict-free ldmatrix rows
constexpr int kSlotTail = 384;   // per warp slot: 128 B scale pairs + 256 B metadata words
constexpr int kMaxChunkM = 128;

struct Params {
  const std::uint8_t* data;
  const std::uint32_t* meta;
  const std::uint32_t* scales;
  const __half* x;
  __half* y;
  float* ws;
  unsigned* counters;
  int n, k, m, groups, row_tiles, splits;
  int data_bytes;  // code bytes per warp slot (chunks of 512 B)
  int row2_off;    // unaligned: offset of the second row's words in the slot
  int uniform_bits;  // GEMV: every unit has this width at offset index * unit bytes (0 = read meta)
  int sk_tiles;      // stream-K GEMV: row tiles one block can touch (shared row accumulators)
  int sk_units;      // stream-K GEMV: most units of one warp's run (metadata slots per warp)
  int sk_whole;      // stream-K GEMV: block runs are whole row tiles (nothing combined across blocks)
  // stream-K GEMV partition: block b holds sk_q items of sk_item units (whole tiles: a row tile of
  // G units; balanced: one unit), sk_r of the blocks one more: the first sk_r (block b starts at
  // item b * sk_q + min(b, sk_r)), or with sk_spread blocks spread over the grid (block b starts at
  // floor(b * items / blocks)); inside a block of n items, warp w holds sk_uq[n > sk_q] units, the
  // first sk_ur[n > sk_q] warps one more. sk_inv_g = 1 / groups, sk_inv_nb = 1 / blocks.
  int sk_q, sk_r, sk_item, sk_uq[2], sk_ur[2], sk_spread;
  float sk_inv_g, sk_inv_nb;
  int sk_sunits;  // stream-K GEMV with x per warp: most units of a warp's run (its staged scales)
};

struct DevOps {
  static __device__ __forceinline__ std::uint32_t fma2(std::uint32_t a, std::uint32_t b,
                                                       std::uint32_t c) {
    std::uint32_t d;
    asm("fma.rn.f16x2 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    return d;
  }
  static __device__ __forceinline__ std::uint32_t add2(std::uint32_t a, std::uint32_t b) {
    std::uint32_t d;
    asm("add.rn.f16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
    return d;
  }
  static __device__ __forceinline__ std::uint32_t mul2(std::uint32_t a, std::uint32_t b) {
    std::uint32_t d;
    asm("mul.rn.f16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
    return d;
  }
  // (x & mask) | magic in one LOP3 (the compiler emits two when both constants are immediates)
  static __device__ __forceinline__ std::uint32_t and_or(std::uint32_t x, std::uint32_t mask,
                                                         std::uint32_t magic) {
    std::uint32_t d;
    asm("lop3.b32 %0, %1, %2, %3, 0xEA;" : "=r"(d) : "r"(x), "r"(mask), "r"(magic));
    return d;
  }
  static __device__ __forceinline__ std::uint32_t prmt(std::uint32_t x, std::uint32_t y,
                                                       std::uint32_t s) {
    return __byte_perm(x, y, s);
  }
};

__device__ __forceinline__ std::uint32_t smem_u32(const void* p) {
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void cp16(std::uint32_t dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst),
               "l"(__cvta_generic_to_global(src))
               : "memory");
}
__device__ __forceinline__ void cp8(std::uint32_t dst, const void* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8;\n" ::"r"(dst),
               "l"(__cvta_generic_to_global(src))
               : "memory");
}
__device__ __forceinline__ void cp4(std::uint32_t dst, const void* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(dst),
               "l"(__cvta_generic_to_global(src))
               : "memory");
}
__device__ __forceinline__ void cp_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// Programmatic dependent launch (sm_90): let the next kernel in the stream start its prologue
// early / wait until the previous kernel's results are visible. No-ops without the launch attribute.
__device__ __forceinline__ void grid_dep_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void grid_dep_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void ldsm_x4(std::uint32_t& r0, std::uint32_t& r1, std::uint32_t& r2,
                                        std::uint32_t& r3, std::uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
               : "r"(addr));
}

__device__ __forceinline__ void mma16816(float (&d)[4], const std::uint32_t (&a)[4],
                                         std::uint32_t b0, std::uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ float half_bits_to_float(std::uint32_t h) {
  return __half2float(__ushort_as_half(static_cast<unsigned short>(h)));
}

// B fragments (x^T) of k-step kt for all NT (>= 2) n-tiles: b[nt][0..1], two n-tiles per ldmatrix.x4.
template <int NT>
__device__ __forceinline__ void load_b(std::uint32_t (&b)[NT][2], std::uint32_t xaddr, int kt,
                                       int lane) {
  const int i = lane / 8, row = lane % 8;
#pragma unroll
  for (int q = 0; q < NT / 2; ++q)
    ldsm_x4(b[2 * q][0], b[2 * q][1], b[2 * q + 1][0], b[2 * q + 1][1],
            xaddr + ((2 * q + i / 2) * 8 + row) * kXRowBytes + (kt * 16 + (i & 1) * 8) * 2);
}

// Adds one group's contribution of a warp's 16-row tile given a function that produces the four
// A registers of k-step kt.
template <int NT, bool kPost, class AFn>
__device__ __forceinline__ void group_mma(float (&acc)[NT][4], std::uint32_t xaddr, int lane,
                                          std::uint32_t sc, AFn a_of) {
  float part[NT][4];
  if constexpr (kPost) {
#pragma unroll
    for (int t = 0; t < NT; ++t)
#pragma unroll
      for (int i = 0; i < 4; ++i) part[t][i] = 0.f;
  }
  // M <= 8: the B fragments of all 8 k-steps in four ldmatrix.x4 (two k-steps each).
  std::uint32_t b1[NT == 1 ? frag::kKSteps : 1][2];
  if constexpr (NT == 1) {
    const int i = lane / 8, row = lane % 8;
#pragma unroll
    for (int q = 0; q < frag::kKSteps / 2; ++q)
      ldsm_x4(b1[2 * q][0], b1[2 * q][1], b1[2 * q + 1][0], b1[2 * q + 1][1],
              xaddr + row * kXRowBytes + ((2 * q + i / 2) * 16 + (i & 1) * 8) * 2);
  }
#pragma unroll
  for (int kt = 0; kt < frag::kKSteps; ++kt) {
    std::uint32_t b[NT][2];
    if constexpr (NT == 1) {
      b[0][0] = b1[kt][0];
      b[0][1] = b1[kt][1];
    } else {
      load_b<NT>(b, xaddr, kt, lane);
    }
    std::uint32_t a[4];
    a_of(kt, a);
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      if constexpr (kPost) mma16816(part[t], a, b[t][0], b[t][1]);
      else mma16816(acc[t], a, b[t][0], b[t][1]);
    }
  }
  if constexpr (kPost) {
    const float s1 = half_bits_to_float(sc & 0xFFFFu), s2 = half_bits_to_float(sc >> 16);
#pragma unroll
    for (int t = 0; t < NT; ++t) {
      acc[t][0] = fmaf(s1, part[t][0], acc[t][0]);
      acc[t][1] = fmaf(s1, part[t][1], acc[t][1]);
      acc[t][2] = fmaf(s2, part[t][2], acc[t][2]);
      acc[t][3] = fmaf(s2, part[t][3], acc[t][3]);
    }
  }
}

// Aligned unit of width B: the lane's 2*B words are in 16-byte chunks of the slot.
template <int B, int NT, bool kPost>
__device__ __forceinline__ void unit_aligned(float (&acc)[NT][4], const std::uint8_t* slot,
                                             std::uint32_t xaddr, int lane, std::uint32_t sc) {
  constexpr int NW = 2 * B;
  std::uint32_t w[NW < 8 ? 8 : NW];
#pragma unroll
  for (int c = 0; c < (NW + 3) / 4; ++c) {
    if (NW - 4 * c >= 4) {
      const uint4 v = *reinterpret_cast<const uint4*>(slot + c * 512 + lane * 16);
      w[4 * c] = v.x; w[4 * c + 1] = v.y; w[4 * c + 2] = v.z; w[4 * c + 3] = v.w;
    } else {
      const uint2 v = *reinterpret_cast<const uint2*>(slot + c * 512 + lane * 16);
      w[4 * c] = v.x; w[4 * c + 1] = v.y;
    }
  }
  const std::uint32_t s1 = (sc & 0xFFFFu) * 0x10001u, s2 = (sc >> 16) * 0x10001u;
  group_mma<NT, kPost>(acc, xaddr, lane, sc, [&](int kt, std::uint32_t(&a)[4]) {
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      a[r] = frag::decode_pair<B, frag::kAlignedPairs, DevOps>(w, kt * 4 + r);
      if constexpr (!kPost) a[r] = DevOps::mul2(a[r], (r & 1) ? s2 : s1);
    }
  });
}

// Unaligned: the 16 pairs of one row of the lane (B words at `slot + 16*lane`, 512-byte chunks).
template <int B>
__device__ __forceinline__ void decode_row(std::uint32_t (&out)[16], const std::uint8_t* slot,
                                           int lane) {
  std::uint32_t w[8];
  if constexpr (B == 2) {
    const uint2 v = *reinterpret_cast<const uint2*>(slot + lane * 16);
    w[0] = v.x; w[1] = v.y;
  } else {
    const uint4 v = *reinterpret_cast<const uint4*>(slot + lane * 16);
    w[0] = v.x; w[1] = v.y; w[2] = v.z; w[3] = v.w;
    if constexpr (B == 8) {
      const uint4 u = *reinterpret_cast<const uint4*>(slot + 512 + lane * 16);
      w[4] = u.x; w[5] = u.y; w[6] = u.z; w[7] = u.w;
    }
  }
#pragma unroll
  for (int p = 0; p < frag::kRowPairs; ++p)
    out[p] = frag::decode_pair<B, frag::kRowPairs, DevOps>(w, p);
}

__device__ __forceinline__ void decode_row_any(std::uint32_t (&out)[16], const std::uint8_t* slot,
                                               int lane, int bits) {
  switch (bits) {
    case 2: decode_row<2>(out, slot, lane); break;
    case 3: decode_row<3>(out, slot, lane); break;
    case 4: decode_row<4>(out, slot, lane); break;
    default: decode_row<8>(out, slot, lane); break;
  }
}

// Copies one row's words of an unaligned row-group into the lane's part of the slot.
__device__ __forceinline__ void copy_row(std::uint32_t dst, const std::uint8_t* data,
                                         std::uint32_t meta, int tig) {
  const int b = meta & 15;
  const std::uint8_t* src = data + static_cast<std::size_t>(meta >> 4) * 16 + 4 * b * tig;
  switch (b) {
    case 2: cp8(dst, src); break;
    case 3: cp4(dst, src); cp4(dst + 4, src + 4); cp4(dst + 8, src + 8); break;
    case 4: cp16(dst, src); break;
    default: cp16(dst, src); cp16(dst + 512, src + 16); break;
  }
}

// Split-K end of a block, after its atomicAdds into the workspace: the last block of the row
// block to arrive converts the sums to fp16 into y and zeroes the workspace and its counter.
template <int WARPS>
__device__ __forceinline__ void finish_splits(const Params& p, int m, int& s_last) {
  constexpr int THREADS = WARPS * 32;
  const int tid = threadIdx.x, N = p.n;
  __threadfence();
  __syncthreads();
  if (tid == 0) s_last = atomicAdd(p.counters + blockIdx.x, 1u) == static_cast<unsigned>(p.splits - 1);
  __syncthreads();
  if (!s_last) return;
  __threadfence();
  const int row0 = blockIdx.x * WARPS * kTileRows;
  const int rows = min(WARPS * kTileRows, N - row0);
  for (int i = tid; i < rows * m; i += THREADS) {
    const std::size_t idx = static_cast<std::size_t>(i / rows) * N + row0 + i % rows;
    const float v = __ldcg(p.ws + idx);
    p.y[idx] = __float2half_rn(v);
    __stcg(p.ws + idx, 0.f);
  }
  if (tid == 0) p.counters[blockIdx.x] = 0;
}

template <int NT, int WARPS, bool ALIGNED>
__global__ void __launch_bounds__(WARPS * 32) mixed_gemm_kernel(const Params p) {
  constexpr bool kPost = NT <= 4;
  constexpr int XROWS = NT * 8;
  constexpr int XSLOT = XROWS * kXRowBytes;
  constexpr int THREADS = WARPS * 32;
  extern __shared__ __align__(16) std::uint8_t smem[];
  __shared__ int s_last;

  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, gid = lane / 4, tig = lane % 4;
  const int rt = blockIdx.x * WARPS + warp;
  const bool valid = rt < p.row_tiles;
  const int G = p.groups, m = p.m;
  const int g_begin = static_cast<int>(static_cast<long long>(blockIdx.y) * G / p.splits);
  const int g_end = static_cast<int>(static_cast<long long>(blockIdx.y + 1) * G / p.splits);
  const int ng = g_end - g_begin;
  const int slot_bytes = p.data_bytes + kSlotTail;
  std::uint8_t* xs = smem;
  std::uint8_t* my_slots = smem + kStages * XSLOT + static_cast<std::size_t>(warp) * kStages * slot_bytes;

  grid_dep_launch_dependents();
  // x rows >= m are never copied: zero them once in every stage (the B fragments read them).
  for (int i = tid; i < kStages * XROWS * (kXRowBytes / 16); i += THREADS) {
    const int s = i / (XROWS * (kXRowBytes / 16)), rem = i % (XROWS * (kXRowBytes / 16));
    const int row = rem / (kXRowBytes / 16), c = rem % (kXRowBytes / 16);
    if (row >= m) *reinterpret_cast<uint4*>(xs + s * XSLOT + row * kXRowBytes + c * 16) = make_uint4(0, 0, 0, 0);
  }

  const std::uint32_t* meta1 =
      ALIGNED ? p.meta + static_cast<std::size_t>(rt) * G
              : p.meta + static_cast<std::size_t>(rt * kTileRows + gid) * G;
  const std::uint32_t* meta2 = meta1 + 8 * G;  // unaligned only: row gid + 8
  // Metadata words are fetched in batches, one word per lane (aligned: 32 groups of the warp's
  // tile; unaligned: 4 groups of the lane's two rows, one per quad lane), one batch ahead, and
  // handed out with shuffles: no dependent global load sits on the path of a stage's copies.
  constexpr int BS = ALIGNED ? 32 : 4;
  const int my = ALIGNED ? lane : tig;
  std::uint32_t cur1 = 0, cur2 = 0, nxt1 = 0, nxt2 = 0;
  auto load_batch = [&](int base, std::uint32_t& b1, std::uint32_t& b2) {
    const int j = base + my;
    if (j < ng) {
      b1 = __ldg(meta1 + g_begin + j);
      if (!ALIGNED) b2 = __ldg(meta2 + g_begin + j);
    }
  };
  if (valid) {
    load_batch(0, cur1, cur2);
    load_batch(BS, nxt1, nxt2);
  }

  // x slice of stage j: every thread of the block copies part of it.
  auto issue_x = [&](int j) {
    const int slot = j % kStages, g = g_begin + j;
    const std::uint32_t xa = smem_u32(xs + slot * XSLOT);
    const __half* xg = p.x + static_cast<std::size_t>(g) * kGroupSize;
    for (int c = tid; c < m * 16; c += THREADS)
      cp16(xa + (c >> 4) * kXRowBytes + (c & 15) * 16, xg + static_cast<std::size_t>(c >> 4) * p.k + (c & 15) * 8);
  };
  // weights of stage j: each lane copies its own fragments, scale pair and metadata word.
  auto issue_w = [&](int j) {
    if (!valid) return;
    const int slot = j % kStages, g = g_begin + j;
    std::uint8_t* sl = my_slots + slot * slot_bytes;
    const std::uint32_t sa = smem_u32(sl);
    if (j > 0 && j % BS == 0) {  // warp-uniform
      cur1 = nxt1;
      cur2 = nxt2;
      load_batch(j + BS, nxt1, nxt2);
    }
    const int src = ALIGNED ? j % BS : gid * 4 + j % BS;
    const std::uint32_t m1 = __shfl_sync(0xFFFFFFFFu, cur1, src);
    const std::uint32_t m2 = ALIGNED ? 0u : __shfl_sync(0xFFFFFFFFu, cur2, src);
    cp4(sa + p.data_bytes + lane * 4, p.scales + (static_cast<std::size_t>(rt) * G + g) * 8 + gid);
    std::uint32_t* ms = reinterpret_cast<std::uint32_t*>(sl + p.data_bytes + 128);
    ms[lane] = m1;
    if constexpr (ALIGNED) {
      const int b = m1 & 15;
      const std::uint8_t* base = p.data + static_cast<std::size_t>(m1 >> 4) * 16 + lane * 16;
      const int nchunk = b == 8 ? 4 : b == 4 ? 2 : 1;
      for (int c = 0; c < nchunk; ++c) cp16(sa + c * 512 + lane * 16, base + c * 512);
      if (b == 3) cp8(sa + 512 + lane * 16, base + 512 - lane * 8);
    } else {
      ms[32 + lane] = m2;
      copy_row(sa + lane * 16, p.data, m1, tig);
      copy_row(sa + p.row2_off + lane * 16, p.data, m2, tig);
    }
  };

  float acc[NT][4];
#pragma unroll
  for (int t = 0; t < NT; ++t)
#pragma unroll
    for (int i = 0; i < 4; ++i) acc[t][i] = 0.f;

  // Prologue: the weights of the first stages do not depend on the previous kernel in the stream,
  // so they are requested before griddepcontrol.wait (programmatic dependent launch; a no-op when
  // the launch does not use it); x, y and the workspace are touched only after it.
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < ng) issue_w(s);
    cp_commit();
  }
  grid_dep_wait();
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < ng) issue_x(s);
    cp_commit();
  }
  // Commit groups: w0..w(S-2), x0..x(S-2), then one group (x and w) per stage S-1, S, ...
  // Stage i < S-1 completes with group S-1+i, stage i >= S-1 with group i+S-1; before the wait of
  // iteration i, 2S-2+i groups are committed, so "at most S-2 pending" covers stage i in both cases.
  for (int i = 0; i < ng; ++i) {
    cp_wait<kStages - 2>();
    __syncthreads();
    if (i + kStages - 1 < ng) {
      issue_x(i + kStages - 1);
      issue_w(i + kStages - 1);
    }
    cp_commit();
    if (!valid) continue;
    const int slot = i % kStages;
    const std::uint8_t* sl = my_slots + slot * slot_bytes;
    const std::uint32_t xaddr = smem_u32(xs + slot * XSLOT);
    const std::uint32_t sc = *reinterpret_cast<const std::uint32_t*>(sl + p.data_bytes + lane * 4);
    const std::uint32_t* ms = reinterpret_cast<const std::uint32_t*>(sl + p.data_bytes + 128);
    if constexpr (ALIGNED) {
      switch (ms[lane] & 15) {
        case 2: unit_aligned<2, NT, kPost>(acc, sl, xaddr, lane, sc); break;
        case 3: unit_aligned<3, NT, kPost>(acc, sl, xaddr, lane, sc); break;
        case 4: unit_aligned<4, NT, kPost>(acc, sl, xaddr, lane, sc); break;
        default: unit_aligned<8, NT, kPost>(acc, sl, xaddr, lane, sc); break;
      }
    } else {
      std::uint32_t r1[16], r2[16];
      decode_row_any(r1, sl, lane, ms[lane] & 15);
      decode_row_any(r2, sl + p.row2_off, lane, ms[32 + lane] & 15);
      if constexpr (!kPost) {
        const std::uint32_t s1 = (sc & 0xFFFFu) * 0x10001u, s2 = (sc >> 16) * 0x10001u;
#pragma unroll
        for (int q = 0; q < 16; ++q) {
          r1[q] = DevOps::mul2(r1[q], s1);
          r2[q] = DevOps::mul2(r2[q], s2);
        }
      }
      group_mma<NT, kPost>(acc, xaddr, lane, sc, [&](int kt, std::uint32_t(&a)[4]) {
        a[0] = r1[2 * kt];
        a[1] = r2[2 * kt];
        a[2] = r1[2 * kt + 1];
        a[3] = r2[2 * kt + 1];
      });
    }
  }
  cp_wait<0>();

  const int N = p.n;
  const int n1 = rt * kTileRows + gid, n2 = n1 + 8;
  if (p.splits == 1) {
    if (!valid) return;
#pragma unroll
    for (int t = 0; t < NT; ++t)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int mm = t * 8 + 2 * tig + h;
        if (mm < m) {
          p.y[static_cast<std::size_t>(mm) * N + n1] = __float2half_rn(acc[t][h]);
          p.y[static_cast<std::size_t>(mm) * N + n2] = __float2half_rn(acc[t][2 + h]);
        }
      }
    return;
  }
  if (valid) {
#pragma unroll
    for (int t = 0; t < NT; ++t)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int mm = t * 8 + 2 * tig + h;
        if (mm < m) {
          atomicAdd(p.ws + static_cast<std::size_t>(mm) * N + n1, acc[t][h]);
          atomicAdd(p.ws + static_cast<std::size_t>(mm) * N + n2, acc[t][2 + h]);
        }
      }
  }
  finish_splits<WARPS>(p, m, s_last);
}


// ---------------------------------------------------------------- M = 1, aligned layout
//
// Decode-step GEMV: no shared-memory staging of weights. Each warp owns a 16-row tile, as in the
// GEMM, but loads its fragments straight into registers (double-buffered batches of U units, the
// next batch requested before the current one is multiplied), so the only block barrier is the
// one after x (the block's K range, loaded once) is in shared memory. The tensor-core step and
// its numerics are those of the GEMM: B fragments carry x in column 0 (lanes 0-3) and zeros.

// Weights are read once per call: they are loaded L2-evict-first (sm_80+) and the block copy of x
// evict-last, so the weight stream does not push the activations out of L2. STREAM: evict-first
// and no L1 allocation (weights, 16 or 8 bytes); otherwise evict-last through L1 (x, 16 bytes).
template <bool STREAM, class V>
__device__ __forceinline__ V ldg_l2(const V* p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  static_assert(sizeof(V) == 16 || (STREAM && sizeof(V) == 8), "uint4, or uint2 for streamed weights");
  V v;
  std::uint64_t pol;
  if constexpr (STREAM) {
    asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;\n" : "=l"(pol));
    if constexpr (sizeof(V) == 16)
      asm volatile("ld.global.nc.L1::no_allocate.L2::cache_hint.v4.u32 {%0, %1, %2, %3}, [%4], %5;\n"
                   : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                   : "l"(p), "l"(pol));
    else
      asm volatile("ld.global.nc.L1::no_allocate.L2::cache_hint.v2.u32 {%0, %1}, [%2], %3;\n"
                   : "=r"(v.x), "=r"(v.y)
                   : "l"(p), "l"(pol));
  } else {
    asm("createpolicy.fractional.L2::evict_last.b64 %0, 1.0;\n" : "=l"(pol));
    asm volatile("ld.global.nc.L2::cache_hint.v4.u32 {%0, %1, %2, %3}, [%4], %5;\n"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p), "l"(pol));
  }
  return v;
#else
  return __ldg(p);
#endif
}

// 8 bytes of the previous kernel's output (x): an __ldg may be hoisted above griddepcontrol.wait
// (the compiler treats its data as constant for the whole kernel, and did so here), so x is read
// with a load that keeps its place after the wait.
__device__ __forceinline__ uint2 ld_after_wait(const uint2* p) {
  uint2 v;
  asm volatile("ld.global.v2.u32 {%0, %1}, [%2];\n" : "=r"(v.x), "=r"(v.y) : "l"(p) : "memory");
  return v;
}

template <int B>
__device__ __forceinline__ void gemv_load_unit(std::uint32_t* w, const std::uint8_t* unit, int lane) {
  const uint4 v = ldg_l2<true>(reinterpret_cast<const uint4*>(unit + lane * 16));
  w[0] = v.x; w[1] = v.y; w[2] = v.z; w[3] = v.w;
  if constexpr (B == 3) {
    const uint2 u = ldg_l2<true>(reinterpret_cast<const uint2*>(unit + 512 + lane * 8));
    w[4] = u.x; w[5] = u.y;
  } else if constexpr (B >= 4) {
#pragma unroll
    for (int c = 1; c < B / 2; ++c) {
      const uint4 u = ldg_l2<true>(reinterpret_cast<const uint4*>(unit + c * 512 + lane * 16));
      w[4 * c] = u.x; w[4 * c + 1] = u.y; w[4 * c + 2] = u.z; w[4 * c + 3] = u.w;
    }
  }
}

// x of one group as mma B fragments (x in column 0, zeros elsewhere) with four ldmatrix.x4: lanes
// 8i..8i+7 address the 8 rows of matrix i; row 0 is x, rows 1-7 point at 16 zero bytes.
__device__ __forceinline__ void gemv_x_frags(std::uint32_t (&b)[frag::kKSteps][2], std::uint32_t xrow,
                                             std::uint32_t zero, int lane) {
  const int i = lane / 8, row = lane % 8;
#pragma unroll
  for (int q = 0; q < frag::kKSteps / 2; ++q)
    ldsm_x4(b[2 * q][0], b[2 * q][1], b[2 * q + 1][0], b[2 * q + 1][1],
            row == 0 ? xrow + ((2 * q + i / 2) * 16 + (i & 1) * 8) * 2 : zero);
}

template <int B>
__device__ __forceinline__ void gemv_unit(float (&acc)[4], const std::uint32_t* w, std::uint32_t sc,
                                          std::uint32_t xrow, std::uint32_t zero, int lane) {
  std::uint32_t b[frag::kKSteps][2];
  gemv_x_frags(b, xrow, zero, lane);
  // Two independent accumulation chains (even and odd k-steps) halve the mma dependency chain.
  float p0[4] = {0.f, 0.f, 0.f, 0.f}, p1[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
  for (int kt = 0; kt < frag::kKSteps; ++kt) {
    std::uint32_t a[4];
#pragma unroll
    for (int r = 0; r < 4; ++r) a[r] = frag::decode_pair<B, frag::kAlignedPairs, DevOps>(w, kt * 4 + r);
    if (kt % 2 == 0) mma16816(p0, a, b[kt][0], b[kt][1]);
    else mma16816(p1, a, b[kt][0], b[kt][1]);
  }
  acc[0] = fmaf(half_bits_to_float(sc & 0xFFFFu), p0[0] + p1[0], acc[0]);
  acc[2] = fmaf(half_bits_to_float(sc >> 16), p0[2] + p1[2], acc[2]);
}

template <int MAXB>
__device__ __forceinline__ void gemv_load_any(std::uint32_t* w, const std::uint8_t* data, std::uint32_t m1,
                                              int lane) {
  const std::uint8_t* unit = data + static_cast<std::size_t>(m1 >> 4) * 16;
  switch (m1 & 15) {
    case 2: gemv_load_unit<2>(w, unit, lane); break;
    case 3: if constexpr (MAXB >= 3) gemv_load_unit<3>(w, unit, lane); break;
    case 4: if constexpr (MAXB >= 4) gemv_load_unit<4>(w, unit, lane); break;
    default: if constexpr (MAXB >= 8) gemv_load_unit<8>(w, unit, lane); break;
  }
}

template <int MAXB>
__device__ __forceinline__ void gemv_any(float (&acc)[4], const std::uint32_t* w, std::uint32_t m1, std::uint32_t sc,
                                         std::uint32_t xrow, std::uint32_t zero, int lane) {
  switch (m1 & 15) {
    case 2: gemv_unit<2>(acc, w, sc, xrow, zero, lane); break;
    case 3: if constexpr (MAXB >= 3) gemv_unit<3>(acc, w, sc, xrow, zero, lane); break;
    case 4: if constexpr (MAXB >= 4) gemv_unit<4>(acc, w, sc, xrow, zero, lane); break;
    default: if constexpr (MAXB >= 8) gemv_unit<8>(acc, w, sc, xrow, zero, lane); break;
  }
}

// U = units per register batch (two batches in flight). U = 4 keeps more bytes in flight per warp;
// U = 2 and U = 1 cap registers so that 24 or 32 warps (24 with 8-bit units at U = 1) fit on an
// SM: more warps, e.g. with K splits, hide latency better than deeper per-warp batches.
template <int MAXB, int U>
constexpr int gemv_warps_per_sm() {
  if (MAXB > 4) return U == 1 ? 24 : 0;  // 8-bit units: twice the buffer registers
  return U == 1 ? 32 : U == 2 ? 24 : 0;
}
template <int WARPS, int MAXB, int U>
__global__ void __launch_bounds__(WARPS * 32, gemv_warps_per_sm<MAXB, U>() ? gemv_warps_per_sm<MAXB, U>() / WARPS : 1)
    gemv_kernel(const Params p) {
  constexpr int THREADS = WARPS * 32;
  constexpr int MAXW = 2 * MAXB < 4 ? 4 : 2 * MAXB;
  extern __shared__ __align__(16) std::uint8_t smem[];
  __shared__ int s_last;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, gid = lane / 4, tig = lane % 4;
  const int rt = blockIdx.x * WARPS + warp;
  const bool valid = rt < p.row_tiles;
  const int G = p.groups;
  const int g_begin = static_cast<int>(static_cast<long long>(blockIdx.y) * G / p.splits);
  const int g_end = static_cast<int>(static_cast<long long>(blockIdx.y + 1) * G / p.splits);
  const int ng = g_end - g_begin;
  std::uint32_t* xs = reinterpret_cast<std::uint32_t*>(smem);           // ng * 64 fp16 pairs
  std::uint32_t* zs = xs + static_cast<std::size_t>(ng) * 64;            // 16 zero bytes
  std::uint32_t* ms = zs + 4 + warp * ng;                                // this warp's metadata

  grid_dep_launch_dependents();
  // Metadata and the first weight batch do not depend on the previous kernel: fetch them first.
  // A matrix of one width laid out unit after unit (p.uniform_bits, checked on the host) needs no
  // metadata: a unit's offset follows from its index, which saves a dependent round trip.
  const int ub = p.uniform_bits;
  if (!ub) {
    for (int j = lane; j < ng; j += 32) ms[j] = valid ? __ldg(p.meta + static_cast<std::size_t>(rt) * G + g_begin + j) : 0u;
    __syncwarp();
  }
  auto meta_of = [&](int j) -> std::uint32_t {
    if (!ub) return ms[j];
    const std::size_t unit = static_cast<std::size_t>(rt) * G + g_begin + j;
    return static_cast<std::uint32_t>(unit * frag::aligned_unit_bytes(ub) / 16) << 4 | static_cast<std::uint32_t>(ub);
  };
  std::uint32_t w0[U][MAXW], w1[U][MAXW], sc0[U], sc1[U], m0[U], mm1[U];
  const std::uint32_t* scales = p.scales + static_cast<std::size_t>(rt) * G * 8 + gid;
  auto load = [&](std::uint32_t (&w)[U][MAXW], std::uint32_t (&sc)[U], std::uint32_t (&mb)[U], int j0) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int j = j0 + u;
      if (valid && j < ng) {
        mb[u] = meta_of(j);
        sc[u] = __ldg(scales + static_cast<std::size_t>(g_begin + j) * 8);
        gemv_load_any<MAXB>(w[u], p.data, mb[u], lane);
      }
    }
  };
  load(w0, sc0, m0, 0);
  grid_dep_wait();
  {
    const uint4* xg = reinterpret_cast<const uint4*>(p.x + static_cast<std::size_t>(g_begin) * kGroupSize);
    for (int c = tid; c < ng * 16; c += THREADS) reinterpret_cast<uint4*>(xs)[c] = xg[c];
    if (tid < 4) zs[tid] = 0u;
  }
  __syncthreads();

  float acc[4] = {0.f, 0.f, 0.f, 0.f};
  const std::uint32_t xbase = smem_u32(xs), zero = smem_u32(zs);
  auto compute = [&](const std::uint32_t (&w)[U][MAXW], const std::uint32_t (&sc)[U], const std::uint32_t (&mb)[U],
                     int j0) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int j = j0 + u;
      if (valid && j < ng) gemv_any<MAXB>(acc, w[u], mb[u], sc[u], xbase + j * 256, zero, lane);
    }
  };
  for (int j0 = 0; j0 < ng; j0 += 2 * U) {
    load(w1, sc1, mm1, j0 + U);
    compute(w0, sc0, m0, j0);
    load(w0, sc0, m0, j0 + 2 * U);
    compute(w1, sc1, mm1, j0 + U);
  }

  const int n1 = rt * kTileRows + gid, n2 = n1 + 8;
  if (p.splits == 1) {
    if (valid && tig == 0) {
      p.y[n1] = __float2half_rn(acc[0]);
      p.y[n2] = __float2half_rn(acc[2]);
    }
    return;
  }
  if (valid && tig == 0) {
    atomicAdd(p.ws + n1, acc[0]);
    atomicAdd(p.ws + n2, acc[2]);
  }
  finish_splits<WARPS>(p, 1, s_last);
}

// ---------------------------------------------------------------- M = 1, stream-K GEMV
//
// The same per-unit work as gemv_kernel, but the units (row tile rt, group g) are taken in their
// storage order t = rt * G + g and cut into contiguous runs, one per block and, inside a block,
// one per warp (equal to +-1 unit). Two ways to cut the block runs:
//   * balanced (p.sk_whole = 0): every block gets T/nb units, so with one wave of blocks every SM
//     streams the same number of units; a row tile that two blocks share is combined through the
//     fp32 workspace by the last of them (arrival counter per row tile);
//   * whole tiles (p.sk_whole = 1): every block gets R/nb whole row tiles, so nothing is combined
//     across blocks (no workspace, no end-of-kernel round trips through L2) at the price of +-1
//     tile per block. Which blocks take the extra tile (the first ones, or spread over the grid)
//     changes how evenly the SMs are loaded, and which is better depends on the shape.
// The block and warp runs come from quotients and remainders the host computes (Params::sk_q...),
// so no integer division delays the first loads.
// A warp keeps NB register batches of U units: while one is multiplied, the next NB - 1 are in
// flight (NB = 2, 3 or 4; 3 and 4 with one unit per batch). It sums a row tile's units in
// registers; with whole tiles it stores them in its own shared slot for the tile, and the block
// sums the slots after one barrier at the end (no atomics or fences in the loop, and the same
// summation order on every call); with balanced runs it adds them into the tile's shared sums
// and the block writes its tiles after a barrier and combines the shared ones.
// x, two ways: the block copies x of all K into shared memory before any multiply (one barrier
// that waits for the copy), or (XW) each warp loads the 256 B of x a unit needs together with the
// unit's weights and stages them in its own slot before the multiply: nothing waits for a
// block-wide copy, and the first multiplies start as soon as their own data is in. With XW the
// scale pairs of the warp's run are copied into shared memory once at the start. Weights are
// loaded L2-evict-first: they are read once per call and should not push x (or the next layer's
// activations) out of L2.
// Shared memory: [x of all K (G * 256 B), unless XW] 16 zero bytes, 16 float row sums per row
// tile (times the warps with whole tiles), for mixed widths the metadata words of each warp's run
// (p.sk_units per warp), and with XW each warp's NB * U x slots of 256 B and the scales of its run
// (p.sk_sunits * 32 B).
// The warp count is the block size (blockDim.x / 32); the launch bound caps registers at what the
// per-SM warp target of the width and batch allows (16 warps with NB > 2).

// Calls f(std::integral_constant<int, i>{}) for i = 0 .. N-1 in order: straight-line code with
// compile-time indices (register arrays stay registers).
template <class F, int... I>
__device__ __forceinline__ void for_each_index_impl(F&& f, std::integer_sequence<int, I...>) {
  (f(std::integral_constant<int, I>{}), ...);
}
template <int N, class F>
__device__ __forceinline__ void for_each_index(F&& f) {
  for_each_index_impl(f, std::make_integer_sequence<int, N>{});
}

// Bytes before the XW x slots: zeros, row sums (slots per tile), metadata (16-byte aligned).
__host__ __device__ constexpr int sk_head_bytes(int tiles, int units_per_warp, int warps, int slots) {
  return (16 + tiles * 64 * slots + warps * units_per_warp * 4 + 15) / 16 * 16;
}

// Block owning unit t under the partition of launch_gemv_sk (Params::sk_q ...): block b holds the
// items from b * q + min(b, r) (the first r blocks one item more) or, with sk_spread, from
// floor(b * items / blocks).
__device__ __forceinline__ int sk_block_of(int t, const Params& p) {
  const int item = t / p.sk_item;
  if (p.sk_spread) {  // the last block b with floor(b * items / nb) <= item
    const long long items = static_cast<long long>(p.sk_q) * gridDim.x + p.sk_r;
    return static_cast<int>(((item + 1ll) * gridDim.x - 1) / items);
  }
  const int q = p.sk_q, r = p.sk_r, big = r * (q + 1);
  return item < big ? item / (q + 1) : r + (item - big) / q;
}

// n = q * d + m with 0 <= m < d, from a float estimate of n / d (inv_d = 1 / d) corrected to the
// exact quotient: a few instructions where the integer division is a long dependent chain.
__device__ __forceinline__ void divmod_est(int n, int d, float inv_d, int& q, int& m) {
  q = __float2int_rz(__int2float_rn(n) * inv_d);
  m = n - q * d;
  while (m < 0) { --q; m += d; }
  while (m >= d) { ++q; m -= d; }
}

// Threads per SM the stream-K kernel is built for (its register cap): the GEMV's warp target,
// 16 warps for the 4-unit batches and for more than two batches in flight (NB).
template <int MAXB, int U, int NB>
constexpr int gemv_sk_threads() {
  return (NB == 2 && gemv_warps_per_sm<MAXB, U>() ? gemv_warps_per_sm<MAXB, U>() : 16) * 32;
}

template <int MAXB, int U, bool UNI, int NB, bool XW>
__global__ void __launch_bounds__(gemv_sk_threads<MAXB, U, NB>(), 1) gemv_sk_kernel(const Params p) {
  const int THREADS = blockDim.x, WARPS = THREADS / 32;
  constexpr int MAXW = 2 * MAXB < 4 ? 4 : 2 * MAXB;
  extern __shared__ __align__(16) std::uint8_t smem[];
  __shared__ int s_last[2];
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, gid = lane / 4, tig = lane % 4;
  const int G = p.groups;
  // The block's run [c0, c1) and the warp's [t0, t0 + nu) from the host's quotients and remainders
  // (Params::sk_q ...): no integer division sits between the kernel's start and its first loads.
  // Unit indices, and blocks * sk_r with sk_spread, fit in 32 bits (checked on the host).
  const int blk = blockIdx.x;
  int i0, big;  // first item (row tile or unit) of the block; whether it holds sk_q + 1 items
  if (p.sk_spread) {  // block b starts at item floor(b * items / nb)
    int i1, rem;
    divmod_est(blk * p.sk_r, gridDim.x, p.sk_inv_nb, i0, rem);
    divmod_est((blk + 1) * p.sk_r, gridDim.x, p.sk_inv_nb, i1, rem);
    big = i1 - i0;
    i0 += blk * p.sk_q;
  } else {  // the first sk_r blocks hold one item more
    big = blk < p.sk_r;
    i0 = blk * p.sk_q + min(blk, p.sk_r);
  }
  const int c0 = i0 * p.sk_item;
  const int c1 = c0 + (p.sk_q + big) * p.sk_item;
  const int uq = p.sk_uq[big], ur = p.sk_ur[big];
  const int lw = warp * uq + min(warp, ur), nu = uq + (warp < ur);
  const int t0 = c0 + lw;
  int rt_base, tile0, g0;  // first row tile of the block; the warp's first unit as (tile - rt_base, group)
  if (p.sk_item == G) {  // whole tiles
    rt_base = i0;
    divmod_est(lw, G, p.sk_inv_g, tile0, g0);
  } else {
    int gb;
    divmod_est(c0, G, p.sk_inv_g, rt_base, gb);
    divmod_est(gb + lw, G, p.sk_inv_g, tile0, g0);
  }
  std::uint32_t* xs = reinterpret_cast<std::uint32_t*>(smem);  // G * 64 fp16 pairs
  std::uint32_t* zs = xs + (XW ? 0 : static_cast<std::size_t>(G) * 64);    // 16 zero bytes
  // row sums: with whole tiles one slot per warp and tile (summed after the loop), otherwise one
  // per tile that the warps add into
  const int slots = p.sk_whole ? WARPS : 1;
  float* racc = reinterpret_cast<float*>(zs + 4);               // slots * p.sk_tiles * 16 row sums
  std::uint32_t* ms = reinterpret_cast<std::uint32_t*>(racc + slots * p.sk_tiles * 16) + warp * p.sk_units;
  // XW: each warp stages the x group of each unit it multiplies (NB * U slots of 256 B)
  const std::uint32_t xw_base =
      smem_u32(smem) + sk_head_bytes(p.sk_tiles, p.sk_units, WARPS, slots) + warp * (NB * U * 256);
  // XW: the scale pairs of the warp's run (32 B a unit) are copied into shared memory at the start
  // (one stream of 16-byte copies instead of a 32-byte load per unit)
  constexpr bool SS = XW;
  const std::uint32_t ss_base = smem_u32(smem) + sk_head_bytes(p.sk_tiles, p.sk_units, WARPS, slots) +
                                WARPS * (NB * U * 256) + warp * p.sk_sunits * 32;

  grid_dep_launch_dependents();
  if constexpr (!UNI) {
    for (int j = lane; j < nu; j += 32) ms[j] = __ldg(p.meta + t0 + j);
    __syncwarp();
  }
  // NB register batches of U units: while batch s is multiplied, the next NB - 1 are in flight.
  std::uint32_t w[NB][U][MAXW], sc[NB][U], mb[NB][U];
  uint2 xv[NB][U];
  int lg = g0;  // XW: group of the next unit whose x is loaded
  auto load_x = [&](uint2 (&xv)[U], int j0) {
#pragma unroll
    for (int u = 0; u < U; ++u)
      if (j0 + u < nu) {
        xv[u] = ld_after_wait(reinterpret_cast<const uint2*>(p.x + static_cast<std::size_t>(lg) * kGroupSize) + lane);
        if (++lg == G) lg = 0;
      }
  };
  const std::uint32_t* scales = p.scales + static_cast<std::size_t>(t0) * 8 + gid;  // unit t: scales[t * 8 + gid]
  const std::uint8_t* units = p.data + (UNI ? static_cast<std::size_t>(t0) * frag::aligned_unit_bytes(MAXB) : 0);
  auto load = [&](std::uint32_t (&w)[U][MAXW], std::uint32_t (&sc)[U], std::uint32_t (&mb)[U], int j0) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int j = j0 + u;
      if (j < nu) {
        if constexpr (!SS) sc[u] = __ldg(scales + static_cast<std::size_t>(j) * 8);
        if constexpr (UNI) {
          gemv_load_unit<MAXB>(w[u], units + static_cast<std::size_t>(j) * frag::aligned_unit_bytes(MAXB), lane);
        } else {
          mb[u] = ms[j];
          gemv_load_any<MAXB>(w[u], p.data, mb[u], lane);
        }
      }
    }
  };
  // the first NB - 1 batches go out before the loop (the loop refills each after its multiply);
  // batch 0 before anything else, batches 1 .. NB - 2 by load_ahead
  load(w[0], sc[0], mb[0], 0);
  if constexpr (SS) {
    const std::uint8_t* src = reinterpret_cast<const std::uint8_t*>(p.scales + static_cast<std::size_t>(t0) * 8);
    for (int c = lane; c < nu * 2; c += 32) cp16(ss_base + c * 16, src + c * 16);
    cp_commit();
  }
  auto load_ahead = [&]() {
    for_each_index<NB - 1>([&](auto bi) {
      constexpr int b = decltype(bi)::value;
      if constexpr (b > 0) load(w[b], sc[b], mb[b], b * U);
    });
  };
  if constexpr (XW) {
    // no block-wide x: the first batches' x goes with their weights (after the wait: x is the
    // previous kernel's output), and the barrier (zeros, sums) waits for no load
    load_ahead();
    grid_dep_wait();
    for_each_index<NB - 1>([&](auto bi) {
      constexpr int b = decltype(bi)::value;
      load_x(xv[b], b * U);
    });
    if (tid < 4) zs[tid] = 0u;
    for (int i = tid; i < p.sk_tiles * 16 * slots; i += THREADS) racc[i] = 0.f;
    __syncthreads();
    if constexpr (SS) {  // the warp's own scales: wait for them only before its first multiply
      cp_wait<0>();
      __syncwarp();
    }
  } else {
    grid_dep_wait();
    const uint4* xg = reinterpret_cast<const uint4*>(p.x);
    for (int c = tid; c < G * 16; c += THREADS) reinterpret_cast<uint4*>(xs)[c] = ldg_l2<false>(xg + c);
    if (tid < 4) zs[tid] = 0u;
    for (int i = tid; i < p.sk_tiles * 16 * slots; i += THREADS) racc[i] = 0.f;
    __syncthreads();
    load_ahead();
  }

  float acc[4] = {0.f, 0.f, 0.f, 0.f};
  int g = g0, tile = tile0;
  // Hands the warp's sums of `tile` to the block: with whole tiles into the warp's own slot (plain
  // stores; the block sums the slots after the loop, in a fixed order, so results do not depend on
  // timing), otherwise added into the tile's shared row sums.
  auto flush = [&]() {
    if (p.sk_whole) {  // the warp's own slot: each tile of its contiguous run once
      if (tig == 0) {
        racc[(warp * p.sk_tiles + tile) * 16 + gid] = acc[0];
        racc[(warp * p.sk_tiles + tile) * 16 + gid + 8] = acc[2];
      }
      acc[0] = acc[2] = 0.f;
      return;
    }
    if (tig == 0) {
      atomicAdd(racc + tile * 16 + gid, acc[0]);
      atomicAdd(racc + tile * 16 + gid + 8, acc[2]);
    }
    acc[0] = acc[2] = 0.f;
  };
  const std::uint32_t xbase = smem_u32(xs), zero = smem_u32(zs);
  auto compute = [&](const std::uint32_t (&wb)[U][MAXW], const std::uint32_t (&scb)[U], const std::uint32_t (&mbb)[U],
                     const uint2 (&xb)[U], int stage, int j0) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      if (j0 + u < nu) {
        std::uint32_t xrow = xbase + g * 256;
        if constexpr (XW) {
          xrow = xw_base + (stage * U + u) * 256;
          asm volatile("st.shared.v2.u32 [%0], {%1, %2};\n" ::"r"(xrow + lane * 8), "r"(xb[u].x), "r"(xb[u].y)
                       : "memory");
          __syncwarp();
        }
        std::uint32_t s = scb[u];
        if constexpr (SS)
          asm volatile("ld.shared.u32 %0, [%1];\n" : "=r"(s) : "r"(ss_base + (j0 + u) * 32 + gid * 4) : "memory");
        if constexpr (UNI) gemv_unit<MAXB>(acc, wb[u], s, xrow, zero, lane);
        else gemv_any<MAXB>(acc, wb[u], mbb[u], s, xrow, zero, lane);
        if (++g == G) {  // the row tile is complete: hand its sums to the block
          flush();
          g = 0;
          ++tile;
        }
      }
    }
  };
  // Batch b is multiplied at stage b of every pass; right before, the batch multiplied last (the
  // previous stage's) is refilled with the units NB - 1 batches ahead.
  for (int j0 = 0; j0 < nu; j0 += NB * U)
    for_each_index<NB>([&](auto bi) {
      constexpr int b = decltype(bi)::value, r = (b + NB - 1) % NB;
      load(w[r], sc[r], mb[r], j0 + (b + NB - 1) * U);
      if constexpr (XW) load_x(xv[r], j0 + (b + NB - 1) * U);
      compute(w[b], sc[b], mb[b], xv[b], b, j0 + b * U);
    });
  if (g != 0 && nu > 0) flush();  // the run ended inside a row tile
  if (p.sk_whole) {  // the block's tiles: the warps' slots summed in a fixed order
    __syncthreads();
    const int ntiles = p.sk_q + big;
    for (int i = tid; i < ntiles * 16; i += THREADS) {
      float v = 0.f;
      for (int w2 = 0; w2 < WARPS; ++w2) v += racc[(w2 * p.sk_tiles + i / 16) * 16 + i % 16];
      p.y[static_cast<std::size_t>(rt_base) * kTileRows + i] = __float2half_rn(v);
    }
    return;
  }
  __syncthreads();

  // Row tiles [rt_base, rt_end] of this block; only the first and the last can be shared.
  if (c1 <= c0) return;
  const int rt_end = (c1 - 1) / G, ntiles = rt_end - rt_base + 1;
  auto whole = [&](int rt) { return rt * G >= c0 && (rt + 1) * G <= c1; };
  for (int i = tid; i < ntiles * 16; i += THREADS) {
    const int rt = rt_base + i / 16;
    const std::size_t row = static_cast<std::size_t>(rt) * kTileRows + i % 16;
    if (whole(rt)) p.y[row] = __float2half_rn(racc[i]);
    else atomicAdd(p.ws + row, racc[i]);
  }
  const bool first_shared = !whole(rt_base), last_shared = rt_end != rt_base && !whole(rt_end);
  if (!first_shared && !last_shared) return;
  __threadfence();
  __syncthreads();
  if (tid < 2) {
    const int rt = tid == 0 ? rt_base : rt_end;
    int last = 0;
    if (tid == 0 ? first_shared : last_shared) {
      const unsigned contributors = static_cast<unsigned>(sk_block_of(rt * G + G - 1, p) - sk_block_of(rt * G, p) + 1);
      last = atomicAdd(p.counters + rt, 1u) == contributors - 1;
    }
    s_last[tid] = last;
  }
  __syncthreads();
  if (tid < 32) {
    const int which = tid / 16, rt = which == 0 ? rt_base : rt_end;
    if (s_last[which]) {
      __threadfence();
      const std::size_t row = static_cast<std::size_t>(rt) * kTileRows + tid % 16;
      p.y[row] = __float2half_rn(__ldcg(p.ws + row));
      __stcg(p.ws + row, 0.f);
      if (tid % 16 == 0) p.counters[rt] = 0;
    }
  }
}

using GemvFn = void (*)(Params);

// Calls make(width, units) with both as std::integral_constant for the runtime width (2, 3, 4 or 8)
// and units per batch (1, 2 or 4; 8-bit kernels exist for 1 and 2 only, so 4 becomes 2 there).
template <class Make>
auto by_width_units(int max_bits, int units, Make make) {
  auto with_units = [&](auto u) {
    constexpr int U = decltype(u)::value;
    switch (max_bits) {
      case 2: return make(std::integral_constant<int, 2>{}, u);
      case 3: return make(std::integral_constant<int, 3>{}, u);
      case 4: return make(std::integral_constant<int, 4>{}, u);
      default: return make(std::integral_constant<int, 8>{}, std::integral_constant<int, (U > 2 ? 2 : U)>{});
    }
  };
  return units == 1   ? with_units(std::integral_constant<int, 1>{})
         : units == 2 ? with_units(std::integral_constant<int, 2>{})
                      : with_units(std::integral_constant<int, 4>{});
}

GemvFn pick_gemv(int warps, int max_bits, int units) {
  return by_width_units(max_bits, units, [warps](auto b, auto u) -> GemvFn {
    constexpr int B = decltype(b)::value, U = decltype(u)::value;
    return warps == 4 ? gemv_kernel<4, B, U> : gemv_kernel<8, B, U>;
  });
}
// uniform: the matrix has one width, max_bits, in unit order (DeviceWeights::uniform_bits)
// stages: register batches per warp, 2, 3 or 4 (3 and 4 with one unit per batch; nullptr otherwise)
template <bool XW>
GemvFn pick_gemv_sk_x(int max_bits, int units, bool uniform, int stages) {
  if (stages > 2 && units != 1) return nullptr;
  return by_width_units(max_bits, units, [uniform, stages](auto b, auto u) -> GemvFn {
    constexpr int B = decltype(b)::value, U = decltype(u)::value;
    if constexpr (U == 1) {
      if (stages == 3) return uniform ? gemv_sk_kernel<B, 1, true, 3, XW> : gemv_sk_kernel<B, 1, false, 3, XW>;
      if (stages == 4) return uniform ? gemv_sk_kernel<B, 1, true, 4, XW> : gemv_sk_kernel<B, 1, false, 4, XW>;
    }
    return uniform ? gemv_sk_kernel<B, U, true, 2, XW> : gemv_sk_kernel<B, U, false, 2, XW>;
  });
}
GemvFn pick_gemv_sk(int max_bits, int units, bool uniform, int stages, bool xw = false) {
  return xw ? pick_gemv_sk_x<true>(max_bits, units, uniform, stages)
            : pick_gemv_sk_x<false>(max_bits, units, uniform, stages);
}
// Largest block the stream-K kernel of this width, batch and stage count accepts, warps.
int gemv_sk_max_warps(int max_bits, int units, int stages) {
  return by_width_units(max_bits, units, [stages](auto b, auto u) {
    constexpr int B = decltype(b)::value, U = decltype(u)::value;
    return (stages > 3 ? gemv_sk_threads<B, U, 4>() : stages == 3 ? gemv_sk_threads<B, U, 3>()
                                                                   : gemv_sk_threads<B, U, 2>()) / 32;
  });
}

std::size_t gemv_shared_bytes(int ng, int warps) {
  return static_cast<std::size_t>(ng) * 256 + 16 + static_cast<std::size_t>(warps) * ng * 4;
}
std::size_t gemv_sk_shared_bytes(int G, int tiles, int units_per_warp, int warps, int slots) {
  return static_cast<std::size_t>(G) * 256 + 16 + static_cast<std::size_t>(tiles) * 16 * slots * 4 +
         static_cast<std::size_t>(warps) * units_per_warp * 4;
}

using KernelFn = void (*)(Params);

int nt_index(int m) { return m <= 8 ? 0 : m <= 16 ? 1 : m <= 32 ? 2 : m <= 64 ? 3 : 4; }
int nt_of_index(int i) { return 1 << i; }

template <int WARPS, bool AL>
KernelFn pick_nt(int nti) {
  switch (nti) {
    case 0: return mixed_gemm_kernel<1, WARPS, AL>;
    case 1: return mixed_gemm_kernel<2, WARPS, AL>;
    case 2: return mixed_gemm_kernel<4, WARPS, AL>;
    case 3: return mixed_gemm_kernel<8, WARPS, AL>;
    default: return mixed_gemm_kernel<16, WARPS, AL>;
  }
}

KernelFn pick_kernel(int nti, int warps, bool aligned) {
  if (warps == 4) return aligned ? pick_nt<4, true>(nti) : pick_nt<4, false>(nti);
  return aligned ? pick_nt<8, true>(nti) : pick_nt<8, false>(nti);
}

struct DeviceInfo {
  int sms = 0;
  int smem_optin = 0;
  int smem_dynamic = 0;  // dynamic shared memory a launch may ask for
};

const DeviceInfo& device_info() {
  static std::once_flag once;
  static DeviceInfo info[64];
  static int ndev = 0;
  std::call_once(once, [] {
    cudaGetDeviceCount(&ndev);
    for (int d = 0; d < ndev && d < 64; ++d) {
      cudaDeviceGetAttribute(&info[d].sms, cudaDevAttrMultiProcessorCount, d);
      cudaDeviceGetAttribute(&info[d].smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, d);
      int prev = 0;
      cudaGetDevice(&prev);
      cudaSetDevice(d);
      // The dynamic limit is the opt-in maximum less the kernel's static shared memory.
      int dyn = info[d].smem_optin;
      for (int nti = 0; nti < 5; ++nti)
        for (int w : {4, 8})
          for (bool al : {true, false}) {
            cudaFuncAttributes attr{};
            if (cudaFuncGetAttributes(&attr, pick_kernel(nti, w, al)) == cudaSuccess)
              dyn = std::min(dyn, info[d].smem_optin - static_cast<int>(attr.sharedSizeBytes));
          }
      info[d].smem_dynamic = dyn;
      for (int nti = 0; nti < 5; ++nti)
        for (int w : {4, 8})
          for (bool al : {true, false})
            cudaFuncSetAttribute(pick_kernel(nti, w, al),
                                 cudaFuncAttributeMaxDynamicSharedMemorySize, dyn);
      auto allow_gemv = [&](GemvFn f) {
        if (f) cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize, info[d].smem_optin - 64);
      };
      for (int b : {2, 3, 4, 8})
        for (int u : {1, 2, 4}) {
          for (int w : {4, 8}) allow_gemv(pick_gemv(w, b, u));
          for (int st : {2, 3, 4})
            for (bool uni : {false, true})
              for (bool xw : {false, true}) allow_gemv(pick_gemv_sk(b, u, uni, st, xw));
        }
      cudaGetLastError();  // do not leave a failed attribute call as the sticky "last error"
      cudaSetDevice(prev);
    }
  });
  int dev = 0;
  cudaGetDevice(&dev);
  return info[dev < 64 ? dev : 0];
}

// Resident blocks per SM of a kernel at this block size and dynamic shared memory (at least 1),
// queried once per device and configuration: launches call it on their host path.
int blocks_per_sm(void (*fn)(Params), int threads, std::size_t smem) {
  static std::mutex mu;
  static std::map<std::tuple<int, void (*)(Params), int, std::size_t>, int> cache;
  int dev = 0;
  cudaGetDevice(&dev);
  const auto key = std::make_tuple(dev, fn, threads, smem);
  std::lock_guard<std::mutex> lock(mu);
  const auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  int per_sm = 1;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, fn, threads, smem) != cudaSuccess) {
    cudaGetLastError();
    per_sm = 1;
  }
  return cache[key] = std::max(1, per_sm);
}

int data_chunks(const DeviceWeights& w) {
  if (w.layout == Layout::kAligned) return w.max_bits == 8 ? 4 : w.max_bits == 2 ? 1 : 2;
  return 2 * (w.max_bits == 8 ? 2 : 1);
}

// One launch: grid (row blocks, K splits), a warp per row tile, programmatic dependent launch
// when the config asks for it.
cudaError_t launch(void (*fn)(Params), const Params& p, int row_blocks, const LaunchConfig& cfg, std::size_t smem,
                   cudaStream_t stream) {
  cudaLaunchConfig_t lc{};
  lc.gridDim = dim3(row_blocks, cfg.splits);
  lc.blockDim = dim3(cfg.warps * 32);
  lc.dynamicSmemBytes = smem;
  lc.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  lc.attrs = attr;
  lc.numAttrs = cfg.pdl ? 1 : 0;
  return cudaLaunchKernelEx(&lc, fn, p);
}

void check_cuda(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

}  // namespace

// ---------------------------------------------------------------- weights and workspace

GpuWeights::GpuWeights(const PackedWeights& p) {
  const std::size_t a = (p.data.size() + 255) / 256 * 256;
  const std::size_t b = (p.meta.size() * 4 + 255) / 256 * 256;
  const std::size_t c = p.scales.size() * 4;
  buffer_bytes_ = a + b + c;
  check_cuda(cudaMalloc(&buffer_, buffer_bytes_), "cudaMalloc(packed weights)");
  auto* base = static_cast<std::uint8_t*>(buffer_);
  check_cuda(cudaMemcpy(base, p.data.data(), p.data.size(), cudaMemcpyHostToDevice), "upload");
  check_cuda(cudaMemcpy(base + a, p.meta.data(), p.meta.size() * 4, cudaMemcpyHostToDevice), "upload");
  check_cuda(cudaMemcpy(base + a + b, p.scales.data(), c, cudaMemcpyHostToDevice), "upload");
  view_.n = p.n;
  view_.k = p.k;
  view_.layout = p.layout;
  view_.max_bits = p.max_bits;
  view_.data = base;
  view_.meta = reinterpret_cast<const std::uint32_t*>(base + a);
  view_.scales = reinterpret_cast<const std::uint32_t*>(base + a + b);
  view_.bytes = p.device_bytes();
  // One width, units in index order (what pack_weights writes for a uniform aligned matrix): the
  // GEMV path may then compute offsets instead of reading the metadata.
  if (p.layout == Layout::kAligned && !p.meta.empty()) {
    const int b = static_cast<int>(p.meta[0] & 15);
    bool uniform = true;
    for (std::size_t i = 0; i < p.meta.size() && uniform; ++i)
      uniform = p.meta[i] == (static_cast<std::uint32_t>(i * frag::aligned_unit_bytes(b) / 16) << 4 |
                              static_cast<std::uint32_t>(b));
    view_.uniform_bits = uniform ? b : 0;
  }
}

GpuWeights GpuWeights::clone() const {
  GpuWeights g;
  if (!buffer_) return g;
  g.buffer_bytes_ = buffer_bytes_;
  check_cuda(cudaMalloc(&g.buffer_, buffer_bytes_), "cudaMalloc(packed weights)");
  check_cuda(cudaMemcpy(g.buffer_, buffer_, buffer_bytes_, cudaMemcpyDeviceToDevice), "clone");
  const auto shift = [&](const void* ptr) {
    return static_cast<const std::uint8_t*>(g.buffer_) +
           (static_cast<const std::uint8_t*>(ptr) - static_cast<const std::uint8_t*>(buffer_));
  };
  g.view_ = view_;
  g.view_.data = shift(view_.data);
  g.view_.meta = reinterpret_cast<const std::uint32_t*>(shift(view_.meta));
  g.view_.scales = reinterpret_cast<const std::uint32_t*>(shift(view_.scales));
  return g;
}

GpuWeights::GpuWeights(GpuWeights&& o) noexcept
    : view_(o.view_), buffer_(o.buffer_), buffer_bytes_(o.buffer_bytes_) {
  o.buffer_ = nullptr;
  o.view_ = {};
}
GpuWeights& GpuWeights::operator=(GpuWeights&& o) noexcept {
  if (this != &o) {
    release();
    view_ = o.view_;
    buffer_ = o.buffer_;
    buffer_bytes_ = o.buffer_bytes_;
    o.buffer_ = nullptr;
    o.view_ = {};
  }
  return *this;
}
GpuWeights::~GpuWeights() { release(); }
void GpuWeights::release() {
  if (buffer_) cudaFree(buffer_);
  buffer_ = nullptr;
}

Workspace make_workspace(int max_n) {
  Workspace ws;
  ws.acc_floats = static_cast<std::size_t>(max_n) * kMaxChunkM;
  ws.num_counters = static_cast<std::size_t>(max_n / kTileRows + 1);  // per row tile (stream-K GEMV)
  check_cuda(cudaMalloc(&ws.acc, ws.acc_floats * 4), "cudaMalloc(workspace)");
  check_cuda(cudaMalloc(&ws.counters, ws.num_counters * 4), "cudaMalloc(workspace)");
  check_cuda(cudaMemset(ws.acc, 0, ws.acc_floats * 4), "cudaMemset(workspace)");
  check_cuda(cudaMemset(ws.counters, 0, ws.num_counters * 4), "cudaMemset(workspace)");
  return ws;
}

void free_workspace(Workspace& ws) {
  if (ws.acc) cudaFree(ws.acc);
  if (ws.counters) cudaFree(ws.counters);
  ws = {};
}

// ---------------------------------------------------------------- launch

std::size_t max_shared_bytes() { return static_cast<std::size_t>(device_info().smem_dynamic); }

std::size_t shared_bytes(const DeviceWeights& w, int m, int warps) {
  const int nt = nt_of_index(nt_index(std::min(m, kMaxChunkM)));
  const std::size_t slot = static_cast<std::size_t>(data_chunks(w)) * 512 + kSlotTail;
  return static_cast<std::size_t>(kStages) * nt * 8 * kXRowBytes +
         static_cast<std::size_t>(warps) * kStages * slot;
}

LaunchConfig auto_config(const DeviceWeights& w, int m) {
  const DeviceInfo& info = device_info();
  const int mc = std::min(std::max(m, 1), kMaxChunkM);
  const int nti = nt_index(mc);
  LaunchConfig cfg;
  cfg.warps = nti >= 3 ? 8 : 4;
  const int row_tiles = w.n / kTileRows, G = w.k / kGroupSize;
  const int row_blocks = (row_tiles + cfg.warps - 1) / cfg.warps;
  const int per_sm = blocks_per_sm(pick_kernel(nti, cfg.warps, w.layout == Layout::kAligned), cfg.warps * 32,
                                   shared_bytes(w, mc, cfg.warps));
  const int capacity = std::max(1, per_sm) * std::max(1, info.sms);
  cfg.splits = 1;
  if (row_blocks < capacity) cfg.splits = std::max(1, std::min(capacity / row_blocks, G / 4));
  return cfg;
}

// The stream-K GEMV (M = 1, aligned layout): grid and shared memory from the config.
cudaError_t launch_gemv_sk(const DeviceWeights& w, const __half* x, __half* y, const Workspace& ws,
                           LaunchConfig cfg, cudaStream_t stream) {
  const DeviceInfo& info = device_info();
  const int stages = cfg.stages ? cfg.stages : 2;
  if (cfg.gemv < 1 || cfg.gemv > 4 || cfg.warps < 0 || stages < 2 || stages > 4 || (stages > 2 && cfg.gemv != 1))
    return cudaErrorInvalidValue;
  const int warps = std::min(cfg.warps ? cfg.warps : 8, gemv_sk_max_warps(w.max_bits, cfg.gemv, stages));
  const int G = w.k / kGroupSize, row_tiles = w.n / kTileRows;
  const long long T = static_cast<long long>(row_tiles) * G;
  if (T * frag::aligned_unit_bytes(8) / 16 >= (1ll << 28)) return cudaErrorInvalidValue;  // 32-bit unit indices
  const bool uniform = w.uniform_bits != 0 && w.uniform_bits == w.max_bits;
  const GemvFn fn = pick_gemv_sk(w.max_bits, cfg.gemv, uniform, stages, cfg.warp_x);
  Params p{};
  p.data = w.data;
  p.meta = w.meta;
  p.scales = w.scales;
  p.x = x;
  p.y = y;
  p.ws = ws.acc;
  p.counters = ws.counters;
  p.n = w.n;
  p.k = w.k;
  p.m = 1;
  p.groups = G;
  p.row_tiles = row_tiles;
  p.splits = 1;
  p.uniform_bits = w.uniform_bits;
  p.sk_whole = cfg.whole_tiles ? 1 : 0;
  const int slots = cfg.whole_tiles ? warps : 1;  // row sums per tile (see gemv_sk_kernel)
  const auto sizes = [&](int blocks) {  // shared row tiles and metadata slots for a grid
    const long long per_block =
        cfg.whole_tiles ? (row_tiles + blocks - 1) / blocks * G : (T + blocks - 1) / blocks;
    p.sk_tiles = static_cast<int>((per_block + G - 1) / G + (cfg.whole_tiles ? 0 : 1));
    p.sk_units = uniform ? 0 : static_cast<int>((per_block + warps - 1) / warps);
    p.sk_sunits = cfg.warp_x ? static_cast<int>((per_block + warps - 1) / warps) : 0;
    if (cfg.warp_x)
      return static_cast<std::size_t>(sk_head_bytes(p.sk_tiles, p.sk_units, warps, slots)) +
             static_cast<std::size_t>(warps) * (stages * cfg.gemv * 256 + p.sk_sunits * 32);
    return gemv_sk_shared_bytes(G, p.sk_tiles, p.sk_units, warps, slots);
  };
  // at least a warp's share of units (or a row tile) per block
  const int most = static_cast<int>(cfg.whole_tiles ? row_tiles : std::min<long long>((T + warps - 1) / warps, 1 << 30));
  int blocks = cfg.blocks;
  if (blocks <= 0) {  // one wave: as many blocks as fit on the device at once
    blocks = most;
    for (int pass = 0; pass < 2; ++pass)  // the shared memory depends on the grid and back
      blocks = std::min(most, blocks_per_sm(fn, warps * 32, sizes(blocks)) * std::max(1, info.sms));
  }
  blocks = std::min(blocks, most);
  if (!cfg.whole_tiles && (!ws.acc || !ws.counters || ws.acc_floats < static_cast<std::size_t>(w.n) ||
                           ws.num_counters < static_cast<std::size_t>(row_tiles)))
    return cudaErrorInvalidValue;
  const std::size_t smem = sizes(blocks);
  if (smem > static_cast<std::size_t>(info.smem_optin - 64)) return cudaErrorInvalidConfiguration;
  // the partition (Params::sk_q ...): items per block, then units per warp for both block sizes
  const int items = cfg.whole_tiles ? row_tiles : static_cast<int>(T);
  p.sk_item = cfg.whole_tiles ? G : 1;
  p.sk_q = items / blocks;
  p.sk_r = items % blocks;
  for (int big = 0; big < 2; ++big) {
    const int units = (p.sk_q + big) * p.sk_item;
    p.sk_uq[big] = units / warps;
    p.sk_ur[big] = units % warps;
  }
  p.sk_inv_g = 1.0f / static_cast<float>(G);
  p.sk_inv_nb = 1.0f / static_cast<float>(blocks);
  // spread runs compute b * sk_r in 32 bits: only where that cannot overflow (it is a speed choice)
  p.sk_spread = cfg.spread_runs && static_cast<long long>(blocks) * p.sk_r < (1ll << 31) ? 1 : 0;
  LaunchConfig lcfg = cfg;
  lcfg.warps = warps;
  lcfg.splits = 1;
  return launch(fn, p, blocks, lcfg, smem, stream);
}

std::size_t bytes_read(const DeviceWeights& w, int m, const LaunchConfig& cfg) {
  // the M = 1 GEMV paths of mixed_gemm: the default configuration, or any with gemv set
  const bool gemv = m == 1 && w.layout == Layout::kAligned &&
                    ((cfg.warps == 0 && cfg.splits == 0 && cfg.gemv == 0) || cfg.gemv != 0);
  const bool uniform = w.uniform_bits != 0 && w.uniform_bits == w.max_bits;
  const std::size_t meta = w.layout == Layout::kAligned
                               ? static_cast<std::size_t>(w.n / kTileRows) * (w.k / kGroupSize) * 4
                               : static_cast<std::size_t>(w.n) * (w.k / kGroupSize) * 4;
  return gemv && uniform ? w.bytes - meta : w.bytes;
}

cudaError_t mixed_gemm(const DeviceWeights& w, const __half* x, __half* y, int m,
                       const Workspace& ws, LaunchConfig cfg, cudaStream_t stream) {
  if (m <= 0 || w.n <= 0 || w.n % kTileRows || w.k <= 0 || w.k % kGroupSize || !w.data || !x || !y)
    return cudaErrorInvalidValue;
  if (!valid_bits(w.max_bits)) return cudaErrorInvalidValue;
  if ((reinterpret_cast<std::uintptr_t>(x) & 15) || (reinterpret_cast<std::uintptr_t>(y) & 1))
    return cudaErrorInvalidValue;
  if (m == 1 && w.layout == Layout::kAligned && cfg.warps == 0 && cfg.splits == 0 && cfg.gemv == 0) {
    // Default at M = 1: the stream-K GEMV with whole tiles, 8-warp blocks, one-unit batches and x
    // staged per warp; four batches in flight (the fastest configuration on H100 for 2-, 3- and
    // 4-bit weights at the measured shapes but 4096^2), three where 8-bit units are present, whose
    // batch registers are twice as many (uniform 8-bit: 18.4 against 19.8 us on 11008x4096, 82.2
    // against 88.5 on 28672x8192; mixed {2,4,8}: 12.8 against 16.2 and 47.8 against 64.1; each
    // within 3 % of the best tuned configuration); the GEMM when it cannot be launched.
    const LaunchConfig g{8, 1, cfg.pdl, 1, true, true, 0, w.max_bits == 8 ? 3 : 4, true};
    const cudaError_t e = launch_gemv_sk(w, x, y, ws, g, stream);
    if (e != cudaErrorInvalidValue && e != cudaErrorInvalidConfiguration) return e;
  }
  if (cfg.gemv && cfg.stream_k) {
    if (m == 1 && w.layout == Layout::kAligned) return launch_gemv_sk(w, x, y, ws, cfg, stream);
    if (cfg.warps > 4) cfg.warps = 8;  // other M and layouts: the GEMM with its nearest block size
    else if (cfg.warps > 0) cfg.warps = 4;
  }
  const DeviceInfo& info = device_info();
  const LaunchConfig autoc = (cfg.warps == 0 || cfg.splits == 0) ? auto_config(w, m) : LaunchConfig{};
  if (cfg.warps == 0) cfg.warps = autoc.warps;
  if (cfg.splits == 0) cfg.splits = autoc.splits;
  if (cfg.warps != 4 && cfg.warps != 8) return cudaErrorInvalidValue;
  const int G = w.k / kGroupSize, row_tiles = w.n / kTileRows;
  cfg.splits = std::max(1, std::min(cfg.splits, G));
  const int row_blocks = (row_tiles + cfg.warps - 1) / cfg.warps;
  if (cfg.splits > 1 && (!ws.acc || !ws.counters ||
                         ws.acc_floats < static_cast<std::size_t>(w.n) * std::min(m, kMaxChunkM) ||
                         ws.num_counters < static_cast<std::size_t>(row_blocks)))
    return cudaErrorInvalidValue;

  Params p{};
  p.data = w.data;
  p.meta = w.meta;
  p.scales = w.scales;
  p.ws = ws.acc;
  p.counters = ws.counters;
  p.n = w.n;
  p.k = w.k;
  p.groups = G;
  p.row_tiles = row_tiles;
  p.splits = cfg.splits;
  p.data_bytes = data_chunks(w) * 512;
  p.row2_off = (w.max_bits == 8 ? 2 : 1) * 512;
  p.uniform_bits = w.uniform_bits;
  if (cfg.gemv && m == 1 && w.layout == Layout::kAligned) {
    p.m = 1;
    p.x = x;
    p.y = y;
    const std::size_t smem = gemv_shared_bytes((G + cfg.splits - 1) / cfg.splits, cfg.warps);
    if (smem > static_cast<std::size_t>(info.smem_optin - 64)) return cudaErrorInvalidConfiguration;
    return launch(pick_gemv(cfg.warps, w.max_bits, cfg.gemv), p, row_blocks, cfg, smem, stream);
  }
  for (int m0 = 0; m0 < m; m0 += kMaxChunkM) {
    const int mc = std::min(kMaxChunkM, m - m0);
    p.m = mc;
    p.x = x + static_cast<std::size_t>(m0) * w.k;
    p.y = y + static_cast<std::size_t>(m0) * w.n;
    const int nti = nt_index(mc);
    const std::size_t smem = shared_bytes(w, mc, cfg.warps);
    if (smem > static_cast<std::size_t>(info.smem_dynamic)) return cudaErrorInvalidConfiguration;
    const cudaError_t e =
        launch(pick_kernel(nti, cfg.warps, w.layout == Layout::kAligned), p, row_blocks, cfg, smem, stream);
    if (e != cudaSuccess) return e;
  }
  return cudaSuccess;
}

}  // namespace hawq::kernels
