// A plain streaming read, the floor a memory-bound GEMV of the same bytes can approach: every
// thread reads 16-byte words with a grid stride (four independent loads in flight per iteration)
// and folds them with XOR; the result is stored only if it matches a value it never has, which
// keeps the loads alive without adding writes.
#include "read_floor.h"

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
