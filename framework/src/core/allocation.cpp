// Shared allocation helpers: the noise model, evaluation of a choice, feasibility checks.
#include "hawq/allocation.h"

#include <chrono>
#include <cmath>
#include <map>
#include <sstream>

#include "hawq/errors.h"

namespace hawq {

double quant_noise(int bits) { return 1.0 / (std::pow(2.0, 2.0 * bits) - 1.0); }

void AllocationProblem::validate() const {
  const std::size_t n = num_blocks(), k = num_candidates();
  HAWQ_CHECK(k > 0, "allocation problem without candidate bit widths");
  HAWQ_CHECK(distortion.size() == n, "distortion rows != blocks");
  HAWQ_CHECK(!resources.empty(), "allocation problem without a resource");
  HAWQ_CHECK(group.empty() || group.size() == n, "group size != blocks");
  HAWQ_CHECK(pinned_bits.empty() || pinned_bits.size() == n, "pinned_bits size != blocks");
  HAWQ_CHECK(block_names.empty() || block_names.size() == n, "block_names size != blocks");
  for (std::size_t j = 1; j < k; ++j) HAWQ_CHECK(candidate_bits[j - 1] < candidate_bits[j], "candidate bits not ascending");
  for (const auto& r : resources) {
    HAWQ_CHECK(r.cost.size() == n, "resource " + r.name + " cost rows != blocks");
    for (const auto& row : r.cost) HAWQ_CHECK(row.size() == k, "resource " + r.name + " cost columns != candidates");
    HAWQ_CHECK(r.mix_group.empty() || r.mix_group.size() == n, "resource " + r.name + " mix_group size != blocks");
    if (!(std::isfinite(r.mix_factor) && r.mix_factor >= 1.0))
      throw UserError("allocation: resource '" + r.name + "' has mixed-width factor " + std::to_string(r.mix_factor) +
                      "; expected a finite number >= 1");
  }
  for (std::size_t i = 0; i < n; ++i) {
    HAWQ_CHECK(distortion[i].size() == k, "distortion columns != candidates");
    for (double d : distortion[i]) {
      if (!std::isfinite(d) || d < 0) {
        std::string name = block_names.empty() ? std::to_string(i) : block_names[i];
        throw UserError("allocation: distortion of block '" + name + "' is " + std::to_string(d) +
                        "; expected a finite non-negative number (NaN weights or sensitivities?)");
      }
    }
    if (!pinned_bits.empty() && pinned_bits[i] != 0) {
      bool ok = false;
      for (int b : candidate_bits) ok |= (b == pinned_bits[i]);
      if (!ok) {
        std::string name = block_names.empty() ? std::to_string(i) : block_names[i];
        throw UserError("allocation: block '" + name + "' is pinned to " + std::to_string(pinned_bits[i]) +
                        " bits, which is not a candidate width");
      }
    }
  }
}

Allocation evaluate_allocation(const AllocationProblem& p, const std::vector<int>& bits) {
  Allocation a;
  a.bits = bits;
  a.cost.assign(p.resources.size(), 0.0);
  struct Unit {
    double cost = 0;
    int width = 0;
    bool mixed = false;
  };
  std::vector<std::map<int, Unit>> units(p.resources.size());  // per resource: mix group -> its blocks
  for (std::size_t i = 0; i < p.num_blocks(); ++i) {
    std::size_t j = 0;
    while (j < p.num_candidates() && p.candidate_bits[j] != bits[i]) ++j;
    HAWQ_CHECK(j < p.num_candidates(), "allocation uses a width that is not a candidate");
    a.objective += p.distortion[i][j];
    for (std::size_t r = 0; r < p.resources.size(); ++r) {
      const Resource& res = p.resources[r];
      if (res.has_mix_penalty() && res.mix_group[i] >= 0) {
        Unit& u = units[r][res.mix_group[i]];
        if (u.width == 0) u.width = bits[i];
        u.mixed = u.mixed || u.width != bits[i];
        u.cost += res.cost[i][j];
      } else {
        a.cost[r] += res.cost[i][j];
      }
    }
  }
  for (std::size_t r = 0; r < p.resources.size(); ++r)
    for (const auto& kv : units[r]) a.cost[r] += kv.second.mixed ? p.resources[r].mix_factor * kv.second.cost : kv.second.cost;
  return a;
}

// Candidate indices a block may take given its pin.
static std::vector<std::size_t> allowed(const AllocationProblem& p, std::size_t i) {
  std::vector<std::size_t> out;
  for (std::size_t j = 0; j < p.num_candidates(); ++j)
    if (p.pinned_bits.empty() || p.pinned_bits[i] == 0 || p.pinned_bits[i] == p.candidate_bits[j]) out.push_back(j);
  return out;
}

std::pair<double, double> feasible_range(const AllocationProblem& p, std::size_t r) {
  // Tied blocks move together: sum their costs per candidate, then take min/max per group.
  // Untied blocks are their own unit and need no table (keeps this O(n·k) at 10^6 blocks).
  const double inf = std::numeric_limits<double>::infinity();
  const std::size_t k = p.num_candidates();
  std::map<int, std::vector<double>> group_cost;  // group id -> cost per candidate (inf if not allowed)
  std::vector<bool> is_ok(k);
  double lo = 0, hi = 0;
  auto add_unit = [&](const double* unit, std::size_t count) {
    double mn = inf, mx = -inf;
    for (std::size_t j = 0; j < count; ++j)
      if (std::isfinite(unit[j])) {
        mn = std::min(mn, unit[j]);
        mx = std::max(mx, unit[j]);
      }
    if (!std::isfinite(mn)) {
      throw InfeasibleError("allocation: tied blocks are pinned to different widths; no assignment exists");
    }
    lo += mn;
    hi += mx;
  };
  std::vector<double> single(k);
  for (std::size_t i = 0; i < p.num_blocks(); ++i) {
    std::fill(is_ok.begin(), is_ok.end(), false);
    for (auto j : allowed(p, i)) is_ok[j] = true;
    const auto& c = p.resources[r].cost[i];
    if (!p.group.empty() && p.group[i] >= 0) {
      auto& u = group_cost[p.group[i]];
      if (u.empty()) u.assign(k, 0.0);
      for (std::size_t j = 0; j < k; ++j) u[j] = is_ok[j] && std::isfinite(u[j]) ? u[j] + c[j] : inf;
    } else {
      for (std::size_t j = 0; j < k; ++j) single[j] = is_ok[j] ? c[j] : inf;
      add_unit(single.data(), k);
    }
  }
  for (const auto& kv : group_cost) add_unit(kv.second.data(), kv.second.size());
  const Resource& res = p.resources[r];
  if (res.has_mix_penalty()) {  // upper bound: every unit of two or more blocks at its most, penalised
    std::map<int, std::pair<std::size_t, double>> unit;  // mix group -> (blocks, largest additive cost)
    for (std::size_t i = 0; i < p.num_blocks(); ++i) {
      if (res.mix_group[i] < 0) continue;
      double mx = -inf;
      for (auto j : allowed(p, i)) mx = std::max(mx, res.cost[i][j]);
      auto& u = unit[res.mix_group[i]];
      ++u.first;
      u.second += mx;
    }
    for (const auto& kv : unit)
      if (kv.second.first > 1) hi += (res.mix_factor - 1.0) * kv.second.second;
  }
  return {lo, hi};
}

void check_feasible(const AllocationProblem& p) {
  for (std::size_t r = 0; r < p.resources.size(); ++r) {
    auto [lo, hi] = feasible_range(p, r);
    // Relative slack for floating-point sums of many costs.
    if (p.resources[r].budget < lo * (1 - 1e-12) - 1e-9) {
      std::ostringstream m;
      m << "infeasible budget for resource '" << p.resources[r].name << "': " << p.resources[r].budget
        << " is below the smallest achievable total " << lo << " (feasible range [" << lo << ", " << hi
        << "] given candidate widths, pins and ties)";
      throw InfeasibleError(m.str());
    }
  }
}

std::vector<Allocation> Allocator::pareto(const AllocationProblem& problem, std::size_t resource,
                                          const std::vector<double>& budgets) const {
  std::vector<Allocation> out;
  AllocationProblem p = problem;
  for (double b : budgets) {
    p.resources[resource].budget = b;
    try {
      out.push_back(solve(p));
    } catch (const InfeasibleError&) {
    }
  }
  return out;
}

}  // namespace hawq
