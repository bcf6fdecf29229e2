// Bit allocators against exhaustive enumeration on small random problems, plus frontier, error and
// scale checks. Every registered allocator runs through the parametrised tests.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "hawq/allocation.h"
#include "hawq/errors.h"
#include "hawq/params.h"
#include "hawq/registry.h"

namespace {

using hawq::Allocation;
using hawq::AllocationProblem;
using hawq::Allocator;
using hawq::InfeasibleError;
using hawq::Params;
using hawq::UserError;

constexpr double kInf = std::numeric_limits<double>::infinity();

std::unique_ptr<Allocator> make(const std::string& name, const std::string& yaml = "{}") {
  return hawq::Registry<Allocator>::instance().create(name, Params::from_yaml(yaml));
}

// ------------------------------------------------------------------ random problems

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : g_(seed) {}
  double uni(double a, double b) { return std::uniform_real_distribution<double>(a, b)(g_); }
  int pick(int a, int b) { return std::uniform_int_distribution<int>(a, b)(g_); }
  double normal(double m, double s) { return std::normal_distribution<double>(m, s)(g_); }
  std::mt19937_64& engine() { return g_; }

 private:
  std::mt19937_64 g_;
};

// At most 10 blocks, 3-5 candidate widths, mixed distortion and cost models, tied groups and pins
// (consistent ones), and `num_resources` resources (bits, latency, BOPS).
AllocationProblem random_problem(std::uint64_t seed, std::size_t num_resources, int max_blocks = 10) {
  Rng g(seed);
  AllocationProblem p;
  const int n = g.pick(1, max_blocks);
  const int k = g.pick(3, 5);
  std::vector<int> pool{2, 3, 4, 5, 6, 8};
  std::shuffle(pool.begin(), pool.end(), g.engine());
  p.candidate_bits.assign(pool.begin(), pool.begin() + k);
  std::sort(p.candidate_bits.begin(), p.candidate_bits.end());
  const int dist_kind = g.pick(0, 2), cost_kind = g.pick(0, 1);
  const bool ties = g.pick(0, 1) == 1, pins = g.pick(0, 2) == 0;

  p.resources.resize(num_resources);
  const char* names[] = {"bits", "latency_us", "bops"};
  for (std::size_t r = 0; r < num_resources; ++r) p.resources[r].name = names[r % 3];
  for (int i = 0; i < n; ++i) {
    p.block_names.push_back("blk" + std::to_string(i));
    const std::int64_t numel = 64 * g.pick(1, 16);
    p.numel.push_back(numel);
    const double omega = std::exp(g.normal(0, 1.5));
    std::vector<double> d;
    for (int b : p.candidate_bits) {
      double v = omega * hawq::quant_noise(b) * static_cast<double>(numel);
      if (dist_kind == 1) v *= g.uni(0.6, 1.4);  // measured: noisy, not always monotone in bits
      if (dist_kind == 2) v = g.uni(0, 1);       // arbitrary
      d.push_back(v);
    }
    p.distortion.push_back(d);
    for (std::size_t r = 0; r < num_resources; ++r) {
      std::vector<double> c;
      for (int b : p.candidate_bits) {
        const double bits = static_cast<double>(numel) * b;
        double v;
        if (r % 3 == 0) v = cost_kind == 0 ? bits : bits * g.uni(0.9, 1.3);
        else if (r % 3 == 1) v = bits / 1000.0 * g.uni(0.5, 1.5) + g.uni(0, 2);  // measured latency
        else v = bits * 8;                                                        // BOPS, 8-bit activations
        c.push_back(v);
      }
      p.resources[r].cost.push_back(c);
    }
  }
  if (ties) {
    for (int i = 0; i < n; ++i) {
      const int r = g.pick(0, 5);
      p.group.push_back(r < 3 ? -1 : r - 3);
    }
  }
  if (pins) {
    std::map<long, int> unit_pin;
    p.pinned_bits.assign(n, 0);
    for (int i = 0; i < n; ++i) {
      const bool tied = !p.group.empty() && p.group[i] >= 0;
      const long key = tied ? p.group[i] : -1 - i;
      if (!unit_pin.count(key)) unit_pin[key] = g.pick(0, 3) == 0 ? p.candidate_bits[g.pick(0, k - 1)] : 0;
      p.pinned_bits[i] = (!tied || g.pick(0, 1) == 1) ? unit_pin[key] : 0;
    }
  }
  for (std::size_t r = 0; r < num_resources; ++r) {
    auto [lo, hi] = hawq::feasible_range(p, r);
    if (r == 0) {
      const int mode = g.pick(0, 9);
      p.resources[r].budget = mode == 0 ? lo : mode == 1 ? hi : mode == 2 ? kInf : lo + g.uni(0, 1) * (hi - lo);
    } else {
      p.resources[r].budget = lo + g.uni(0.3, 1.0) * (hi - lo);
    }
  }
  return p;
}

// ------------------------------------------------------------------ exhaustive enumeration

struct Brute {
  bool feasible = false;
  double objective = kInf;
  std::vector<int> bits;
};

