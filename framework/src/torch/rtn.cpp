// Round-to-nearest fake quantisation, per output channel or per group, symmetric or asymmetric.
#include "hawq/errors.h"
#include "hawq/quantizer.h"
#include "hawq/registry.h"

namespace hawq {

torch::Tensor rtn_quantize_rows(const torch::Tensor& w2d, int bits, bool symmetric, std::int64_t group_size) {
  HAWQ_CHECK(bits >= 1 && bits <= 16, "rtn: bits out of range");
  const std::int64_t rows = w2d.size(0), cols = w2d.size(1);
  if (group_size > 0 && group_size < cols) {
    // Per-group: quantise each slab of `group_size` columns with its own scales.
    std::vector<torch::Tensor> parts;
    for (std::int64_t c = 0; c < cols; c += group_size)
      parts.push_back(rtn_quantize_rows(w2d.slice(1, c, std::min(cols, c + group_size)), bits, symmetric, 0));
    return torch::cat(parts, 1);
  }
  auto w = w2d.to(torch::kFloat);
  if (symmetric) {
    // Signed grid {-(2^{b-1}-1) .. 2^{b-1}-1}·s with s = max|w| / (2^{b-1}-1); 1-bit uses ±s.
    const double qmax = bits == 1 ? 1.0 : std::pow(2.0, bits - 1) - 1;
    auto s = w.abs().amax(1, true).clamp_min(1e-12) / qmax;
    auto q = bits == 1 ? torch::sign(w) : torch::clamp(torch::round(w / s), -qmax, qmax);
    return (q * s).to(w2d.dtype());
  }
  const double levels = std::pow(2.0, bits) - 1;
  auto lo = w.amin(1, true), hi = w.amax(1, true);
  auto s = (hi - lo).clamp_min(1e-12) / levels;
  auto z = torch::round(-lo / s);
  auto q = torch::clamp(torch::round(w / s) + z, 0, levels);
  (void)rows;
  return ((q - z) * s).to(w2d.dtype());
}

namespace {

class RtnQuantizer : public Quantizer {
 public:
  explicit RtnQuantizer(const Params& p)
      : symmetric_(p.get_bool("symmetric", true)), group_size_(p.get_int("group_size", 0)) {
    if (group_size_ < 0) throw ConfigError(p.where("group_size") + ": expected 0 (per channel) or a positive group size");
  }
  void quantize(Model& model, const Partition& partition, const std::vector<int>& bits, const QuantizeContext&) override {
    HAWQ_CHECK(bits.size() == partition.blocks.size(), "rtn: one width per block expected");
    torch::NoGradGuard ng;
    auto weights = model.quantizable();
    for (std::size_t i = 0; i < partition.blocks.size(); ++i) {
      if (bits[i] <= 0) continue;
      const auto& b = partition.blocks[i];
      auto w = weights[b.weight].weight;
      auto w2 = w.view({w.size(0), -1});
      auto slice = w2.slice(0, b.row0, b.row1).slice(1, b.col0, b.col1);
      slice.copy_(rtn_quantize_rows(slice, bits[i], symmetric_, group_size_));
    }
  }

 private:
  bool symmetric_;
  std::int64_t group_size_;
};

}  // namespace

HAWQ_REGISTER_QUANTIZER("rtn", RtnQuantizer)

}  // namespace hawq
