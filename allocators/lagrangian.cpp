// `lagrangian`: Lagrangian relaxation on the lower convex hulls, for 10^5-10^6 blocks.
//
// For a multiplier λ >= 0 the relaxed problem separates: each item (tied group or untied block)
// independently takes argmin_j distortion + λ·cost. Only the points on the lower convex hull of an
// item's (cost, distortion) options are ever chosen; walking up a hull from the cheapest point,
// segment k is worth taking exactly while λ is below its slope s_k = Δdistortion / Δcost, and the
// slopes decrease along a hull. So instead of bisecting on λ, all hull segments of all items are
// sorted by slope once (this is the exact search for λ, O(S log S) for S segments) and taken in that
// order while they fit the budget: the first segment that does not fit fixes the optimal multiplier
// λ* (its slope). The walk then continues down the list and keeps taking the segments that still
// fit (a greedy fill of the remaining budget on the hulls), and what is left buys the best upgrades
// that still fit among all options (off the hulls too).
//
// The Lagrangian dual L(λ) = Σ_items min_j (d_j + λ c_j) - λ·B is a lower bound on the optimum for
// every λ >= 0 and L(λ*) is the best one (it equals the LP relaxation); it is evaluated over all
// options of every item, so gap_bound = (answer - L(λ*)) / L(λ*) is rigorous. The gap is at most
// about one item's share of the objective, so it vanishes as the number of items grows.
//
// One multiplier, for the primary resource: further finite budgets are not optimised. As for `dp`,
// the answer is returned if it meets them (the bound stays valid: L bounds the relaxation, hence
// the full problem) and a UserError pointing to `hardware` is thrown otherwise. A multiplier per
// resource by subgradient steps would give neither an exact multiplier nor a guaranteed feasible
// answer; several budgets at once are the ILP's job.
#include <cstdint>

#include "allocator_common.h"
#include "hawq/registry.h"

namespace hawq {
namespace {

using namespace alloc_detail;

// Hulls and the sorted segment list: everything that does not depend on the budget.
struct Prepared {
  ItemSet s;
  std::vector<double> min_cost;      // per item
  std::vector<double> x;             // primary cost of each option minus its item's cheapest
  double lo = 0;                     // smallest total primary cost
  std::vector<std::size_t> hfirst;   // hull points of item u: [hfirst[u], hfirst[u + 1])
  std::vector<std::size_t> hopt;     // option of each hull point
  std::vector<double> hx;            // shifted cost of each hull point
  struct Segment {
    double slope;
    std::uint32_t hull;  // the segment ends at this hull point
    std::uint32_t item;
  };
  std::vector<Segment> segments;     // descending slope
};

class LagrangianAllocator : public Allocator {
 public:
  explicit LagrangianAllocator(const Params&) {}

  Allocation solve(const AllocationProblem& problem) const override {
    Stopwatch sw;
    problem.validate();
    check_feasible(problem);
    const auto binding = binding_secondary(problem, "lagrangian");
    const Prepared pre = prepare(problem);
    return solve_at(problem, pre, problem.resources[0].budget, binding, sw);
  }

  std::vector<Allocation> pareto(const AllocationProblem& problem, std::size_t resource,
                                 const std::vector<double>& budgets) const override {
    if (resource != 0) {
      AllocationProblem p = problem;
      return monotone_frontier(budgets, [&](double b) {
        p.resources.at(resource).budget = b;
        return solve(p);
      });
    }
    Stopwatch sw;
    problem.validate();
    AllocationProblem p = problem;
    p.resources[0].budget = kInf;
    check_feasible(p);  // everything but the swept budget
    const auto binding = binding_secondary(problem, "lagrangian");
    const Prepared pre = prepare(problem);
    return monotone_frontier(budgets, [&](double b) {
      if (b < pre.lo * (1 - 1e-12) - 1e-9) throw InfeasibleError("budget below the smallest achievable total");
      Stopwatch one;
      Allocation a = solve_at(problem, pre, b, binding, one);
      return a;
    });
  }