bool meets(double total, double budget) {
  return total <= budget + 1e-12 * std::max(std::abs(budget), std::abs(total)) + 1e-12;
}

// Total of resource r for per-block widths, with its mixed-width penalty: blocks sharing a
// mix_group id >= 0 whose widths differ pay mix_factor times their summed cost. Written apart from
// hawq::evaluate_allocation so the two check each other.
double penalised_total(const AllocationProblem& p, std::size_t r, const std::vector<int>& bits) {
  const hawq::Resource& res = p.resources[r];
  std::map<int, std::pair<std::set<int>, double>> unit;
  double total = 0;
  for (std::size_t i = 0; i < p.num_blocks(); ++i) {
    const std::size_t j = static_cast<std::size_t>(
        std::find(p.candidate_bits.begin(), p.candidate_bits.end(), bits[i]) - p.candidate_bits.begin());
    if (res.mix_group.empty() || res.mix_group[i] < 0) {
      total += res.cost[i][j];
    } else {
      unit[res.mix_group[i]].first.insert(bits[i]);
      unit[res.mix_group[i]].second += res.cost[i][j];
    }
  }
  for (const auto& kv : unit) total += (kv.second.first.size() > 1 ? res.mix_factor : 1.0) * kv.second.second;
  return total;
}

// Enumerates every width of every unit (a tied group or an untied block) the pins allow.
Brute brute_force(const AllocationProblem& p) {
  const std::size_t n = p.num_blocks(), k = p.num_candidates(), nr = p.resources.size();
  std::map<long, std::vector<std::size_t>> by_key;
  for (std::size_t i = 0; i < n; ++i) {
    const long key = (!p.group.empty() && p.group[i] >= 0) ? p.group[i] : -1 - static_cast<long>(i);
    by_key[key].push_back(i);
  }
  std::vector<std::vector<std::size_t>> units;
  for (auto& kv : by_key) units.push_back(kv.second);
  const std::size_t m = units.size();
  std::vector<std::vector<std::size_t>> allowed(m);
  std::vector<std::vector<double>> ud(m, std::vector<double>(k, 0));
  std::vector<std::vector<std::vector<double>>> uc(m, std::vector<std::vector<double>>(nr, std::vector<double>(k, 0)));
  for (std::size_t u = 0; u < m; ++u) {
    for (std::size_t j = 0; j < k; ++j) {
      bool ok = true;
      for (std::size_t i : units[u]) {
        if (!p.pinned_bits.empty() && p.pinned_bits[i] != 0 && p.pinned_bits[i] != p.candidate_bits[j]) ok = false;
        ud[u][j] += p.distortion[i][j];
        for (std::size_t r = 0; r < nr; ++r) uc[u][r][j] += p.resources[r].cost[i][j];
      }
      if (ok) allowed[u].push_back(j);
    }
  }
  Brute best;
  std::vector<std::size_t> pick(m);
  std::vector<double> cost(nr, 0);
  std::vector<int> leaf(n);
  std::function<void(std::size_t, double)> dfs = [&](std::size_t u, double dist) {
    if (u == m) {
      for (std::size_t v = 0; v < m; ++v)
        for (std::size_t i : units[v]) leaf[i] = p.candidate_bits[pick[v]];
      for (std::size_t r = 0; r < nr; ++r) {
        const double total = p.resources[r].has_mix_penalty() ? penalised_total(p, r, leaf) : cost[r];
        if (!meets(total, p.resources[r].budget)) return;
      }
      if (dist < best.objective) {
        best.feasible = true;
        best.objective = dist;
        best.bits.assign(n, 0);
        for (std::size_t v = 0; v < m; ++v)
          for (std::size_t i : units[v]) best.bits[i] = p.candidate_bits[pick[v]];
      }
      return;
    }
    for (std::size_t j : allowed[u]) {
      pick[u] = j;
      for (std::size_t r = 0; r < nr; ++r) cost[r] += uc[u][r][j];
      dfs(u + 1, dist + ud[u][j]);
      for (std::size_t r = 0; r < nr; ++r) cost[r] -= uc[u][r][j];
    }
  };
  dfs(0, 0.0);
  if (best.feasible) best.objective = hawq::evaluate_allocation(p, best.bits).objective;
  return best;
}

// ------------------------------------------------------------------ checks

