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
  explicit Hutchinson(const Params& p) : settings_(p) {}

  Sensitivity estimate(CurvatureOracle& oracle, const Partition& part, const EstimateRequest& req) override {
    const auto t0 = std::chrono::steady_clock::now();
    const std::int64_t max_hvps = settings_.max_hvps(req);
    const double rel_tol = settings_.rel_tol(req);
    if (max_hvps < 1) throw ConfigError("hutchinson: max_hvps must be at least 1");
    for (const auto& b : part.blocks) HAWQ_CHECK(b.weight < oracle.weights().size(), "partition does not match the model");
    const std::size_t nb = part.blocks.size();
    std::vector<double> sample(nb);
    ProbeMoments moments(nb);
    auto gen = at::detail::createCPUGenerator(req.seed);
    auto like = oracle.zeros_like_weights();
    Sensitivity s;
    s.estimator = "hutchinson";
    s.quantity = "trace";
    const std::int64_t h0 = oracle.hvp_count();
    while (moments.count() < max_hvps) {
      auto v = CurvatureOracle::rademacher_like(like, gen);
      auto hv = oracle.hvp(v);
      std::fill(sample.begin(), sample.end(), 0.0);
      for (std::size_t w = 0; w < v.size(); ++w) accumulate_blocks(part, w, v[w] * hv[w], sample);
      s.raw_samples.push_back(moments.add(sample));
      if (moments.count() >= settings_.min_probes() && rel_tol > 0 && moments.converged(rel_tol)) break;
    }
    s.blocks.resize(nb);
    for (std::size_t b = 0; b < nb; ++b) s.blocks[b] = {moments.mean(b), moments.std_error(b), moments.count()};
    s.hvps = oracle.hvp_count() - h0;
    s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    s.peak_bytes = peak_rss_bytes();
    return s;
  }

 private:
  ProbeSettings settings_;
};

}  // namespace

HAWQ_REGISTER_ESTIMATOR("hutchinson", Hutchinson)

}  // namespace hawq
