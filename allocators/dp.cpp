// `dp`: exact dynamic program over a discretised primary budget (multiple-choice knapsack).
//
// Items are tied groups or untied blocks (see allocator_common.h); pinned items and items whose
// options all cost the same take their best option outside the program. Every remaining item's
// cost is shifted by its cheapest option, so the program only spends the budget above the smallest
// achievable total, B' = budget - min. That slack is cut into `resolution` buckets of width
// Δ = B'/resolution and the program runs at most twice:
//   * with costs rounded DOWN: every truly feasible choice still fits, so its optimum is a lower
//     bound on the true optimum. If its choice happens to fit the true budget it is optimal (gap 0);
//   * otherwise with costs rounded UP to buckets: any answer fits the true budget; this is the
//     answer, and gap_bound = (answer - lower bound) / lower bound.
// Rounding up wastes up to one bucket per item, so the answer is the better of that optimum and the
// rounded-down choice repaired (cheapest downgrades until it fits), each then spending the unused
// true budget on the best upgrades that fit; the lower bound is the larger of the rounded-down
// optimum and the Lagrangian dual bound (see `lagrangian`; both valid, the dual wins with many items).
// When all shifted costs are integer multiples of a common step g (bits of equal-size tiles, bytes)
// and B'/g <= resolution, buckets of width g represent the costs exactly: one run, gap_bound 0.
//
// Time O(items x buckets x candidates), memory one byte per (item, bucket) for the choices that
// the backtracking reads, which is why `max_items` (default 10^4 free items) guards it: use
// `lagrangian` for 10^5-10^6 blocks. Only the primary resource is optimised: when another finite
// budget could bind, the answer is returned if it meets that budget (it is then optimal for the
// full problem too) and a UserError pointing to `hardware` is thrown otherwise.
#include <cstdint>
#include <numeric>

#include "allocator_common.h"
#include "hawq/registry.h"

namespace hawq {
namespace {

using namespace alloc_detail;

class DpAllocator : public Allocator {
 public:
  explicit DpAllocator(const Params& p) {
    resolution_ = p.get_int("resolution", 20000);
    max_items_ = p.get_int("max_items", 10000);
    if (resolution_ < 1 || resolution_ > 100000000)
      throw ConfigError(p.where("resolution") + ": expected a number of buckets in [1, 100000000], got " +
                        std::to_string(resolution_));
    if (max_items_ < 1)
      throw ConfigError(p.where("max_items") + ": expected a positive integer, got " + std::to_string(max_items_));
  }

  Allocation solve(const AllocationProblem& problem) const override;

  std::vector<Allocation> pareto(const AllocationProblem& problem, std::size_t resource,
                                 const std::vector<double>& budgets) const override {
    AllocationProblem p = problem;
    return monotone_frontier(budgets, [&](double b) {
      p.resources.at(resource).budget = b;
      return solve(p);
    });
  }

 private:
  // One knapsack pass over the free items. f[b] = least distortion with total weight <= b.
  // With `table`, records the chosen option per (item, bucket) for backtracking.
  double run(const ItemSet& s, const std::vector<std::size_t>& free_items, const std::vector<std::int64_t>& w,
             std::int64_t cap, std::vector<std::uint8_t>* table, std::vector<std::size_t>* row_start,
             std::vector<std::int64_t>* row_reach) const;

