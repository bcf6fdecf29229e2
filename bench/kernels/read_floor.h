// Streaming-read floor for the kernel benchmark (read_floor.cu).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

// Reads `bytes` (a multiple of 16, 16-byte aligned) from `data` with `blocks` blocks of 256 threads.
cudaError_t launch_stream_read(const void* data, std::size_t bytes, unsigned* sink, int blocks, cudaStream_t s);

// A read in the stream-K GEMV's access pattern (read_floor.cu): a 4-bit rows x cols matrix as 1 KB
// units, whole row tiles per block, a contiguous run per warp, `depth` units in flight per warp in
// registers (depth 2, 4, 6, 8) or in a shared-memory cp.async ring (shared; depth 4, 8, 12).
struct ReadPattern {
  bool shared;
  int depth, warps, blocks_per_sm;
};
cudaError_t launch_pattern_read(const void* data, int rows, int cols, unsigned* sink, const ReadPattern& rp, int sms,
                                cudaStream_t s);