// The answer is a valid assignment that meets every budget, and its reported numbers are its own.
void expect_valid(const AllocationProblem& p, const Allocation& a, const std::string& ctx) {
  ASSERT_EQ(a.bits.size(), p.num_blocks()) << ctx;
  for (std::size_t i = 0; i < p.num_blocks(); ++i) {
    EXPECT_NE(std::find(p.candidate_bits.begin(), p.candidate_bits.end(), a.bits[i]), p.candidate_bits.end()) << ctx;
    if (!p.pinned_bits.empty() && p.pinned_bits[i] != 0) {
      EXPECT_EQ(a.bits[i], p.pinned_bits[i]) << ctx << " block " << i;
    }
    if (!p.group.empty() && p.group[i] >= 0) {
      for (std::size_t i2 = 0; i2 < i; ++i2) {
        if (p.group[i2] == p.group[i]) {
          EXPECT_EQ(a.bits[i], a.bits[i2]) << ctx << " tied blocks " << i2 << "," << i;
        }
      }
    }
  }
  const Allocation e = hawq::evaluate_allocation(p, a.bits);
  EXPECT_NEAR(a.objective, e.objective, 1e-12 * std::max(1.0, e.objective)) << ctx;
  ASSERT_EQ(a.cost.size(), p.resources.size()) << ctx;
  for (std::size_t r = 0; r < p.resources.size(); ++r) {
    EXPECT_NEAR(a.cost[r], e.cost[r], 1e-12 * std::max(1.0, std::abs(e.cost[r]))) << ctx;
    const double b = p.resources[r].budget;
    if (std::isfinite(b)) {
      EXPECT_LE(e.cost[r], b + 1e-9 * std::abs(b) + 1e-9) << ctx << " resource " << r;
    }
  }
  EXPECT_GE(a.seconds, 0) << ctx;
  EXPECT_FALSE(a.note.empty()) << ctx;
}

// Compares with the optimum: never better than it, exact for the ILP, within the reported gap bound
// for every allocator that reports a finite one.
void expect_near_optimum(const std::string& name, const Allocation& a, double opt, const std::string& ctx) {
  const double tol = 1e-9 * std::max(opt, 1e-300);
  EXPECT_GE(a.objective, opt - tol) << ctx;
  if (name == "hardware") {
    EXPECT_LE(std::abs(a.objective - opt), tol) << ctx << " " << a.note;
    EXPECT_EQ(a.gap_bound, 0.0) << ctx;
  }
  if (name == "dp" || name == "lagrangian" || name == "hardware") {
    ASSERT_TRUE(a.gap_bound >= 0 && std::isfinite(a.gap_bound)) << ctx << " gap " << a.gap_bound;
  }
  if (a.gap_bound >= 0 && std::isfinite(a.gap_bound)) {
    EXPECT_LE(a.objective, opt + a.gap_bound * std::max(opt, 1e-300) + tol) << ctx << " gap " << a.gap_bound << " " << a.note;
  }
  if (name == "greedy") {
    EXPECT_TRUE(std::isnan(a.gap_bound)) << ctx;
  }
}

std::string describe(std::uint64_t seed, const AllocationProblem& p) {
  std::string s = "seed " + std::to_string(seed) + ", " + std::to_string(p.num_blocks()) + " blocks, bits {";
  for (std::size_t j = 0; j < p.num_candidates(); ++j) s += (j ? "," : "") + std::to_string(p.candidate_bits[j]);
  return s + "}";
}

class AllocatorTest : public ::testing::TestWithParam<std::string> {};

TEST_P(AllocatorTest, MatchesBruteForceOnOneResource) {
  const std::string name = GetParam();
  auto alloc = make(name);
  int solved = 0, exact = 0, bounded = 0;
  double gap_sum = 0, gap_max = 0, bound_sum = 0, bound_max = 0;
  for (std::uint64_t seed = 1; seed <= 300; ++seed) {
    const AllocationProblem p = random_problem(seed, 1);
    const std::string ctx = name + " " + describe(seed, p);
    const Brute opt = brute_force(p);
    ASSERT_TRUE(opt.feasible) << ctx;
    Allocation a;
    ASSERT_NO_THROW(a = alloc->solve(p)) << ctx;
    expect_valid(p, a, ctx);
    expect_near_optimum(name, a, opt.objective, ctx);
    ++solved;
    const double g = (a.objective - opt.objective) / std::max(opt.objective, 1e-300);
    exact += g <= 1e-12;
    gap_sum += std::max(0.0, g);
    gap_max = std::max(gap_max, g);
    if (std::isfinite(a.gap_bound)) {
      ++bounded;
      bound_sum += a.gap_bound;
      bound_max = std::max(bound_max, a.gap_bound);
    }
  }
  std::cout << "[ " << name << " ] " << solved << " random problems: optimal in " << exact << ", measured gap to the optimum"
            << " mean " << gap_sum / solved << " max " << gap_max << "; reported gap bound ";
  if (bounded) std::cout << "mean " << bound_sum / bounded << " max " << bound_max << "\n";
  else std::cout << "none\n";
  RecordProperty("optimal_" + name, exact);
  RecordProperty("mean_gap_" + name, std::to_string(gap_sum / solved));
  RecordProperty("max_gap_" + name, std::to_string(gap_max));
}

