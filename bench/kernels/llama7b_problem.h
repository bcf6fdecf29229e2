// The HAWQ-V3 allocation problem over LLaMA-7B's decoder weights with a measured latency table,
// shared by bench/kernels/llama7b_allocation and the latency tests. Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "allocation_file.h"  // llama7b_layer_weights, kLlama7bLayers
#include "hawq/allocation.h"
#include "hawq/latency.h"

namespace hawq::kernels {

struct Llama7bProblem {
  struct Block {
    int layer;
    std::string role;
    std::int64_t n, k, r0, r1;  // the weight's shape and the block's output rows [r0, r1)
  };
  // Candidates 2, 3, 4, 8; resources[0] "bits" (n_b · b), resources[1] "latency_us" (the block's
  // share of its weight's time at batch 1); both budgets left unbounded for the caller to set.
  AllocationProblem problem;
  std::vector<Block> blocks;         // same order as problem's blocks
  double total = 0;                  // weight elements
  double fp16_us = 0;                // cuBLAS fp16 time of every weight at batch 1
  std::vector<double> uniform_us;    // every weight at candidate width j, per candidate
};

// `layers` decoder layers in blocks of `block_rows` output rows by all input features (0: one
// block per weight). Sensitivities are synthetic (log-normal, sigma 1.5, drawn in block order
// from `seed`): distortion = s · numel · quant_noise(b).
Llama7bProblem llama7b_problem(const LatencyTable& table, int layers, std::int64_t block_rows, unsigned seed);

}  // namespace hawq::kernels
