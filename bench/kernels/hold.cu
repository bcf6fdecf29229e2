// See hold.h. The kernel polls a host-mapped word; %globaltimer bounds the wait so that a host
// that never releases cannot hang the device.
#include "hold.h"

#include <cstdint>

namespace {

__device__ __forceinline__ std::uint64_t global_ns() {
  std::uint64_t t;
  asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
  return t;
}

__global__ void hold_kernel(const volatile int* flag, int* timed_out) {
  const std::uint64_t start = global_ns();
  while (*flag == 0) {
    if (global_ns() - start > 1000000000ull) {
      *timed_out = 1;
      return;
    }
    __nanosleep(500);
  }
}

}  // namespace

StreamHold::StreamHold() {
  void* p = nullptr;
  if (cudaHostAlloc(&p, 2 * sizeof(int), cudaHostAllocMapped) != cudaSuccess) return;
  int* words = static_cast<int*>(p);
  words[0] = 1;
  words[1] = 0;
  flag_ = words;
  timed_out_ = words + 1;
  void* d = nullptr;
  if (cudaHostGetDevicePointer(&d, p, 0) != cudaSuccess) return;
  dev_flag_ = static_cast<int*>(d);
  dev_timed_out_ = dev_flag_ + 1;
}

StreamHold::~StreamHold() {
  if (flag_) cudaFreeHost(const_cast<int*>(flag_));
}

cudaError_t StreamHold::hold(cudaStream_t s) {
  if (!dev_flag_) return cudaErrorMemoryAllocation;
  *flag_ = 0;
  *timed_out_ = 0;
  hold_kernel<<<1, 1, 0, s>>>(dev_flag_, dev_timed_out_);
  return cudaGetLastError();
}

void StreamHold::release() {
  if (flag_) *flag_ = 1;
}

bool StreamHold::released_in_time() const { return !timed_out_ || *timed_out_ == 0; }
