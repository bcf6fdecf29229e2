// Empirical Fisher trace per block, from true per-example gradients.
//
// For the oracle's objective L = (1/N) Σ_rows CE, write S_e for the summed loss of example e
// (batch element: an image, or a sequence of T_e counted token rows) so that L = (1/N) Σ_e S_e.
// The Fisher identity gives GGN(S_e) = E_{y~model}[∇S_e ∇S_eᵀ]; replacing the sampled labels
// with the true ones gives the empirical Fisher of L
//     F = (1/N) Σ_e ∇S_e ∇S_eᵀ,   Tr(F_b) = (1/N) Σ_e ‖(∇S_e)_b‖².
// The oracle hands out gradients g_e of the per-example MEAN loss ℓ̄_e = S_e / T_e, so
//     Tr(F_b) = (1/N) Σ_e T_e² ‖(g_e)_b‖².
// For classifiers with one row per example (images) T_e = 1 and N = #examples: the familiar
// (1/N) Σ_e ‖g_e‖². Never computed from the batch-mean gradient (that would be ‖∇L‖², a
// different and much smaller quantity).
//
// Standard error: the estimate is the mean over examples of u_e = (E/N) T_e² ‖(g_e)_b‖², and its
// standard error is sd(u)/√E, the sampling error of the calibration set. Cost: one backward
// pass per example (reported as `hvps`); the whole calibration set is always used.
#include <chrono>
#include <cmath>

#include "hawq/errors.h"
#include "hawq/estimator.h"
#include "hawq/registry.h"

namespace hawq {

namespace {

class Fisher : public Estimator {
 public:
  explicit Fisher(const Params&) {}

  Sensitivity estimate(CurvatureOracle& oracle, const Partition& part, const EstimateRequest&) override {
    const auto t0 = std::chrono::steady_clock::now();
    for (const auto& b : part.blocks) HAWQ_CHECK(b.weight < oracle.weights().size(), "partition does not match the model");
    const std::size_t nb = part.blocks.size();

    // Counted rows per example, in the order per_example_gradients visits examples.
    std::vector<double> rows;
    for (const auto& b : oracle.batches()) {
      auto lb = oracle.model().labels(b).reshape({b.size(), -1}).ne(-100).sum(1).to(torch::kDouble).contiguous();
      for (std::int64_t i = 0; i < b.size(); ++i) rows.push_back(lb[i].item<double>());
    }
    const double N = static_cast<double>(oracle.total_rows());

    std::vector<double> sum(nb, 0.0), sumsq(nb, 0.0), sample(nb);
    std::int64_t examples = 0;
    Sensitivity s;
    s.estimator = "fisher";
    s.quantity = "fisher_trace";
    oracle.per_example_gradients([&](std::int64_t e, const WeightVec& g) {
      ++examples;
      const double t = rows.at(static_cast<std::size_t>(e));
      std::fill(sample.begin(), sample.end(), 0.0);
      if (t > 0) {  // an example with no counted rows contributes nothing (its mean loss is 0/0)
        for (std::size_t w = 0; w < g.size(); ++w) accumulate_blocks(part, w, g[w].to(torch::kDouble).square() * (t * t), sample);
      }
      double total = 0;
      for (std::size_t b = 0; b < nb; ++b) {
        sum[b] += sample[b];
        sumsq[b] += sample[b] * sample[b];
        total += sample[b];
      }
      s.raw_samples.push_back(total / N);
    });
    HAWQ_CHECK(examples > 0, "fisher: no examples");
    // u_e = (E/N) x_e: estimate = mean(u) = Σ x_e / N, std error = sd(u)/√E.
    const double E = static_cast<double>(examples), scale = E / N;
    s.blocks.resize(nb);
    for (std::size_t b = 0; b < nb; ++b) {
      double mean = sum[b] / E;
      double var = examples > 1 ? std::max(0.0, (sumsq[b] - E * mean * mean) / (E - 1)) : 0.0;
      s.blocks[b] = {scale * mean, scale * std::sqrt(var / E), examples};
    }
    s.hvps = examples;
    s.note = "passes are per-example backward passes";
    s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    s.peak_bytes = peak_rss_bytes();
    return s;
  }
};

}  // namespace

HAWQ_REGISTER_ESTIMATOR("fisher", Fisher)

}  // namespace hawq
