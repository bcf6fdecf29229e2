// Blocks and partitions: how a model's quantizable weights are cut into allocation units. Torch-free.
//
// Every weight is viewed as a 2-D matrix [rows = output channels/features, cols = everything else
// (in_features, or in_channels*kh*kw for convolutions)]. A Block is a rectangle of that view, so
// one representation covers whole layers (v1), groups of output channels, r×c tiles, attention
// heads and FFN slices (v2), and hardware-aligned tiles (v3).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hawq {

// What the partitioner needs to know about one quantizable weight.
struct WeightInfo {
  std::string name;                // parameter name, e.g. "layer1.0.conv1.weight"
  std::string role;                // conv, linear, q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, lm_head, embed
  std::vector<std::int64_t> shape; // tensor shape as stored
  std::int64_t head_dim = 0;       // attention projections: size of one head (0 = not attention)
  std::int64_t rows() const { return shape.empty() ? 0 : shape[0]; }
  std::int64_t cols() const;       // product of the remaining dims
  std::int64_t numel() const { return rows() * cols(); }
};

struct Block {
  std::string name;            // e.g. "layer1.0.conv1.weight[0:16,:]" or "model.layers.0.self_attn.q_proj.weight#head3"
  std::size_t weight = 0;      // index into the model's quantizable weights
  std::int64_t row0 = 0, row1 = 0;  // half-open row range of the 2-D view
  std::int64_t col0 = 0, col1 = 0;  // half-open column range of the 2-D view
  std::int64_t numel() const { return (row1 - row0) * (col1 - col0); }
};

struct Partition {
  std::string policy;            // "layer", "channel:16", "tile:128x128", "head", "hardware:128x128"
  std::vector<Block> blocks;     // ordered by weight, then rows, then cols
  std::vector<WeightInfo> weights;
  // Blocks belonging to weight w (indices into blocks).
  std::vector<std::size_t> blocks_of(std::size_t w) const;
};

// Policies:
//   layer            one block per weight
//   channel:N        groups of N output rows (convolution output channels; also linear rows)
//   tile:RxC         R×C tiles of the 2-D view (edges are smaller); convolutions fall back to channel:R
//   head             attention q/k/v: one block per head's rows; o_proj: per head's columns;
//                    gate/up: slices of 128 rows... (FFN slices), other weights whole
//   hardware:RxC     like tile:RxC, but the rows/cols must divide evenly; a weight whose shape does
//                    not is kept whole (recorded so the report can say so)
// Throws ConfigError for an unknown or malformed policy.
Partition make_partition(const std::vector<WeightInfo>& weights, const std::string& policy);

}  // namespace hawq