TEST_P(AllocatorTest, MatchesBruteForceOnSeveralResources) {
  const std::string name = GetParam();
  auto alloc = make(name);
  int feasible = 0, answered = 0, referred = 0;
  for (std::uint64_t seed = 1001; seed <= 1200; ++seed) {
    const AllocationProblem p = random_problem(seed, seed % 2 ? 2 : 3);
    const std::string ctx = name + " " + describe(seed, p) + ", " + std::to_string(p.resources.size()) + " resources";
    const Brute opt = brute_force(p);
    feasible += opt.feasible;
    if (!opt.feasible) {
      // Each budget alone is achievable (the generator keeps them in range) but not all at once.
      if (name == "hardware") {
        try {
          alloc->solve(p);
          ADD_FAILURE() << ctx << ": expected InfeasibleError";
        } catch (const InfeasibleError& e) {
          EXPECT_NE(std::string(e.what()).find("feasible range ["), std::string::npos) << e.what();
          EXPECT_NE(std::string(e.what()).find("'latency_us'"), std::string::npos) << e.what();
        }
      } else {
        EXPECT_THROW(alloc->solve(p), UserError) << ctx;
      }
      continue;
    }
    Allocation a;
    try {
      a = alloc->solve(p);
    } catch (const InfeasibleError& e) {
      ADD_FAILURE() << ctx << ": " << e.what();
      continue;
    } catch (const UserError& e) {
      // Single-resource solvers refer to the ILP when a secondary budget binds their answer.
      EXPECT_NE(name, "hardware") << ctx << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find("'hardware'"), std::string::npos) << e.what();
      ++referred;
      continue;
    }
    ++answered;
    expect_valid(p, a, ctx);
    expect_near_optimum(name, a, opt.objective, ctx);
  }
  std::cout << "[ " << name << " ] several budgets: " << feasible << " of 200 jointly feasible, " << answered
            << " answered, " << referred << " referred to 'hardware'\n";
  if (name == "hardware") {
    EXPECT_EQ(answered, feasible);
  }
}

TEST_P(AllocatorTest, ParetoFrontierIsMonotone) {
  const std::string name = GetParam();
  auto alloc = make(name);
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    const AllocationProblem p = random_problem(seed, 1);
    const std::string ctx = name + " " + describe(seed, p);
    auto [lo, hi] = hawq::feasible_range(p, 0);
    std::vector<double> budgets;
    for (int t = 0; t <= 12; ++t) budgets.push_back(lo + (hi - lo) * (t - 2) / 10.0);
    const auto front = alloc->pareto(p, 0, budgets);
    std::vector<double> feasible_budgets;  // the points below the range are skipped
    for (double b : budgets)
      if (b >= lo * (1 - 1e-12) - 1e-9) feasible_budgets.push_back(b);
    ASSERT_EQ(front.size(), feasible_budgets.size()) << ctx;
    for (std::size_t t = 0; t < front.size(); ++t) {
      AllocationProblem q = p;
      q.resources[0].budget = feasible_budgets[t];
      expect_valid(q, front[t], ctx + " budget " + std::to_string(feasible_budgets[t]));
      if (t > 0) {
        EXPECT_LE(front[t].objective, front[t - 1].objective * (1 + 1e-12) + 1e-300) << ctx << " point " << t;
      }
    }
    // The frontier agrees with the optimum at every point, within the reported bound.
    for (std::size_t t = 0; t < front.size(); t += 3) {
      AllocationProblem q = p;
      q.resources[0].budget = feasible_budgets[t];
      expect_near_optimum(name, front[t], brute_force(q).objective, ctx + " point " + std::to_string(t));
    }
  }
}

// Every infeasible or invalid problem is a user error that says what is wrong.
TEST_P(AllocatorTest, InfeasibleAndInvalidProblemsAreErrors) {
  const std::string name = GetParam();
  auto alloc = make(name);
  for (std::uint64_t seed = 1; seed <= 30; ++seed) {
    AllocationProblem p = random_problem(seed, 1);
    auto [lo, hi] = hawq::feasible_range(p, 0);
    // Budget below the smallest achievable total.
    AllocationProblem below = p;
    below.resources[0].budget = lo * 0.9 - 1;
    try {
      alloc->solve(below);
      ADD_FAILURE() << name << " seed " << seed << ": expected InfeasibleError";
    } catch (const InfeasibleError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("feasible range ["), std::string::npos) << msg;
      EXPECT_NE(msg.find("'bits'"), std::string::npos) << msg;
      std::ostringstream range;
      range << "[" << lo << ", " << hi << "]";
      EXPECT_NE(msg.find(range.str()), std::string::npos) << msg << " vs " << range.str();
    }
    EXPECT_TRUE(alloc->pareto(below, 0, {below.resources[0].budget}).empty()) << name;
  }
  AllocationProblem p = random_problem(7, 1);
  p.resources[0].budget = kInf;
  p.group.assign(p.num_blocks(), -1);
  p.pinned_bits.assign(p.num_blocks(), 0);
  // Pinned width that is not a candidate.
  {
    AllocationProblem q = p;
    q.pinned_bits[0] = 7;
    try {
      alloc->solve(q);
      ADD_FAILURE() << name << ": expected UserError";
    } catch (const InfeasibleError& e) {
      ADD_FAILURE() << name << ": wrong error type: " << e.what();
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find("not a candidate"), std::string::npos) << e.what();
    }
  }
  // NaN distortion.
  {
    AllocationProblem q = p;
    q.distortion[0][1] = std::nan("");
    try {
      alloc->solve(q);
      ADD_FAILURE() << name << ": expected UserError";
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find("NaN"), std::string::npos) << e.what();
    }
  }
  // Tied blocks pinned to different widths.
  {
    AllocationProblem q = random_problem(8, 1);
    while (q.num_blocks() < 2) q = random_problem(q.num_blocks() + 100, 1);
    q.group.assign(q.num_blocks(), -1);
    q.group[0] = q.group[1] = 5;
    q.pinned_bits.assign(q.num_blocks(), 0);
    q.pinned_bits[0] = q.candidate_bits[0];
    q.pinned_bits[1] = q.candidate_bits[1];
    try {
      alloc->solve(q);
      ADD_FAILURE() << name << ": expected InfeasibleError";
    } catch (const InfeasibleError& e) {
      EXPECT_NE(std::string(e.what()).find("tied blocks"), std::string::npos) << e.what();
    }
  }
}

