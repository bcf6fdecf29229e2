// Hutch++ (Meyer, Musco, Musco, Woodruff 2021), extended to per-block traces.
//
// Goal: Tr(P_b H) for every block b, where P_b is the 0/1 diagonal projection onto the block's
// coordinates (so Tr(P_b H) = Tr(H_bb), the trace of the block's diagonal sub-matrix).
//
// Sketch.  k Rademacher probes S (k HVPs), Q = orth(H S) over the whole parameter vector, then
// Y = H Q (k more HVPs). For ANY matrix Q, with Π = I − Q Qᵀ,
//
//     H = Q Qᵀ H  +  Π H Q Qᵀ  +  Π H Π                                   (exact identity)
//
// so for every block
//
//     Tr(P_b H) = Tr(P_b Q Qᵀ H) + Tr(P_b Π H Q Qᵀ) + Tr(P_b Π H Π).
//
// The first two terms are exact functions of Q and Y (P_b is diagonal, H symmetric):
//     Tr(P_b Q Qᵀ H)   = Σ_i q_iᵀ H P_b q_i          = Σ_i Σ_{j∈b} Q_ji Y_ji
//     Tr(P_b Π Y Qᵀ)   = Σ_i q_iᵀ P_b (Π y_i)        = Σ_i Σ_{j∈b} Q_ji (Y − Q QᵀY)_ji
// together Σ_{j∈b} [Q ⊙ (2Y − Q(QᵀY))] summed over the block's coordinates (whole model:
// Tr(QᵀHQ) when Q is orthonormal, the usual Hutch++ deflation term).
//
// The residual term is estimated by Hutchinson with Rademacher g: E[gᵀ P_b Π H Π g] =
// Tr(P_b Π H Π), i.e. per probe z = Π g, w = H z, sample_b = Σ_{j∈b} g_j (Π w)_j (one HVP).
// Because the identity holds for any Q, the estimator is unbiased whatever the sketch captured
// (Q is rounded to the model's dtype once and the same Q is used everywhere). Variance per
// block falls with ‖P_b Π H Π‖_F, i.e. when the sketch captures the dominant eigen-directions.
//
// Standard errors are those of the residual probes, conditional on the sketch. Budget: k sketch
// HVPs + k HVPs for Y + residual probes; by default k = max_hvps/3 (Hutch++'s split). With
// rel_tol, the residual stream stops once every block's std_error/|estimate| <= rel_tol.
// Memory: Q and Y are [P, k] in the model's dtype (P = quantizable weights).
#include <chrono>
#include <cmath>

#include "hawq/errors.h"
#include "hawq/estimator.h"
#include "hawq/registry.h"

namespace hawq {

namespace {

class HutchPlusPlus : public Estimator {
 public:
  explicit HutchPlusPlus(const Params& p) : settings_(p), sketch_(p.get_int("sketch", 0)) {
    if (sketch_ < 0) throw ConfigError(p.where("sketch") + ": the sketch size must be >= 0 (0 = max_hvps/3)");
  }

