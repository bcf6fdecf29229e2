// Sensitivity: what an estimator returns, per block. Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hawq {

struct BlockEstimate {
  double estimate = 0;     // the block's quantity (see Sensitivity::quantity), in loss units
  double std_error = 0;    // standard error of `estimate` (0 for deterministic estimators)
  std::int64_t samples = 0;  // probes / iterations / per-sample gradients that went into it
};

struct Sensitivity {
  std::string estimator;   // registered name
  // What `estimate` means: "trace" (Tr(H_b)), "diag_trace" (sum of an estimated diagonal),
  // "fisher_trace" (Tr of the empirical Fisher), "ggn_trace" (K-FAC), "top_eigenvalue".
  std::string quantity;
  std::vector<BlockEstimate> blocks;   // same order as Partition::blocks
  // Raw per-probe samples of the whole-model quantity (Hutchinson-style estimators), for variance
  // studies; may be empty.
  std::vector<double> raw_samples;
  std::int64_t hvps = 0;       // Hessian-vector products (or equivalent passes) used
  double seconds = 0;          // wall time
  std::int64_t peak_bytes = 0; // peak resident memory increase during the estimate (bytes), 0 if unknown
  std::string note;
};

}  // namespace hawq
