#include "llama7b_problem.h"

#include <algorithm>
#include <limits>
#include <random>

namespace hawq::kernels {

Llama7bProblem llama7b_problem(const LatencyTable& table, int layers, std::int64_t block_rows, unsigned seed) {
  Llama7bProblem out;
  AllocationProblem& p = out.problem;
  p.candidate_bits = {2, 3, 4, 8};
  const auto& cands = p.candidate_bits;
  Resource bits{"bits", {}, std::numeric_limits<double>::infinity()};
  Resource lat{"latency_us", {}, std::numeric_limits<double>::infinity()};
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<double> sens(0.0, 1.5);
  out.uniform_us.assign(cands.size(), 0.0);
  for (int layer = 0; layer < layers; ++layer)
    for (const WeightShape& m : llama7b_layer_weights()) {
      const std::int64_t n = m.n, k = m.k;
      std::vector<double> w_us;
      for (std::size_t j = 0; j < cands.size(); ++j) {
        w_us.push_back(table.layer_us(n, k, 1, cands[j]));
        out.uniform_us[j] += w_us.back();
      }
      out.fp16_us += table.layer_us(n, k, 1, 16);
      const std::int64_t rows = block_rows > 0 ? block_rows : n;
      for (std::int64_t r0 = 0; r0 < n; r0 += rows) {
        const std::int64_t r1 = std::min(n, r0 + rows);
        const double numel = static_cast<double>((r1 - r0) * k), share = numel / static_cast<double>(n * k);
        const double s = sens(rng);
        std::vector<double> d, cb, cl;
        for (std::size_t j = 0; j < cands.size(); ++j) {
          d.push_back(s * numel * quant_noise(cands[j]));
          cb.push_back(numel * cands[j]);
          cl.push_back(share * w_us[j]);  // a block costs its share of the whole weight's time
        }
        p.distortion.push_back(d);
        bits.cost.push_back(cb);
        lat.cost.push_back(cl);
        p.numel.push_back(static_cast<std::int64_t>(numel));
        p.block_names.push_back(m.role + "." + std::to_string(layer) + "[" + std::to_string(r0) + "]");
        out.blocks.push_back({layer, m.role, n, k, r0, r1});
        out.total += numel;
      }
    }
  p.resources = {bits, lat};
  return out;
}

}  // namespace hawq::kernels
