// Streaming-read floor for the kernel benchmark (read_floor.cu).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

// Reads `bytes` (a multiple of 16, 16-byte aligned) from `data` with `blocks` blocks of 256 threads.
cudaError_t launch_stream_read(const void* data, std::size_t bytes, unsigned* sink, int blocks, cudaStream_t s);
