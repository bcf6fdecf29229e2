// Partition policies: layer, channel:N, tile:RxC, head, hardware:RxC.
#include "hawq/partition.h"

#include <regex>

#include "hawq/errors.h"

namespace hawq {

std::int64_t WeightInfo::cols() const {
  std::int64_t c = 1;
  for (std::size_t i = 1; i < shape.size(); ++i) c *= shape[i];
  return shape.size() <= 1 ? 1 : c;
}

std::vector<std::size_t> Partition::blocks_of(std::size_t w) const {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < blocks.size(); ++i)
    if (blocks[i].weight == w) out.push_back(i);
  return out;
}

namespace {

std::string range_name(const WeightInfo& w, std::int64_t r0, std::int64_t r1, std::int64_t c0, std::int64_t c1) {
  std::string s = w.name + "[" + std::to_string(r0) + ":" + std::to_string(r1);
  if (c0 != 0 || c1 != w.cols()) s += "," + std::to_string(c0) + ":" + std::to_string(c1);
  return s + "]";
}

void add_tiles(Partition& p, std::size_t wi, const WeightInfo& w, std::int64_t R, std::int64_t C) {
  for (std::int64_t r = 0; r < w.rows(); r += R)
    for (std::int64_t c = 0; c < w.cols(); c += C) {
      Block b;
      b.weight = wi;
      b.row0 = r;
      b.row1 = std::min(w.rows(), r + R);
      b.col0 = c;
      b.col1 = std::min(w.cols(), c + C);
      b.name = range_name(w, b.row0, b.row1, b.col0, b.col1);
      p.blocks.push_back(b);
    }
}

void add_whole(Partition& p, std::size_t wi, const WeightInfo& w) {
  Block b;
  b.weight = wi;
  b.row1 = w.rows();
  b.col1 = w.cols();
  b.name = w.name;
  p.blocks.push_back(b);
}

bool is_attention(const std::string& role) {
  return role == "q_proj" || role == "k_proj" || role == "v_proj" || role == "o_proj";
}

}  // namespace

Partition make_partition(const std::vector<WeightInfo>& weights, const std::string& policy) {
  Partition p;
  p.policy = policy;
  p.weights = weights;
  std::smatch m;
  static const std::regex channel_re(R"(channel:(\d+))"), tile_re(R"((tile|hardware):(\d+)x(\d+))");
  if (policy == "layer") {
    for (std::size_t i = 0; i < weights.size(); ++i) add_whole(p, i, weights[i]);
  } else if (std::regex_match(policy, m, channel_re)) {
    std::int64_t n = std::stoll(m[1]);
    if (n <= 0) throw ConfigError("partition '" + policy + "': channel group size must be positive");
    for (std::size_t i = 0; i < weights.size(); ++i) add_tiles(p, i, weights[i], n, weights[i].cols());
  } else if (std::regex_match(policy, m, tile_re)) {
    std::int64_t R = std::stoll(m[2]), C = std::stoll(m[3]);
    if (R <= 0 || C <= 0) throw ConfigError("partition '" + policy + "': tile sides must be positive");
    const bool hardware = m[1] == "hardware";
    for (std::size_t i = 0; i < weights.size(); ++i) {
      const auto& w = weights[i];
      const bool conv = w.shape.size() == 4;
      if (hardware && (w.rows() % R != 0 || w.cols() % C != 0)) {
        // Hardware-aligned tiles only where the shape divides evenly; otherwise the kernel would
        // need the unaligned path, so the whole weight is one block at one width.
        add_whole(p, i, w);
      } else if (conv && !hardware) {
        add_tiles(p, i, w, R, w.cols());  // convolutions: groups of output channels
      } else {
        add_tiles(p, i, w, R, C);
      }
    }
  } else if (policy == "head") {
    for (std::size_t i = 0; i < weights.size(); ++i) {
      const auto& w = weights[i];
      if (is_attention(w.role) && w.head_dim > 0) {
        if (w.role == "o_proj") {
          add_tiles(p, i, w, w.rows(), w.head_dim);  // o_proj mixes heads along its input columns
        } else {
          add_tiles(p, i, w, w.head_dim, w.cols());
        }
      } else if (w.role == "gate_proj" || w.role == "up_proj") {
        add_tiles(p, i, w, 128, w.cols());  // FFN slices: 128 intermediate units
      } else if (w.role == "down_proj") {
        add_tiles(p, i, w, w.rows(), 128);
      } else if (w.shape.size() == 4) {
        add_tiles(p, i, w, 16, w.cols());  // CNNs have no heads: output-channel groups of 16
      } else {
        add_whole(p, i, w);
      }
    }
    for (auto& b : p.blocks) {
      const auto& w = weights[b.weight];
      if (is_attention(w.role) && w.head_dim > 0) {
        std::int64_t h = (w.role == "o_proj" ? b.col0 : b.row0) / w.head_dim;
        b.name = w.name + "#head" + std::to_string(h);
      }
    }
  } else {
    throw ConfigError("unknown partition policy '" + policy +
                      "' (expected layer, channel:N, tile:RxC, head or hardware:RxC)");
  }
  return p;
}

}  // namespace hawq
