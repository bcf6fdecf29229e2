// Estimator: a curvature estimator plugin. Needs LibTorch (through the oracle).
#pragma once

#include <cstdint>
#include <string>

#include "hawq/oracle.h"
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

}  // namespace hawq

#define HAWQ_REGISTER_ESTIMATOR(name, Type) HAWQ_REGISTER_PLUGIN(::hawq::Estimator, name, Type)
