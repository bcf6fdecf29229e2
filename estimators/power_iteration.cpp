// Power iteration: the dominant eigenvalue of each block's Hessian H_bb = P_b H P_b.
//
// Each block gets its own vector v_b supported on the block's coordinates; one iteration is
// w = H v_b read back on the block (restricted HVP), λ = v_bᵀ w, v_b ← w/‖w‖, until
// |λ_k − λ_{k−1}| <= tol·|λ_k| or max_iter. Power iteration converges to the eigenvalue of
// LARGEST MAGNITUDE (sign kept, as PyHessian reports it); at a trained minimum this is the top
// eigenvalue HAWQ-v1 uses. std_error is 0 (deterministic given the seed); the note records the
// largest residual ‖H_bb v − λ v‖, a rigorous bound on the distance to some eigenvalue.
//
// Cost. Blocks cannot share an HVP in general: with v = Σ_b v_b, P_b H v = Σ_c H_bc v_c mixes in
// the cross-block terms. In `full` mode every block therefore costs one HVP per iteration
// (blocks × iterations HVPs in total). In `layerwise` mode the oracle's Hessian is I ⊗ 2XXᵀ/N
// per weight, so H_bc = 0 for blocks of different weights or with disjoint row ranges; such
// blocks are iterated together in one HVP, which makes `per: layer` cost just the iterations.
//
// per: layer   (default) one eigenvalue per weight, copied to every block of that weight
//                        (HAWQ-v1's layer sensitivity, whatever the partition)
// per: block   one eigenvalue per block of the partition
// The budget (params max_hvps, else the request's) is split evenly over the groups of blocks
// that share HVPs; fewer than 2 iterations per group is an error naming what is needed.
#include <chrono>
#include <cmath>
#include <algorithm>
#include <map>
#include <tuple>

#include "hawq/errors.h"
#include "hawq/estimator.h"
#include "hawq/registry.h"

namespace hawq {

namespace {

struct Region {  // a rectangle of one weight's 2-D view
  std::size_t weight;
  std::int64_t row0, row1, col0, col1;
};

class PowerIteration : public Estimator {
 public:
  explicit PowerIteration(const Params& p)
      : per_(p.get_choice("per", "layer", {"layer", "block"})),
        tol_(p.get_double("tol", 1e-3)),
        max_iter_(p.get_int("max_iter", 100)),
        max_hvps_(p.get_int("max_hvps", -1)) {
    if (tol_ <= 0) throw ConfigError(p.where("tol") + ": must be positive");
    if (max_iter_ < 2) throw ConfigError(p.where("max_iter") + ": at least 2 iterations are needed");
  }

