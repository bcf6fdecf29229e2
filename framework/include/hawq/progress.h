// Progress display: a single updating line on a terminal (stage, k/n, ETA); silent when stderr is
// not a TTY so batch logs stay clean. Torch-free.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace hawq {

class Progress {
 public:
  Progress(std::string stage, std::int64_t total);
  void update(std::int64_t done, const std::string& detail = "");
  void finish();
  bool is_tty() const { return tty_; }

 private:
  std::string stage_;
  std::int64_t total_;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace hawq