  long long resolution_;
  long long max_items_;
};

double DpAllocator::run(const ItemSet& s, const std::vector<std::size_t>& free_items, const std::vector<std::int64_t>& w,
                        std::int64_t cap, std::vector<std::uint8_t>* table, std::vector<std::size_t>* row_start,
                        std::vector<std::int64_t>* row_reach) const {
  // f is constant beyond `reach` (the largest total weight the items so far can use), so rows are
  // only stored up to it and reads beyond it are clamped.
  std::vector<double> f_old(static_cast<std::size_t>(cap) + 1, 0.0), f_new(f_old.size());
  std::int64_t reach_prev = 0;
  for (std::size_t t = 0; t < free_items.size(); ++t) {
    const std::size_t u = free_items[t];
    std::int64_t max_w = 0;
    for (std::size_t o = s.begin(u); o < s.end(u); ++o)
      if (w[o] <= cap) max_w = std::max(max_w, w[o]);
    const std::int64_t reach = std::min(cap, reach_prev + max_w);
    std::uint8_t* ch = nullptr;
    if (table) {
      (*row_start)[t] = table->size();
      (*row_reach)[t] = reach;
      table->resize(table->size() + static_cast<std::size_t>(reach) + 1, 0);
      ch = table->data() + (*row_start)[t];
    }
    std::fill(f_new.begin(), f_new.begin() + reach + 1, kInf);
    for (std::size_t o = s.begin(u); o < s.end(u); ++o) {
      const std::int64_t wo = w[o];
      if (wo > cap) continue;
      const double d = s.dist[o];
      const auto k = static_cast<std::uint8_t>(o - s.begin(u));
      const std::int64_t direct_end = std::min(reach, reach_prev + wo);
      const double* src = f_old.data() - wo;
      if (ch) {
        for (std::int64_t b = wo; b <= direct_end; ++b) {
          const double v = src[b] + d;
          if (v < f_new[b]) {
            f_new[b] = v;
            ch[b] = k;
          }
        }
        const double v = f_old[reach_prev] + d;
        for (std::int64_t b = direct_end + 1; b <= reach; ++b)
          if (v < f_new[b]) {
            f_new[b] = v;
            ch[b] = k;
          }
      } else {
        for (std::int64_t b = wo; b <= direct_end; ++b) f_new[b] = std::min(f_new[b], src[b] + d);
        const double v = f_old[reach_prev] + d;
        for (std::int64_t b = direct_end + 1; b <= reach; ++b) f_new[b] = std::min(f_new[b], v);
      }
    }
    std::swap(f_old, f_new);
    reach_prev = reach;
  }
  return f_old[static_cast<std::size_t>(std::min(cap, reach_prev))];
}

Allocation DpAllocator::solve(const AllocationProblem& problem) const {
  Stopwatch sw;
  problem.validate();
  check_feasible(problem);
  const auto binding = binding_secondary(problem, "dp");
  const ItemSet s = build_items(problem);
  const std::size_t U = s.size();
  HAWQ_CHECK(problem.num_candidates() <= 255, "dp stores choices in one byte");
  const auto& c = s.cost[0];
  const std::string& rname = problem.resources[0].name;

  std::vector<double> min_cost(U);
  long double lo_sum = 0, hi_sum = 0;
  for (std::size_t u = 0; u < U; ++u) {
    double mn = kInf, mx = -kInf;
    for (std::size_t o = s.begin(u); o < s.end(u); ++o) {
      mn = std::min(mn, c[o]);
      mx = std::max(mx, c[o]);
    }
    min_cost[u] = mn;
    lo_sum += mn;
    hi_sum += mx;
  }
  const double budget = problem.resources[0].budget;
  const double lo = static_cast<double>(lo_sum), hi = static_cast<double>(hi_sum);

  // Best option of an item ignoring cost (ties: the cheaper one).
  auto best_option = [&](std::size_t u) {
    std::size_t best = s.begin(u);
    for (std::size_t o = s.begin(u) + 1; o < s.end(u); ++o)
      if (s.dist[o] < s.dist[best] || (s.dist[o] == s.dist[best] && c[o] < c[best])) best = o;
    return best;
  };

  std::vector<std::size_t> choice(U);
  std::ostringstream note;
  double gap = 0;
  if (!std::isfinite(budget) || hi <= budget) {
    for (std::size_t u = 0; u < U; ++u) choice[u] = best_option(u);
    note << "dp: budget of '" << rname << "' does not bind (largest total " << hi << "); every item at its best width";
  } else {
    const double slack = std::max(0.0, budget - lo);  // B' (check_feasible allows budget a hair below lo)
    std::vector<std::size_t> free_items;
    std::vector<double> x(c.size(), 0.0);  // shifted costs
    long double fixed_dist = 0;
    for (std::size_t u = 0; u < U; ++u) {
      bool varies = false;
      for (std::size_t o = s.begin(u); o < s.end(u); ++o) {
        x[o] = c[o] - min_cost[u];
        varies |= x[o] > 0;
      }
      if (varies) {
        free_items.push_back(u);
      } else {
        choice[u] = best_option(u);
        fixed_dist += s.dist[choice[u]];
      }
    }
    if (free_items.size() > static_cast<std::size_t>(max_items_)) {
      std::ostringstream m;
      m << "dp: " << free_items.size() << " items with a choice exceed max_items=" << max_items_
        << " (the choice table needs about " << (free_items.size() * (resolution_ + 1.0) / 1e6)
        << " MB); use the 'lagrangian' allocator for 10^5-10^6 blocks, or raise max_items";
      throw UserError(m.str());
    }

    // Exact buckets when the shifted costs share an integer step g with B'/g within the resolution.
    std::uint64_t g = 0;
    bool integral = true;
    for (std::size_t u : free_items)
      for (std::size_t o = s.begin(u); o < s.end(u) && integral; ++o) {
        if (x[o] != std::floor(x[o]) || x[o] >= 9007199254740992.0) integral = false;
        else g = std::gcd(g, static_cast<std::uint64_t>(x[o]));
      }
    bool exact = false;
    std::int64_t cap;
    double delta;
    if (integral && g > 0 && std::floor(slack / static_cast<double>(g)) <= static_cast<double>(resolution_)) {
      exact = true;
      delta = static_cast<double>(g);
      cap = static_cast<std::int64_t>(std::floor(slack / delta));
    } else {
      cap = resolution_;
      delta = slack / static_cast<double>(resolution_);
    }
    std::vector<std::int64_t> w_up(c.size(), 0), w_dn(c.size(), 0);
    for (std::size_t u : free_items)
      for (std::size_t o = s.begin(u); o < s.end(u); ++o) {
        if (x[o] <= 0) continue;
        if (delta <= 0) {  // no slack at all: only the cheapest options fit
          w_up[o] = w_dn[o] = cap + 1;
          continue;
        }
        const double q = x[o] / delta;
        const double up = std::ceil(q), dn = std::floor(q);
        w_up[o] = up > static_cast<double>(cap) ? cap + 1 : static_cast<std::int64_t>(up);
        w_dn[o] = dn > static_cast<double>(cap) ? cap + 1 : static_cast<std::int64_t>(dn);
      }
    exact |= (w_up == w_dn);

    std::vector<std::uint8_t> table;
    std::vector<std::size_t> row_start(free_items.size());
    std::vector<std::int64_t> row_reach(free_items.size());
    auto solve_with = [&](const std::vector<std::int64_t>& w) {
      table.clear();
      const double f = run(s, free_items, w, cap, &table, &row_start, &row_reach);
      std::int64_t b = cap;
      for (std::size_t t = free_items.size(); t-- > 0;) {
        b = std::min(b, row_reach[t]);
        const std::size_t u = free_items[t];
        const std::size_t o = s.begin(u) + table[row_start[t] + static_cast<std::size_t>(b)];
        choice[u] = o;
        b -= w[o];
        HAWQ_CHECK(b >= 0, "dp backtracking left the table");
      }
      return f;
    };
    auto used = [&] {
      long double sum = 0;
      for (std::size_t u : free_items) sum += x[choice[u]];
      return sum;
    };
    // Rounded down first: every truly feasible choice fits it, so its optimum is a lower bound, and
    // when its own choice fits the true budget that choice is optimal.
    const double lower_dn = static_cast<double>(fixed_dist) + solve_with(w_dn);
    const bool down_fits = within_budget(static_cast<double>(used()), slack);
    note << "dp: " << free_items.size() << " items with a choice; ";
    if (exact || down_fits) {
      gap = 0;
      if (exact)
        note << "exact buckets: " << cap << " steps of " << delta << " '" << rname << "' (shifted costs share this step)";
      else
        note << "resolution " << cap << " buckets of " << delta << " '" << rname
             << "'; the rounded-down optimum fits the true budget, so it is optimal";
    } else {
      // Two feasible candidates, the better one is the answer:
      //  (a) the rounded-down choice, overshooting by at most one bucket per item, repaired by the
      //      cheapest downgrades until it fits;
      //  (b) the rounded-up optimum, which fits.
      // Both then spend what is left of the true budget on the best upgrades that fit.
      const std::size_t repairs = repair_to_fit(s, x, slack, choice);
      spend_slack(s, x, static_cast<long double>(slack) - used(), choice);
      const bool a_fits = within_budget(static_cast<double>(used()), slack);
      const double obj_a = a_fits ? evaluate_allocation(problem, bits_of(problem, s, choice)).objective : kInf;
      const std::vector<std::size_t> a_choice = choice;
      solve_with(w_up);
      spend_slack(s, x, static_cast<long double>(slack) - used(), choice);
      double obj = evaluate_allocation(problem, bits_of(problem, s, choice)).objective;
      const bool took_a = obj_a < obj;
      if (took_a) {
        choice = a_choice;
        obj = obj_a;
      }
      // Both are lower bounds on the optimum; the dual one is the tighter when items are many.
      const double lower_dual = dual_lower_bound(s, x, slack);
      const double lower = std::max(lower_dn, lower_dual);
      gap = std::max(0.0, obj - lower) / std::max(lower, std::numeric_limits<double>::min());
      note << "resolution " << cap << " buckets of " << delta << " '" << rname << "' over the budget above the minimum ("
           << slack << " of " << budget << "); answer: "
           << (took_a ? "rounded-down optimum repaired by " + std::to_string(repairs) + " downgrades"
                      : std::string("rounded-up optimum"))
           << ", then the unused budget spent on upgrades; lower bound max(rounded-down optimum " << lower_dn
           << ", Lagrangian dual " << lower_dual << ")";
    }
  }
  Allocation a = evaluate_allocation(problem, bits_of(problem, s, choice));
  require_secondary_met(problem, a, binding, "dp");
  a.gap_bound = gap;
  a.note = note.str() + note_secondary(problem, binding);
  a.seconds = sw.seconds();
  return a;
}

}  // namespace
}  // namespace hawq

HAWQ_REGISTER_ALLOCATOR("dp", hawq::DpAllocator)
