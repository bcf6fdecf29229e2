// Hutchinson trace estimator: Tr(H_b) ≈ mean over Rademacher probes v of Σ_{i∈b} v_i (Hv)_i.
//
// One probe stream serves every block at once: each probe costs one Hessian-vector product of the
// whole model, and each block's sample is the restriction of vᵀHv to its coordinates. Because
// probes are independent, the sample standard deviation over probes gives an honest standard
// error per block; estimation stops when every block reaches `rel_tol` or at `max_hvps`.
#include <chrono>
#include <cmath>

#include "hawq/errors.h"
#include "hawq/estimator.h"
#include "hawq/registry.h"

namespace hawq {

namespace {

class Hutchinson : public Estimator {
 public:
  explicit Hutchinson(const Params& p)
      : max_hvps_(p.get_int("max_hvps", -1)), min_probes_(p.get_int("min_probes", 4)), rel_tol_(p.get_double("rel_tol", -1)) {
    if (min_probes_ < 2) throw ConfigError(p.where("min_probes") + ": at least 2 probes are needed for a standard error");
  }

  Sensitivity estimate(CurvatureOracle& oracle, const Partition& part, const EstimateRequest& req) override {
    const auto t0 = std::chrono::steady_clock::now();
    const std::int64_t max_hvps = max_hvps_ > 0 ? max_hvps_ : req.max_hvps;
    const double rel_tol = rel_tol_ >= 0 ? rel_tol_ : req.rel_tol;
    if (max_hvps < 1) throw ConfigError("hutchinson: max_hvps must be at least 1");
    for (const auto& b : part.blocks) HAWQ_CHECK(b.weight < oracle.weights().size(), "partition does not match the model");
    const std::size_t nb = part.blocks.size();
    std::vector<double> sum(nb, 0.0), sumsq(nb, 0.0), sample(nb);
    auto gen = at::detail::createCPUGenerator(req.seed);
    auto like = oracle.zeros_like_weights();
    Sensitivity s;
    s.estimator = "hutchinson";
    s.quantity = "trace";
    const std::int64_t h0 = oracle.hvp_count();
    std::int64_t k = 0;
    while (k < max_hvps) {
      auto v = CurvatureOracle::rademacher_like(like, gen);
      auto hv = oracle.hvp(v);
      std::fill(sample.begin(), sample.end(), 0.0);
      for (std::size_t w = 0; w < v.size(); ++w) accumulate_blocks(part, w, v[w] * hv[w], sample);
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
    s.blocks.resize(nb);
    for (std::size_t b = 0; b < nb; ++b) {
      double mean = sum[b] / k;
      double var = k > 1 ? std::max(0.0, (sumsq[b] - k * mean * mean) / (k - 1)) : 0.0;
      s.blocks[b] = {mean, std::sqrt(var / k), k};
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

HAWQ_REGISTER_ESTIMATOR("hutchinson", Hutchinson)

}  // namespace hawq