TEST_P(AllocatorTest, DegenerateProblems) {
  const std::string name = GetParam();
  auto alloc = make(name);
  // No blocks.
  AllocationProblem empty;
  empty.candidate_bits = {2, 4, 8};
  empty.resources.resize(1);
  empty.resources[0].name = "bits";
  empty.resources[0].budget = 0;
  Allocation a = alloc->solve(empty);
  EXPECT_TRUE(a.bits.empty());
  EXPECT_EQ(a.objective, 0);
  // Every block pinned.
  AllocationProblem p = random_problem(3, 1);
  p.group.clear();
  p.pinned_bits.assign(p.num_blocks(), p.candidate_bits[1]);
  p.resources[0].budget = hawq::feasible_range(p, 0).first;
  a = alloc->solve(p);
  for (int b : a.bits) EXPECT_EQ(b, p.candidate_bits[1]);
  // All blocks in one tied group.
  p = random_problem(4, 1);
  p.pinned_bits.clear();
  p.group.assign(p.num_blocks(), 0);
  auto [lo, hi] = hawq::feasible_range(p, 0);
  p.resources[0].budget = 0.5 * (lo + hi);
  a = alloc->solve(p);
  expect_valid(p, a, name + " one group");
  expect_near_optimum(name, a, brute_force(p).objective, name + " one group");
}

TEST_P(AllocatorTest, RejectsUnknownParams) {
  EXPECT_THROW(make(GetParam(), "{no_such_key: 1}"), hawq::ConfigError);
}

