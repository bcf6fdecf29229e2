// Holding a stream while the host enqueues work to be timed (hold.cu).
#pragma once

#include <cuda_runtime.h>

// A one-thread kernel that keeps `s` busy until release() (or a 1 s timeout, reported by
// released_in_time()): events and graph launches enqueued behind it while it spins start back to
// back on the device, so an interval between two events measures device execution and not the
// host's enqueue latency (cudaGraphLaunch takes microseconds of host time per call).
class StreamHold {
 public:
  StreamHold();
  ~StreamHold();
  StreamHold(const StreamHold&) = delete;
  StreamHold& operator=(const StreamHold&) = delete;
  cudaError_t hold(cudaStream_t s);  // enqueue the spinning kernel
  void release();                    // let it finish (call after enqueuing the timed work)
  bool released_in_time() const;     // false if the last hold ended by its timeout

 private:
  volatile int* flag_ = nullptr;  // host-mapped: 0 = hold, 1 = go
  int* dev_flag_ = nullptr;
  volatile int* timed_out_ = nullptr;  // host-mapped: set by the kernel when it gave up waiting
  int* dev_timed_out_ = nullptr;
};