  Sensitivity estimate(CurvatureOracle& oracle, const Partition& part, const EstimateRequest& req) override {
    const auto t0 = std::chrono::steady_clock::now();
    const std::int64_t budget = settings_.max_hvps(req);
    const double rel_tol = settings_.rel_tol(req);
    const std::int64_t min_probes = settings_.min_probes();
    if (budget < min_probes)
      throw ConfigError("hutchpp: max_hvps=" + std::to_string(budget) + " is below min_probes=" + std::to_string(min_probes));
    const std::size_t nb = part.blocks.size();
    for (const auto& b : part.blocks) HAWQ_CHECK(b.weight < oracle.weights().size(), "partition does not match the model");

    // Shapes of the flat parameter vector.
    const auto like = oracle.zeros_like_weights();
    std::vector<std::int64_t> off = {0};
    for (const auto& t : like) off.push_back(off.back() + t.numel());
    const std::int64_t P = off.back();
    const auto dtype = like[0].scalar_type();
    const auto device = like[0].device();
    auto opts = torch::TensorOptions().dtype(dtype).device(device);

    // k sketch probes; the rest of the budget (at least min_probes) for the residual.
    std::int64_t k = sketch_ > 0 ? sketch_ : budget / 3;
    k = std::min<std::int64_t>({k, (budget - min_probes) / 2, P});
    k = std::max<std::int64_t>(k, 0);

    auto unflat = [&](const torch::Tensor& x) {
      WeightVec v;
      for (std::size_t w = 0; w < like.size(); ++w) v.push_back(x.slice(0, off[w], off[w + 1]).view(like[w].sizes()));
      return v;
    };
    auto flat = [&](const WeightVec& v) {
      std::vector<torch::Tensor> parts;
      for (std::size_t w = 0; w < v.size(); ++w)
        parts.push_back(v[w].defined() ? v[w].reshape(-1) : torch::zeros({like[w].numel()}, opts));
      return torch::cat(parts);
    };
    auto block_sums = [&](const torch::Tensor& x, std::vector<double>& out) {
      std::fill(out.begin(), out.end(), 0.0);
      auto xv = unflat(x);
      for (std::size_t w = 0; w < xv.size(); ++w) accumulate_blocks(part, w, xv[w], out);
    };

    auto gen = at::detail::createCPUGenerator(req.seed);
    auto rademacher = [&](std::int64_t n) {
      return (torch::randint(0, 2, {n}, gen, torch::TensorOptions().dtype(torch::kFloat)) * 2 - 1).to(opts);
    };
    const std::int64_t h0 = oracle.hvp_count();

    // Deterministic part: Σ_{j∈b} [Q ⊙ (2Y − Q QᵀY)]_j.
    std::vector<double> det(nb, 0.0);
    torch::Tensor Q;
    if (k > 0) {
      auto Ys = torch::empty({P, k}, opts);
      for (std::int64_t i = 0; i < k; ++i) Ys.select(1, i).copy_(flat(oracle.hvp(unflat(rademacher(P)))));
      Q = std::get<0>(torch::linalg_qr(Ys, "reduced")).contiguous();
      Ys = torch::Tensor();
      auto Y = torch::empty({P, k}, opts);
      for (std::int64_t i = 0; i < k; ++i) Y.select(1, i).copy_(flat(oracle.hvp(unflat(Q.select(1, i).contiguous()))));
      auto Z = 2 * Y - Q.mm(Q.t().mm(Y));
      block_sums((Q * Z).sum(1), det);
    }
    auto project = [&](const torch::Tensor& x) { return Q.defined() ? x - Q.mv(Q.t().mv(x)) : x; };

    // Residual: Hutchinson on Π H Π.
    Sensitivity s;
    s.estimator = "hutchpp";
    s.quantity = "trace";
    double det_total = 0;
    for (double d : det) det_total += d;
    std::vector<double> sample(nb);
    ProbeMoments moments(nb);
    const std::int64_t residual_budget = budget - 2 * k;
    while (moments.count() < residual_budget) {
      auto g = rademacher(P);
      auto w = flat(oracle.hvp(unflat(project(g))));
      block_sums(g * project(w), sample);
      s.raw_samples.push_back(moments.add(sample, det_total));
      if (moments.count() >= min_probes && rel_tol > 0 && moments.converged(rel_tol, det)) break;
    }
    s.blocks.resize(nb);
    for (std::size_t b = 0; b < nb; ++b) s.blocks[b] = {det[b] + moments.mean(b), moments.std_error(b), moments.count()};
    s.hvps = oracle.hvp_count() - h0;
    s.note = "sketch=" + std::to_string(k) + " residual_probes=" + std::to_string(moments.count());
    s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    s.peak_bytes = peak_rss_bytes();
    return s;
  }

 private:
  ProbeSettings settings_;
  std::int64_t sketch_;
};

}  // namespace

HAWQ_REGISTER_ESTIMATOR("hutchpp", HutchPlusPlus)

}  // namespace hawq