INSTANTIATE_TEST_SUITE_P(Registered, AllocatorTest,
                         ::testing::ValuesIn(hawq::Registry<Allocator>::instance().names()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST(AllocatorRegistry, ListsEveryAllocator) {
  const auto names = hawq::Registry<Allocator>::instance().names();
  for (const char* want : {"dp", "greedy", "lagrangian"})
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
#ifdef HAWQ_HAVE_GLPK
  EXPECT_NE(std::find(names.begin(), names.end(), "hardware"), names.end());
#endif
  try {
    make("lagrangain");
    ADD_FAILURE() << "expected ConfigError";
  } catch (const hawq::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'lagrangian'"), std::string::npos) << e.what();
  }
}

// ------------------------------------------------------------------ dp

TEST(DpAllocator, GapBoundHoldsAtCoarseResolutions) {
  int positive = 0;
  for (long long res : {3, 10, 50}) {
    auto dp = make("dp", "{resolution: " + std::to_string(res) + "}");
    for (std::uint64_t seed = 1; seed <= 150; ++seed) {
      const AllocationProblem p = random_problem(seed, 1);
      const std::string ctx = "dp resolution " + std::to_string(res) + " " + describe(seed, p);
      const Allocation a = dp->solve(p);
      expect_valid(p, a, ctx);
      expect_near_optimum("dp", a, brute_force(p).objective, ctx);
      positive += a.gap_bound > 0;
    }
  }
  EXPECT_GT(positive, 0);  // coarse buckets do cost something, and the bound says so
}

TEST(DpAllocator, ExactOnEqualTilesAndStatesResolution) {
  // Equal 128x128 tiles priced in bits: shifted costs share the step 16384, buckets are exact.
  Rng g(5);
  AllocationProblem p;
  p.candidate_bits = {2, 3, 4, 8};
  p.resources.resize(1);
  p.resources[0].name = "bits";
  for (int i = 0; i < 500; ++i) {
    p.numel.push_back(16384);
    const double omega = std::exp(g.normal(0, 1));
    std::vector<double> d, c;
    for (int b : p.candidate_bits) {
      d.push_back(omega * hawq::quant_noise(b));
      c.push_back(16384.0 * b);
    }
    p.distortion.push_back(d);
    p.resources[0].cost.push_back(c);
  }
  p.resources[0].budget = 16384.0 * 4 * 500;
  const Allocation a = make("dp")->solve(p);
  EXPECT_EQ(a.gap_bound, 0);
  EXPECT_NE(a.note.find("exact buckets"), std::string::npos) << a.note;
  // Real-valued costs: the note states the resolution.
  p.resources[0].cost[0][1] += 0.5;
  const Allocation b = make("dp", "{resolution: 1234}")->solve(p);
  EXPECT_NE(b.note.find("resolution 1234 buckets"), std::string::npos) << b.note;
  EXPECT_GE(b.gap_bound, 0);
  EXPECT_LT(b.gap_bound, 1e-2);
}

TEST(DpAllocator, TooManyItemsPointsToLagrangian) {
  AllocationProblem p = random_problem(11, 1);
  while (p.num_blocks() < 4) p = random_problem(p.num_blocks() + 200, 1);
  p.group.clear();
  p.pinned_bits.clear();
  auto [lo, hi] = hawq::feasible_range(p, 0);
  p.resources[0].budget = 0.5 * (lo + hi);
  try {
    make("dp", "{max_items: 2}")->solve(p);
    ADD_FAILURE() << "expected UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("'lagrangian'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make("dp", "{resolution: 0}"), hawq::ConfigError);
}

// ------------------------------------------------------------------ at scale (beyond enumeration)

AllocationProblem tile_problem(std::size_t n, std::uint64_t seed, bool real_costs) {
  Rng g(seed);
  AllocationProblem p;
  p.candidate_bits = {2, 3, 4, 5, 6, 8};
  p.resources.resize(1);
  p.resources[0].name = "bits";
  for (std::size_t i = 0; i < n; ++i) {
    p.numel.push_back(16384);
    const double omega = std::exp(g.normal(0, 1.5));
    std::vector<double> d, c;
    for (int b : p.candidate_bits) {
      d.push_back(omega * hawq::quant_noise(b) * g.uni(0.9, 1.1));
      c.push_back(16384.0 * b * (real_costs ? g.uni(0.95, 1.05) : 1.0));
    }
    p.distortion.push_back(d);
    p.resources[0].cost.push_back(c);
  }
  p.resources[0].budget = 16384.0 * 4 * static_cast<double>(n);
  return p;
}

TEST(AllocatorsAtScale, BoundsAreConsistentAcrossSolvers) {
  for (bool real_costs : {false, true}) {
    const AllocationProblem p = tile_problem(3000, 21, real_costs);
    const Allocation dp = make("dp")->solve(p);
    const Allocation lg = make("lagrangian")->solve(p);
    const Allocation gr = make("greedy")->solve(p);
    expect_valid(p, dp, "dp");
    expect_valid(p, lg, "lagrangian");
    expect_valid(p, gr, "greedy");
    const double dp_lower = dp.objective / (1 + dp.gap_bound), lg_lower = lg.objective / (1 + lg.gap_bound);
    const double best = std::min({dp.objective, lg.objective, gr.objective});
    // Every lower bound is below every feasible answer.
    EXPECT_LE(dp_lower, best * (1 + 1e-12));
    EXPECT_LE(lg_lower, best * (1 + 1e-12));
    EXPECT_LT(lg.gap_bound, 1e-3);
    if (!real_costs) {
      EXPECT_EQ(dp.gap_bound, 0);
    }
    std::cout << "3000 tiles" << (real_costs ? " (real costs)" : "") << ": dp " << dp.objective << " (gap bound "
              << dp.gap_bound << "), lagrangian " << lg.objective << " (gap bound " << lg.gap_bound << "), greedy "
              << gr.objective << " (+" << (gr.objective / dp_lower - 1) << " over dp's lower bound)\n";
  }
}

TEST(AllocatorsAtScale, LagrangianGapShrinksWithSize) {
  const AllocationProblem p = tile_problem(200000, 3, true);
  const Allocation a = make("lagrangian")->solve(p);
  expect_valid(p, a, "lagrangian 2e5");
  EXPECT_LT(a.gap_bound, 1e-5) << a.note;
  const auto front = make("lagrangian")->pareto(p, 0, {p.resources[0].budget * 0.8, p.resources[0].budget});
  ASSERT_EQ(front.size(), 2u);
  EXPECT_NEAR(front[1].objective, a.objective, 1e-12 * a.objective);
  EXPECT_GT(front[0].objective, front[1].objective);
}

TEST(AllocatorsAtScale, GreedyFrontierMatchesSolve) {
  const AllocationProblem p = tile_problem(2000, 9, true);
  auto greedy = make("greedy");
  std::vector<double> budgets;
  for (double f : {0.6, 0.9, 0.75, 1.0}) budgets.push_back(p.resources[0].budget * f);
  const auto front = greedy->pareto(p, 0, budgets);
  ASSERT_EQ(front.size(), budgets.size());
  for (std::size_t t = 0; t < budgets.size(); ++t) {
    AllocationProblem q = p;
    q.resources[0].budget = budgets[t];
    EXPECT_EQ(front[t].bits, greedy->solve(q).bits) << t;
  }
}

// ------------------------------------------------------------------ hardware

#ifdef HAWQ_HAVE_GLPK
// Keeps candidate columns whose width is in `widths`.
AllocationProblem restrict_widths(const AllocationProblem& p, const std::vector<int>& widths) {
  AllocationProblem q = p;
  std::vector<std::size_t> keep;
  for (std::size_t j = 0; j < p.num_candidates(); ++j)
    if (std::find(widths.begin(), widths.end(), p.candidate_bits[j]) != widths.end()) keep.push_back(j);
  q.candidate_bits.clear();
  for (auto j : keep) q.candidate_bits.push_back(p.candidate_bits[j]);
  auto take = [&](std::vector<double>& row) {
    std::vector<double> out;
    for (auto j : keep) out.push_back(row[j]);
    row = out;
  };
  for (auto& row : q.distortion) take(row);
  for (auto& r : q.resources)
    for (auto& row : r.cost) take(row);
  return q;
}

TEST(HardwareAllocator, SupportedBitsRestrictWidths) {
  auto hw = make("hardware", "{supported_bits: [3, 4, 8]}");
  int checked = 0;
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    AllocationProblem p = random_problem(seed, 1 + seed % 3);
    p.pinned_bits.clear();
    const AllocationProblem q = restrict_widths(p, {3, 4, 8});
    if (q.candidate_bits.empty()) {
      EXPECT_THROW(hw->solve(p), UserError);
      continue;
    }
    bool feasible_alone = true;
    for (std::size_t r = 0; r < q.resources.size(); ++r)
      feasible_alone &= q.resources[r].budget >= hawq::feasible_range(q, r).first * (1 - 1e-12) - 1e-9;
    const Brute opt = brute_force(q);
    const std::string ctx = "hardware supported [3,4,8] " + describe(seed, p);
    if (!opt.feasible) {
      try {
        hw->solve(p);
        ADD_FAILURE() << ctx << ": expected InfeasibleError";
      } catch (const InfeasibleError& e) {
        EXPECT_NE(std::string(e.what()).find("feasible range ["), std::string::npos) << e.what();
        if (!feasible_alone && q.candidate_bits.size() < p.candidate_bits.size()) {
          EXPECT_NE(std::string(e.what()).find("supported_bits"), std::string::npos) << e.what();
        }
      }
      continue;
    }
    const Allocation a = hw->solve(p);
    expect_valid(p, a, ctx);
    for (int b : a.bits) EXPECT_TRUE(b == 3 || b == 4 || b == 8) << ctx;
    expect_near_optimum("hardware", a, opt.objective, ctx);
    ++checked;
  }
  EXPECT_GT(checked, 50);
}

TEST(HardwareAllocator, PinnedWidthMustBeSupported) {
  AllocationProblem p = random_problem(2, 1);
  p.candidate_bits = {2, 4, 8};
  for (auto& row : p.distortion) row.resize(3);
  for (auto& row : p.resources[0].cost) row.resize(3);
  p.group.clear();
  p.pinned_bits.assign(p.num_blocks(), 0);
  p.pinned_bits[0] = 2;
  p.resources[0].budget = kInf;
  try {
    make("hardware", "{supported_bits: [4, 8]}")->solve(p);
    ADD_FAILURE() << "expected UserError";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("pinned to 2 bits"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("supported_bits [4, 8]"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(make("hardware", "{supported_bits: [2, 4, 8]}")->solve(p));
}

TEST(HardwareAllocator, ParamsAreRead) {
  const AllocationProblem p = random_problem(17, 2);
  const Brute opt = brute_force(p);
  auto hw = make("hardware", "{verbose: false, time_limit_s: 5, mip_gap: 0.05}");
  if (!opt.feasible) {
    EXPECT_THROW(hw->solve(p), InfeasibleError);
    return;
  }
  const Allocation a = hw->solve(p);
  expect_valid(p, a, "mip_gap 0.05");
  EXPECT_LE(a.objective, opt.objective * (1 + a.gap_bound) * (1 + 1e-9));
  EXPECT_THROW(make("hardware", "{mip_gap: 2}"), hawq::ConfigError);
  EXPECT_THROW(make("hardware", "{supported_bits: [0]}"), hawq::ConfigError);
  EXPECT_THROW(make("hardware", "{time_limit_s: -1}"), hawq::ConfigError);
  EXPECT_THROW(make("hardware", "{lagrange_iterations: -1}"), hawq::ConfigError);
}

// The Lagrangian bound the note reports ("Lagrangian bound X"), or NaN when it did not run.
double lagrangian_bound(const Allocation& a) {
  const std::string key = "; Lagrangian bound ";
  const auto at = a.note.find(key);
  return at == std::string::npos ? std::nan("") : std::stod(a.note.substr(at + key.size()));
}

// A latency-like resource whose units (mix groups) cost more when their blocks take two or more
// widths (the kernels' mixed path): the ILP's answer is the brute-force optimum under the
// penalised budget, and the penalty changes the answer in some of the cases.
TEST(HardwareAllocator, MixedWidthPenaltyMatchesBruteForce) {
  int solved = 0, changed = 0, bounded = 0, proven = 0;
  for (std::uint64_t seed = 4001; seed <= 4160; ++seed) {
    AllocationProblem p = random_problem(seed, 2);
    Rng g(seed * 7 + 1);
    hawq::Resource& lat = p.resources[1];
    for (std::size_t i = 0; i < p.num_blocks(); ++i) lat.mix_group.push_back(g.pick(-1, 2));
    lat.mix_factor = g.uni(1.05, 1.6);
    auto [lo, hi] = hawq::feasible_range(p, 1);
    lat.budget = lo + g.uni(0.05, 0.8) * (hi - lo);
    const Brute opt = brute_force(p);
    if (!opt.feasible) {
      EXPECT_THROW(make("hardware")->solve(p), InfeasibleError) << describe(seed, p);
      continue;
    }
    const Allocation a = make("hardware")->solve(p);
    expect_valid(p, a, describe(seed, p));
    expect_near_optimum("hardware", a, opt.objective, describe(seed, p));
    EXPECT_NEAR(a.cost[1], penalised_total(p, 1, a.bits), 1e-9 * std::max(1.0, a.cost[1])) << describe(seed, p);
    // The Lagrangian relaxation (one penalised resource, units that do not share items) bounds
    // the optimum from below; where its answer meets its bound GLPK is skipped, so that answer
    // must be the optimum (checked above). The GLPK-only path stays exact too.
    const double lb = lagrangian_bound(a);
    if (std::isfinite(lb)) {
      EXPECT_LE(lb, opt.objective * (1 + 1e-9) + 1e-12) << describe(seed, p);
      ++bounded;
    }
    proven += a.note.find("the Lagrangian bound meets its answer") != std::string::npos;
    if (seed % 4 == 0) {
      const Allocation b = make("hardware", "{lagrange_iterations: 0}")->solve(p);
      expect_near_optimum("hardware (no Lagrangian)", b, opt.objective, describe(seed, p));
      EXPECT_TRUE(std::isnan(lagrangian_bound(b)));
    }
    ++solved;
    AllocationProblem additive = p;  // the same budget on the additive cost only
    additive.resources[1].mix_factor = 1.0;
    const Brute add = brute_force(additive);
    changed += add.feasible && add.objective < opt.objective * (1 - 1e-9);
  }
  EXPECT_GT(solved, 100);
  EXPECT_GT(changed, 5);
  EXPECT_GT(bounded, 60);  // the others tie blocks across units or have none to penalise
  EXPECT_GT(proven, 10);
  std::printf("%d solvable problems: Lagrangian bound on %d, optimal by it (no GLPK) on %d\n", solved, bounded,
              proven);
}

TEST(Allocation, MixedWidthPenaltyAppliesToMixedUnitsOnly) {
  AllocationProblem p;
  p.candidate_bits = {2, 4};
  p.numel = {1, 1, 1, 1};
  p.distortion.assign(4, {1.0, 0.5});
  hawq::Resource r;
  r.name = "latency_us";
  r.cost = {{1, 2}, {10, 20}, {100, 200}, {1000, 2000}};
  r.mix_group = {0, 0, 1, -1};
  r.mix_factor = 1.5;
  p.resources.push_back(r);
  p.validate();
  EXPECT_DOUBLE_EQ(hawq::evaluate_allocation(p, {2, 2, 2, 2}).cost[0], 1111.0);         // no unit mixed
  EXPECT_DOUBLE_EQ(hawq::evaluate_allocation(p, {2, 4, 2, 4}).cost[0], 1.5 * 21 + 100 + 2000);  // unit 0 mixed
  EXPECT_DOUBLE_EQ(hawq::evaluate_allocation(p, {4, 4, 4, 2}).cost[0], 22 + 200 + 1000);  // one block in unit 1
  // the range: additive smallest, largest with unit 0 (two blocks) penalised
  const auto range = hawq::feasible_range(p, 0);
  EXPECT_DOUBLE_EQ(range.first, 1111.0);
  EXPECT_DOUBLE_EQ(range.second, 2222.0 + 0.5 * 22);
  // a factor below 1 is refused; the single-resource solvers refuse a penalised primary resource
  AllocationProblem bad = p;
  bad.resources[0].mix_factor = 0.9;
  EXPECT_THROW(bad.validate(), UserError);
  p.resources[0].budget = 1500;
  for (const char* name : {"dp", "greedy", "lagrangian"}) {
    try {
      make(name)->solve(p);
      ADD_FAILURE() << name << " accepted a penalised primary resource";
    } catch (const UserError& e) {
      EXPECT_NE(std::string(e.what()).find("hardware"), std::string::npos) << e.what();
    }
  }
}

TEST(HardwareAllocator, ThreeBudgetsAtOnce) {
  // Size, latency and BOPS budgets that each bind: the ILP meets all three, and at the optimum.
  int binding_all = 0;
  for (std::uint64_t seed = 3001; seed <= 3100; ++seed) {
    AllocationProblem p = random_problem(seed, 3);
    for (std::size_t r = 0; r < 3; ++r) {
      auto [lo, hi] = hawq::feasible_range(p, r);
      p.resources[r].budget = lo + 0.6 * (hi - lo);
    }
    const Brute opt = brute_force(p);
    if (!opt.feasible) continue;
    const Allocation a = make("hardware")->solve(p);
    expect_valid(p, a, describe(seed, p));
    expect_near_optimum("hardware", a, opt.objective, describe(seed, p));
    bool all = true;
    for (std::size_t r = 0; r < 3; ++r) {
      AllocationProblem free = p;
      free.resources[r].budget = kInf;
      all &= brute_force(free).objective < opt.objective * (1 - 1e-9);
    }
    binding_all += all;
  }
  EXPECT_GT(binding_all, 0);
}
#endif

}  // namespace
