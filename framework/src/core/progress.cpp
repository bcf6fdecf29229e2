// Terminal progress line with ETA.
#include "hawq/progress.h"

#include <unistd.h>

#include <cstdio>

namespace hawq {

Progress::Progress(std::string stage, std::int64_t total)
    : stage_(std::move(stage)), total_(total), tty_(::isatty(2) == 1), start_(std::chrono::steady_clock::now()), last_(start_) {}

void Progress::update(std::int64_t done, const std::string& detail) {
  if (!tty_) return;
  auto now = std::chrono::steady_clock::now();
  if (done < total_ && now - last_ < std::chrono::milliseconds(200)) return;
  last_ = now;
  double el = std::chrono::duration<double>(now - start_).count();
  double eta = done > 0 ? el * double(total_ - done) / double(done) : 0;
  std::fprintf(stderr, "\r\033[K%s %lld/%lld  %s  elapsed %.0fs  ETA %.0fs", stage_.c_str(), (long long)done,
               (long long)total_, detail.c_str(), el, eta);
  std::fflush(stderr);
}

void Progress::finish() {
  if (tty_) std::fprintf(stderr, "\r\033[K");
}

}  // namespace hawq