 private:
  static Prepared prepare(const AllocationProblem& problem);
  static Allocation solve_at(const AllocationProblem& problem, const Prepared& pre, double budget,
                             const std::vector<std::size_t>& binding, const Stopwatch& sw);
};

Prepared LagrangianAllocator::prepare(const AllocationProblem& problem) {
  Prepared pre;
  pre.s = build_items(problem);
  const ItemSet& s = pre.s;
  const std::size_t U = s.size();
  const auto& c = s.cost[0];
  HAWQ_CHECK(c.size() < (1ull << 32), "lagrangian indexes hull points with 32 bits");
  pre.min_cost.resize(U);
  pre.hfirst.assign(U + 1, 0);
  pre.hopt.reserve(c.size());
  pre.hx.reserve(c.size());
  std::vector<std::size_t> tmp;
  std::vector<double> slope;
  slope.reserve(c.size());
  long double lo = 0;
  for (std::size_t u = 0; u < U; ++u) {
    tmp.clear();
    double mn = kInf;
    for (std::size_t o = s.begin(u); o < s.end(u); ++o) {
      tmp.push_back(o);
      mn = std::min(mn, c[o]);
    }
    pre.min_cost[u] = mn;
    lo += mn;
    std::sort(tmp.begin(), tmp.end(), [&](std::size_t a, std::size_t b) {
      return c[a] < c[b] || (c[a] == c[b] && (s.dist[a] < s.dist[b] || (s.dist[a] == s.dist[b] && a < b)));
    });
    const std::size_t h0 = pre.hopt.size();
    double best = kInf;
    for (std::size_t o : tmp) {
      if (!(s.dist[o] < best)) continue;  // dominated by a cheaper option
      best = s.dist[o];
      const double x = c[o] - mn, d = s.dist[o];
      // Pop the last hull point while it is not strictly below the chord to the new point.
      while (pre.hopt.size() >= h0 + 2) {
        const std::size_t a = pre.hopt.size() - 2, b = pre.hopt.size() - 1;
        const double ax = pre.hx[a], ad = s.dist[pre.hopt[a]], bx = pre.hx[b], bd = s.dist[pre.hopt[b]];
        if ((bd - ad) * (x - ax) < (d - ad) * (bx - ax)) break;
        pre.hopt.pop_back();
        pre.hx.pop_back();
      }
      pre.hopt.push_back(o);
      pre.hx.push_back(x);
    }
    pre.hfirst[u + 1] = pre.hopt.size();
  }
  pre.lo = static_cast<double>(lo);
  pre.x.resize(c.size());
  for (std::size_t u = 0; u < U; ++u)
    for (std::size_t o = s.begin(u); o < s.end(u); ++o) pre.x[o] = c[o] - pre.min_cost[u];

  pre.segments.reserve(pre.hopt.size() - U);
  for (std::size_t u = 0; u < U; ++u) {
    double prev = kInf;
    for (std::size_t h = pre.hfirst[u] + 1; h < pre.hfirst[u + 1]; ++h) {
      double sl = (s.dist[pre.hopt[h - 1]] - s.dist[pre.hopt[h]]) / (pre.hx[h] - pre.hx[h - 1]);
      sl = std::min(sl, prev);  // keep rounding from reordering one item's segments
      prev = sl;
      pre.segments.push_back({sl, static_cast<std::uint32_t>(h), static_cast<std::uint32_t>(u)});
    }
  }
  std::sort(pre.segments.begin(), pre.segments.end(), [](const Prepared::Segment& a, const Prepared::Segment& b) {
    return a.slope > b.slope || (a.slope == b.slope && a.hull < b.hull);
  });
  return pre;
}

Allocation LagrangianAllocator::solve_at(const AllocationProblem& problem, const Prepared& pre, double budget,
                                         const std::vector<std::size_t>& binding, const Stopwatch& sw) {
  const ItemSet& s = pre.s;
  const std::size_t U = s.size();
  const auto& c = s.cost[0];
  const long double slack = std::isfinite(budget) ? std::max<long double>(0, (long double)budget - pre.lo) : -1;

  std::vector<std::size_t> pos(pre.hfirst.begin(), pre.hfirst.end() - 1);
  long double used = 0;
  double lambda = 0;
  bool binds = false;
  std::size_t taken = 0, fill = 0;
  for (const auto& seg : pre.segments) {
    const std::size_t h = seg.hull, u = seg.item;
    if (pos[u] + 1 != h) continue;  // an earlier segment of this item did not fit
    const double dx = pre.hx[h] - pre.hx[h - 1];
    if (slack < 0 || used + dx <= slack) {
      pos[u] = h;
      used += dx;
      ++taken;
      if (binds) ++fill;
    } else if (!binds) {
      binds = true;
      lambda = seg.slope;
    }
  }
  std::vector<std::size_t> choice(U);
  for (std::size_t u = 0; u < U; ++u) choice[u] = pre.hopt[pos[u]];
  // What the hull walk leaves may still buy an upgrade off the hulls.
  const std::size_t moves = binds ? spend_slack(s, pre.x, slack - used, choice) : 0;
  Allocation a = evaluate_allocation(problem, bits_of(problem, s, choice));
  require_secondary_met(problem, a, binding, "lagrangian");

  std::ostringstream note;
  note << "lagrangian: " << pre.segments.size() << " hull segments over " << U << " items; ";
  if (!binds) {
    a.gap_bound = 0;
    note << "budget of '" << problem.resources[0].name << "' does not bind: every item at its best width";
  } else {
    // L(λ*) over every option (not only hull points), accumulated in long double.
    long double dual = -static_cast<long double>(lambda) * slack;
    for (std::size_t u = 0; u < U; ++u) {
      long double m = std::numeric_limits<long double>::infinity();
      for (std::size_t o = s.begin(u); o < s.end(u); ++o)
        m = std::min(m, (long double)s.dist[o] + (long double)lambda * ((long double)c[o] - pre.min_cost[u]));
      dual += m;
    }
    const double lower = std::max(0.0, static_cast<double>(dual));
    a.gap_bound = std::max(0.0, a.objective - lower) / std::max(lower, std::numeric_limits<double>::min());
    note << "multiplier λ* = " << lambda << " per unit of '" << problem.resources[0].name << "', dual bound L(λ*) = "
         << lower << ", " << fill << " segments filled after λ*, " << moves << " upgrades off the hulls";
  }
  a.note = note.str() + note_secondary(problem, binding);
  a.seconds = sw.seconds();
  return a;
}

}  // namespace
}  // namespace hawq

HAWQ_REGISTER_ALLOCATOR("lagrangian", hawq::LagrangianAllocator)
