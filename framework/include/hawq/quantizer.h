// Quantizer: turns an Allocation into quantised (fake-quant) weights. Needs LibTorch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hawq/model.h"
#include "hawq/partition.h"

namespace hawq {

struct QuantizeContext {
  std::vector<Batch> calibration;   // for data-aware quantizers (GPTQ, AWQ scaling)
  std::uint64_t seed = 0;
  // Per-block sensitivity (same order as partition blocks), for sensitivity-ordered GPTQ; may be empty.
  std::vector<double> block_sensitivity;
};

class Quantizer {
 public:
  static constexpr const char* kKind = "quantizer";
  virtual ~Quantizer() = default;
  // Quantises every block of `partition` to bits[block] in place (0 = leave full precision).
  virtual void quantize(Model& model, const Partition& partition, const std::vector<int>& bits,
                        const QuantizeContext& ctx) = 0;
};

// Round-to-nearest of a 2-D slice, symmetric per row (per output channel) or per group of
// `group_size` columns when > 0, or asymmetric with a zero point. Returns the dequantised values.
torch::Tensor rtn_quantize_rows(const torch::Tensor& w2d, int bits, bool symmetric, std::int64_t group_size);

}  // namespace hawq

#define HAWQ_REGISTER_QUANTIZER(name, Type) HAWQ_REGISTER_PLUGIN(::hawq::Quantizer, name, Type)
