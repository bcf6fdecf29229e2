// CUDA mixed-precision weight-only GEMM: y[M x N] = x[M x K] . W^T with W packed by
// pack_weights() (format.h), x and y fp16 row-major, fp32 accumulation on the tensor cores
// (mma.sync m16n8k16). One kernel serves every M: M is processed in chunks of at most 128 rows,
// each chunk rounded up to 8, 16, 32, 64 or 128 columns of the mma n dimension.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "hawq/kernels/format.h"

namespace hawq::kernels {

// Non-owning view of packed weights in device memory.
struct DeviceWeights {
  int n = 0, k = 0;
  Layout layout = Layout::kAligned;
  int max_bits = 0;
  const std::uint8_t* data = nullptr;
  const std::uint32_t* meta = nullptr;
  const std::uint32_t* scales = nullptr;
  std::size_t bytes = 0;  // data + meta + scales: what one GEMM reads of the weights
  int uniform_bits = 0;   // aligned, one width, units in index order (set by GpuWeights); else 0
};

// Owning device copy of a PackedWeights (move-only).
class GpuWeights {
 public:
  GpuWeights() = default;
  explicit GpuWeights(const PackedWeights& p);  // throws std::runtime_error on CUDA errors
  GpuWeights(const GpuWeights&) = delete;
  GpuWeights& operator=(const GpuWeights&) = delete;
  GpuWeights(GpuWeights&& o) noexcept;
  GpuWeights& operator=(GpuWeights&& o) noexcept;
  ~GpuWeights();
  // A second device copy of the same weights at other addresses (rotating buffers in benchmarks).
  GpuWeights clone() const;
  const DeviceWeights& view() const { return view_; }

 private:
  void release();
  DeviceWeights view_;
  void* buffer_ = nullptr;  // one allocation holding data, meta and scales
  std::size_t buffer_bytes_ = 0;
};

// Split-K scratch: fp32 partial sums and arrival counters (one per row block for the split-K
// launches, one per row tile for the stream-K GEMV). Zero when idle: the last contributor of every
// launch writes y and zeroes what it used, so one workspace serves any number of launches in one
// stream (or one graph) in sequence.
struct Workspace {
  float* acc = nullptr;
  unsigned* counters = nullptr;
  std::size_t acc_floats = 0, num_counters = 0;
};
Workspace make_workspace(int max_n);  // sized for M chunks of 128 rows
void free_workspace(Workspace& ws);

struct LaunchConfig {
  int warps = 0;     // warps per block (4 or 8), 0 = automatic; each warp owns one 16-row tile
  int splits = 0;    // K splits (>= 1), 0 = automatic
  bool pdl = false;  // programmatic dependent launch (sm_90+): the kernel requests its first weight
                     // stages before waiting for the previous kernel in the stream to finish
  int gemv = 0;      // M = 1, aligned layout: the register-streaming GEMV kernel with this many units
                     // per register batch (1, 2 or 4; 0 = the GEMM; ignored for other M and layouts)
  bool stream_k = false;  // with gemv: the units (row tile, group) in storage order are cut into
                          // contiguous runs, one per block and one per warp inside it (splits
                          // ignored; warps may then be 1..32, clamped to what the kernel's
                          // register budget allows: 32 for 2/3/4 bits one unit per batch; other
                          // M and layouts run the GEMM with 4 or 8 warps, the nearest)
  bool whole_tiles = false;  // stream_k: block runs are whole row tiles (nothing combined across
                             // blocks); otherwise equal runs, and a row tile two blocks share is
                             // combined in the workspace
  int blocks = 0;         // stream_k: blocks in the grid (0 = as many as fit on the device at once)
  int stages = 0;         // stream_k: register batches per warp, 2, 3 or 4 (0 = 2): while one is
                          // multiplied the others are in flight; 3 and 4 need gemv = 1 and cap the
                          // block at 16 warps
  bool warp_x = false;    // stream_k: each warp loads the x group of each unit with its weights and
                          // stages it in its own shared slots (no block-wide x copy and barrier)
  bool spread_runs = false;  // stream_k: when the blocks' runs differ by a row tile (or a unit),
                             // the longer ones are spread over the grid instead of being the first
                             // blocks (which of the two balances the SMs better depends on the
                             // shape; ignored for grids so large that blocks * remainder needs
                             // more than 32 bits)
};
// The heuristic used when a field of LaunchConfig is 0 (from occupancy and the SM count). With
// LaunchConfig{} (warps, splits and gemv all 0) an aligned M = 1 call runs the stream-K GEMV
// {8 warps, whole tiles, 4 stages, warp_x} instead (3 stages where 8-bit units are present),
// falling back to the GEMM where that cannot be launched.
LaunchConfig auto_config(const DeviceWeights& w, int m);
// Dynamic shared memory a launch needs, bytes.
std::size_t shared_bytes(const DeviceWeights& w, int m, int warps);
// The most dynamic shared memory a launch may use on the current device.
std::size_t max_shared_bytes();

// Bytes of the weights one mixed_gemm call with this M and configuration reads: data and scales,
// and the metadata unless the call runs an M = 1 GEMV on a matrix of one width in unit order
// (DeviceWeights::uniform_bits), which computes unit offsets instead of reading them. For
// bandwidth figures: w.bytes is the footprint, this is the traffic.
std::size_t bytes_read(const DeviceWeights& w, int m, const LaunchConfig& cfg = {});

// Launches the GEMM on `stream` (graph capture is fine). Returns cudaErrorInvalidValue for bad
// arguments (shapes, alignment, workspace too small) and the launch error otherwise.
cudaError_t mixed_gemm(const DeviceWeights& w, const __half* x, __half* y, int m,
                       const Workspace& ws, LaunchConfig cfg = {}, cudaStream_t stream = nullptr);

}  // namespace hawq::kernels
