// Estimator: a curvature estimator plugin. Needs LibTorch (through the oracle).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hawq/oracle.h"
#include "hawq/params.h"
#include "hawq/partition.h"
#include "hawq/sensitivity.h"

namespace hawq {

struct EstimateRequest {
  std::int64_t max_hvps = 64;   // upper bound on Hessian-vector products (or equivalent passes)
  double rel_tol = 0.0;         // stop early once every block's std_error/|estimate| <= rel_tol (0 = never)
  std::uint64_t seed = 0;       // probe vectors and any randomised choice
};

class Estimator {
 public:
  static constexpr const char* kKind = "estimator";
  virtual ~Estimator() = default;
  // Per-block estimates for `partition` (whose blocks index the oracle's weights).
  virtual Sensitivity estimate(CurvatureOracle& oracle, const Partition& partition, const EstimateRequest& request) = 0;
};

// Sums `x` (shaped like weight w) over each block of w into out[block index] (2-D view).
void accumulate_blocks(const Partition& partition, std::size_t w, const torch::Tensor& x, std::vector<double>& out);

// Stopping settings of the probe-based estimators (hutchinson, hutchpp, diagonal): their params
// `max_hvps` and `rel_tol` override the request's; `min_probes` (>= 2) probes come before any stop.
class ProbeSettings {
 public:
  explicit ProbeSettings(const Params& p);
  std::int64_t max_hvps(const EstimateRequest& r) const { return max_hvps_ > 0 ? max_hvps_ : r.max_hvps; }
  double rel_tol(const EstimateRequest& r) const { return rel_tol_ >= 0 ? rel_tol_ : r.rel_tol; }
  std::int64_t min_probes() const { return min_probes_; }

 private:
  std::int64_t max_hvps_, min_probes_;
  double rel_tol_;
};

// Running per-block moments of independent probe samples: the mean and standard error each
// probe-based estimator reports, and their `rel_tol` stopping rule.
class ProbeMoments {
 public:
  explicit ProbeMoments(std::size_t blocks) : sum_(blocks, 0.0), sumsq_(blocks, 0.0) {}
  // Adds one probe's per-block samples; returns `start` plus their sum over blocks.
  double add(const std::vector<double>& sample, double start = 0.0);
  std::int64_t count() const { return n_; }
  double mean(std::size_t b) const { return sum_[b] / static_cast<double>(n_); }
  double std_error(std::size_t b) const;  // 0 below 2 samples
  // True when every block's standard error is at most rel_tol·|offset[b] + mean| (offset: a
  // deterministic part of the estimate, e.g. Hutch++'s sketch trace; empty = none).
  bool converged(double rel_tol, const std::vector<double>& offset = {}) const;

 private:
  std::vector<double> sum_, sumsq_;
  std::int64_t n_ = 0;
};

}  // namespace hawq

#define HAWQ_REGISTER_ESTIMATOR(name, Type) HAWQ_REGISTER_PLUGIN(::hawq::Estimator, name, Type)
