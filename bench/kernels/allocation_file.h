// Allocation files for the kernel benchmark's decode step (written by llama7b_allocation, read by
// kernels_bench --allocation): '#' comment lines, among them "# variant: NAME" and
// "# predicted M=1 latency of the 224 GEMVs: X us ...", then one line per block of output rows:
//   layer role row_begin row_end bits
// Torch- and CUDA-free; tested in tests/core/test_allocation_file.cpp.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "hawq/kernels/format.h"

namespace hawq::kernels {

struct LayerAllocation {
  std::string variant = "hawq_v3";  // from "# variant: NAME"
  double predicted_us = 0;          // from the "predicted ... latency" comment (0 when absent)
  std::map<std::pair<int, std::string>, std::vector<BitBlock>> blocks;  // (layer, role) -> row blocks
};

struct WeightShape {
  std::string role;
  int n, k;  // out x in features
};

// The seven weights of one LLaMA-7B decoder layer, in the order the decode step runs them.
inline const std::vector<WeightShape>& llama7b_layer_weights() {
  static const std::vector<WeightShape> w = {{"q_proj", 4096, 4096},      {"k_proj", 4096, 4096},
                                             {"v_proj", 4096, 4096},      {"o_proj", 4096, 4096},
                                             {"gate_proj", 11008, 4096}, {"up_proj", 11008, 4096},
                                             {"down_proj", 4096, 11008}};
  return w;
}
constexpr int kLlama7bLayers = 32;

// Reads `path` for `layers` layers of the weights in `shapes`. Throws std::runtime_error naming the
// file (and line) for a missing file, a malformed line (unknown role, layer out of range, rows not
// multiples of 16 or out of range, width not 2/3/4/8), overlapping blocks or rows left uncovered.
LayerAllocation read_layer_allocation(const std::string& path, int layers, const std::vector<WeightShape>& shapes);

}  // namespace hawq::kernels
