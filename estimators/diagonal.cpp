// Hessian diagonal estimator (Bekas, Kokiopoulou, Saad 2007): diag(H) ≈ (1/K) Σ_k v_k ⊙ H v_k.
//
// With Rademacher probes v (v ⊙ v = 1) the element-wise average is an unbiased estimate of every
// diagonal entry: E[v_i (Hv)_i] = H_ii + Σ_{j≠i} H_ij E[v_i v_j] = H_ii, with variance
// Σ_{j≠i} H_ij² per probe. The estimator keeps that per-element diagonal (one extra vector of
// the model's size, in double) and reports, per block, the sum of the block's diagonal entries
// ("diag_trace"). A block of a single element (partition tile:1x1) therefore reads out the
// diagonal itself; for larger blocks the sum has the same expectation as Hutchinson's block
// trace, and with the same seed the same probe stream, so the two agree sample for sample.
//
// Standard errors come from the per-probe block sums (independent probes). Cost: one HVP per
// probe; stops at `rel_tol` (every block) or `max_hvps`, like `hutchinson`.
#include <chrono>
#include <cmath>

#include "hawq/errors.h"
#include "hawq/estimator.h"
#include "hawq/registry.h"

namespace hawq {

namespace {

class Diagonal : public Estimator {
 public:
  explicit Diagonal(const Params& p) : settings_(p) {}

  Sensitivity estimate(CurvatureOracle& oracle, const Partition& part, const EstimateRequest& req) override {
    const auto t0 = std::chrono::steady_clock::now();
    const std::int64_t max_hvps = settings_.max_hvps(req);
    const double rel_tol = settings_.rel_tol(req);
    if (max_hvps < 1) throw ConfigError("diagonal: max_hvps must be at least 1");
    for (const auto& b : part.blocks) HAWQ_CHECK(b.weight < oracle.weights().size(), "partition does not match the model");
    const std::size_t nb = part.blocks.size();
    auto gen = at::detail::createCPUGenerator(req.seed);
    auto like = oracle.zeros_like_weights();
    // Running sum of v ⊙ Hv per element, in double.
    std::vector<torch::Tensor> diag_sum;
    for (const auto& t : like) diag_sum.push_back(torch::zeros(t.sizes(), t.options().dtype(torch::kDouble)));
    std::vector<double> sample(nb);
    ProbeMoments moments(nb);
    Sensitivity s;
    s.estimator = "diagonal";
    s.quantity = "diag_trace";
    const std::int64_t h0 = oracle.hvp_count();
    while (moments.count() < max_hvps) {
      auto v = CurvatureOracle::rademacher_like(like, gen);
      auto hv = oracle.hvp(v);
      std::fill(sample.begin(), sample.end(), 0.0);
      for (std::size_t w = 0; w < v.size(); ++w) {
        auto d = (v[w] * hv[w]).to(torch::kDouble);
        diag_sum[w] += d;
        accumulate_blocks(part, w, d, sample);
      }
      s.raw_samples.push_back(moments.add(sample));
      if (moments.count() >= settings_.min_probes() && rel_tol > 0 && moments.converged(rel_tol)) break;
    }
    // Block estimates are sums of the averaged diagonal (the same numbers as the probe means, read
    // from the per-element diagonal so that a 1×1 block is exactly the diagonal entry).
    const std::int64_t k = moments.count();
    std::vector<double> est(nb, 0.0);
    for (std::size_t w = 0; w < diag_sum.size(); ++w) accumulate_blocks(part, w, diag_sum[w] / static_cast<double>(k), est);
    s.blocks.resize(nb);
    for (std::size_t b = 0; b < nb; ++b) s.blocks[b] = {est[b], moments.std_error(b), k};
    s.hvps = oracle.hvp_count() - h0;
    s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    s.peak_bytes = peak_rss_bytes();
    return s;
  }

 private:
  ProbeSettings settings_;
};

}  // namespace

HAWQ_REGISTER_ESTIMATOR("diagonal", Diagonal)

}  // namespace hawq