  Sensitivity estimate(CurvatureOracle& oracle, const Partition& part, const EstimateRequest& req) override {
    const auto t0 = std::chrono::steady_clock::now();
    const auto like = oracle.zeros_like_weights();
    for (const auto& b : part.blocks) HAWQ_CHECK(b.weight < like.size(), "partition does not match the model");

    // Regions to iterate, and which region each partition block reads.
    std::vector<Region> regions;
    std::vector<std::size_t> region_of(part.blocks.size());
    if (per_ == "layer") {
      std::map<std::size_t, std::size_t> seen;
      for (std::size_t bi = 0; bi < part.blocks.size(); ++bi) {
        const std::size_t w = part.blocks[bi].weight;
        if (!seen.count(w)) {
          seen[w] = regions.size();
          regions.push_back({w, 0, like[w].size(0), 0, like[w].numel() / like[w].size(0)});
        }
        region_of[bi] = seen[w];
      }
    } else {
      for (std::size_t bi = 0; bi < part.blocks.size(); ++bi) {
        const auto& b = part.blocks[bi];
        regions.push_back({b.weight, b.row0, b.row1, b.col0, b.col1});
        region_of[bi] = bi;
      }
    }

    // Groups of regions that may share one HVP (see the header).
    std::vector<std::vector<std::size_t>> groups;
    if (oracle.mode() == OracleMode::kLayerwise) {
      // Partitions cut each weight into row bands (identical or disjoint); regions in the same
      // band of the same weight conflict, so a region's colour is its index within its band.
      std::map<std::tuple<std::size_t, std::int64_t, std::int64_t>, std::size_t> band_count;
      std::map<std::size_t, std::vector<std::pair<std::int64_t, std::int64_t>>> bands;
      for (std::size_t i = 0; i < regions.size(); ++i) {
        const auto& r = regions[i];
        const std::size_t c = band_count[{r.weight, r.row0, r.row1}]++;
        if (c == 0) bands[r.weight].push_back({r.row0, r.row1});
        if (groups.size() <= c) groups.resize(c + 1);
        groups[c].push_back(i);
      }
      for (auto& kv : bands) {
        std::sort(kv.second.begin(), kv.second.end());
        for (std::size_t j = 1; j < kv.second.size(); ++j)
          HAWQ_CHECK(kv.second[j - 1].second <= kv.second[j].first, "power_iteration: partition row bands overlap");
      }
    } else {
      for (std::size_t i = 0; i < regions.size(); ++i) groups.push_back({i});
    }

    const std::int64_t budget = max_hvps_ > 0 ? max_hvps_ : req.max_hvps;
    const std::int64_t iters =
        groups.empty() ? 0 : std::min<std::int64_t>(max_iter_, budget / static_cast<std::int64_t>(groups.size()));
    if (!groups.empty() && iters < 2)
      throw ConfigError("power_iteration: " + std::to_string(groups.size()) + " block groups need at least " +
                        std::to_string(2 * groups.size()) + " HVPs (max_hvps=" + std::to_string(budget) +
                        "); raise max_hvps, or use per: layer or a coarser partition");

    auto gen = at::detail::createCPUGenerator(req.seed);
    auto view = [&](const torch::Tensor& t, const Region& r) {
      return t.view({t.size(0), -1}).slice(0, r.row0, r.row1).slice(1, r.col0, r.col1);
    };
    std::vector<double> lambda(regions.size(), 0.0), residual(regions.size(), 0.0);
    std::vector<std::int64_t> used(regions.size(), 0);
    const std::int64_t h0 = oracle.hvp_count();
    std::vector<torch::Tensor> v(regions.size());
    for (const auto& group : groups) {
      // Random unit start vector per region.
      for (std::size_t i : group) {
        const auto& r = regions[i];
        auto x = torch::randn({r.row1 - r.row0, r.col1 - r.col0}, gen, torch::TensorOptions().dtype(torch::kDouble));
        v[i] = (x / x.norm()).to(like[r.weight].device());
      }
      std::vector<std::size_t> active = group;
      for (std::int64_t it = 0; it < iters && !active.empty(); ++it) {
        WeightVec in(like.size());
        for (std::size_t i : active) {
          const auto& r = regions[i];
          if (!in[r.weight].defined()) in[r.weight] = torch::zeros_like(like[r.weight]);
          view(in[r.weight], r).copy_(v[i]);
        }
        auto out = oracle.hvp(in);
        std::vector<std::size_t> still;
        for (std::size_t i : active) {
          const auto& r = regions[i];
          auto w = view(out[r.weight], r).to(torch::kDouble);
          const double lam = (v[i] * w).sum().item<double>();
          residual[i] = (w - lam * v[i]).norm().item<double>();
          const double prev = lambda[i];
          lambda[i] = lam;
          ++used[i];
          const double nrm = w.norm().item<double>();
          if (nrm == 0.0) continue;  // H_bb v = 0: the block's curvature is zero along v; λ = 0
          v[i] = w / nrm;
          if (it == 0 || std::abs(lam - prev) > tol_ * std::abs(lam)) still.push_back(i);
        }
        active = still;
      }
      for (std::size_t i : group) v[i] = torch::Tensor();
    }

    Sensitivity s;
    s.estimator = "power_iteration";
    s.quantity = "top_eigenvalue";
    s.blocks.resize(part.blocks.size());
    double worst = 0;
    for (std::size_t bi = 0; bi < part.blocks.size(); ++bi) {
      const std::size_t i = region_of[bi];
      s.blocks[bi] = {lambda[i], 0.0, used[i]};
      worst = std::max(worst, residual[i]);
    }
    s.hvps = oracle.hvp_count() - h0;
    s.note = "per=" + per_ + " groups=" + std::to_string(groups.size()) + " max_residual=" + std::to_string(worst);
    s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    s.peak_bytes = peak_rss_bytes();
    return s;
  }

 private:
  std::string per_;
  double tol_;
  std::int64_t max_iter_, max_hvps_;
};

}  // namespace

HAWQ_REGISTER_ESTIMATOR("power_iteration", PowerIteration)

}  // namespace hawq
