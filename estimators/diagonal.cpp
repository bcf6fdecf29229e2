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
  explicit Diagonal(const Params& p)
      : max_hvps_(p.get_int("max_hvps", -1)), min_probes_(p.get_int("min_probes", 4)), rel_tol_(p.get_double("rel_tol", -1)) {
    if (min_probes_ < 2) throw ConfigError(p.where("min_probes") + ": at least 2 probes are needed for a standard error");
  }

  Sensitivity estimate(CurvatureOracle& oracle, const Partition& part, const EstimateRequest& req) override {
    const auto t0 = std::chrono::steady_clock::now();
    const std::int64_t max_hvps = max_hvps_ > 0 ? max_hvps_ : req.max_hvps;
    const double rel_tol = rel_tol_ >= 0 ? rel_tol_ : req.rel_tol;
    if (max_hvps < 1) throw ConfigError("diagonal: max_hvps must be at least 1");
    for (const auto& b : part.blocks) HAWQ_CHECK(b.weight < oracle.weights().size(), "partition does not match the model");
    const std::size_t nb = part.blocks.size();
    auto gen = at::detail::createCPUGenerator(req.seed);
    auto like = oracle.zeros_like_weights();
    // Running sum of v ⊙ Hv per element, in double.
    std::vector<torch::Tensor> diag_sum;
    for (const auto& t : like) diag_sum.push_back(torch::zeros(t.sizes(), t.options().dtype(torch::kDouble)));
    std::vector<double> sum(nb, 0.0), sumsq(nb, 0.0), sample(nb);
    Sensitivity s;
    s.estimator = "diagonal";
    s.quantity = "diag_trace";
    const std::int64_t h0 = oracle.hvp_count();
    std::int64_t k = 0;
    while (k < max_hvps) {
      auto v = CurvatureOracle::rademacher_like(like, gen);
      auto hv = oracle.hvp(v);
      std::fill(sample.begin(), sample.end(), 0.0);
      for (std::size_t w = 0; w < v.size(); ++w) {
        auto d = (v[w] * hv[w]).to(torch::kDouble);
        diag_sum[w] += d;
        accumulate_blocks(part, w, d, sample);
      }
      double total = 0;
      for (std::size_t b = 0; b < nb; ++b) {
        sum[b] += sample[b];
        sumsq[b] += sample[b] * sample[b];
        total += sample[b];
      }
      s.raw_samples.push_back(total);
      ++k;
      if (k >= min_probes_ && rel_tol > 0) {
        bool done = true;
        for (std::size_t b = 0; b < nb && done; ++b) {
          double mean = sum[b] / k, var = std::max(0.0, (sumsq[b] - k * mean * mean) / (k - 1));
          done = std::sqrt(var / k) <= rel_tol * std::abs(mean);
        }
        if (done) break;
      }
    }
    // Block estimates are sums of the averaged diagonal (the same numbers as sum[b] / k, read
    // from the per-element diagonal so that a 1×1 block is exactly the diagonal entry).
    std::vector<double> est(nb, 0.0);
    for (std::size_t w = 0; w < diag_sum.size(); ++w) accumulate_blocks(part, w, diag_sum[w] / static_cast<double>(k), est);
    s.blocks.resize(nb);
    for (std::size_t b = 0; b < nb; ++b) {
      double mean = sum[b] / k;
      double var = k > 1 ? std::max(0.0, (sumsq[b] - k * mean * mean) / (k - 1)) : 0.0;
      s.blocks[b] = {est[b], std::sqrt(var / k), k};
    }
    s.hvps = oracle.hvp_count() - h0;
    s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    s.peak_bytes = peak_rss_bytes();
    return s;
  }

 private:
  std::int64_t max_hvps_, min_probes_;
  double rel_tol_;
};

}  // namespace

HAWQ_REGISTER_ESTIMATOR("diagonal", Diagonal)

}  // namespace hawq
