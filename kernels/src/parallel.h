// Tiny thread helper for the CPU packer and reference (no OpenMP dependency).
#pragma once

#include <algorithm>
#include <thread>
#include <vector>

namespace hawq::kernels::detail {

inline int thread_count(int threads) {
  if (threads > 0) return threads;
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(std::min(hw, 64u));
}

// Runs f(begin, end) over [0, count) split into contiguous chunks, one per thread.
template <class F>
void parallel_for(long count, int threads, F f) {
  const int t = static_cast<int>(std::max(1L, std::min<long>(thread_count(threads), count)));
  if (t == 1) {
    f(0L, count);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(t);
  for (int i = 0; i < t; ++i) {
    const long b = count * i / t, e = count * (i + 1) / t;
    pool.emplace_back([=, &f] { f(b, e); });
  }
  for (auto& th : pool) th.join();
}

}  // namespace hawq::kernels::detail
