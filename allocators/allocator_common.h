// Helpers shared by the allocators in this folder (header only; not a plugin).
//
// Every allocator works on "items" rather than blocks: a tied group becomes one item whose
// distortion and costs per candidate are the sums over its members, and pins restrict an item's
// options to the pinned width. A free untied block is an item of its own. Costs are kept as given;
// the solvers shift them by each item's smallest cost where that helps (a constant per item, since
// every item takes exactly one option).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <limits>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "hawq/allocation.h"
#include "hawq/errors.h"

namespace hawq {
namespace alloc_detail {

inline constexpr double kInf = std::numeric_limits<double>::infinity();
inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct ItemSet {
  std::size_t num_resources = 0;
  std::vector<std::size_t> item_of_block;  // block -> item
  std::vector<std::size_t> first;          // options of item u: [first[u], first[u + 1])
  std::vector<int> cand;                   // candidate index of each option
  std::vector<double> dist;                // distortion of each option (summed over members)
  std::vector<std::vector<double>> cost;   // cost[r][option] (summed over members)

  std::size_t size() const { return first.empty() ? 0 : first.size() - 1; }
  std::size_t begin(std::size_t u) const { return first[u]; }
  std::size_t end(std::size_t u) const { return first[u + 1]; }
  std::size_t num_options(std::size_t u) const { return first[u + 1] - first[u]; }
};

// Groups blocks into items and keeps only the options their pins allow. Call after validate() and
// check_feasible(): the latter already rejects tied blocks pinned to different widths.
inline ItemSet build_items(const AllocationProblem& p) {
  const std::size_t n = p.num_blocks(), k = p.num_candidates(), nr = p.resources.size();
  ItemSet s;
  s.num_resources = nr;
  s.item_of_block.resize(n);
  std::unordered_map<int, std::size_t> item_of_group;
  std::size_t num_items = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!p.group.empty() && p.group[i] >= 0) {
      auto it = item_of_group.emplace(p.group[i], num_items).first;
      if (it->second == num_items) ++num_items;
      s.item_of_block[i] = it->second;
    } else {
      s.item_of_block[i] = num_items++;
    }
  }
  // Dense sums first, then keep the allowed options.
  std::vector<double> dist(num_items * k, 0.0);
  std::vector<std::vector<double>> cost(nr, std::vector<double>(num_items * k, 0.0));
  std::vector<unsigned char> ok(num_items * k, 1);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t base = s.item_of_block[i] * k;
    const int pin = p.pinned_bits.empty() ? 0 : p.pinned_bits[i];
    for (std::size_t j = 0; j < k; ++j) {
      dist[base + j] += p.distortion[i][j];
      for (std::size_t r = 0; r < nr; ++r) cost[r][base + j] += p.resources[r].cost[i][j];
      if (pin != 0 && pin != p.candidate_bits[j]) ok[base + j] = 0;
    }
  }
  s.first.reserve(num_items + 1);
  s.first.push_back(0);
  s.cost.assign(nr, {});
  for (std::size_t u = 0; u < num_items; ++u) {
    for (std::size_t j = 0; j < k; ++j) {
      if (!ok[u * k + j]) continue;
      s.cand.push_back(static_cast<int>(j));
      s.dist.push_back(dist[u * k + j]);
      for (std::size_t r = 0; r < nr; ++r) s.cost[r].push_back(cost[r][u * k + j]);
    }
    // check_feasible() has thrown for conflicting pins; an empty item would be a bug.
    HAWQ_CHECK(s.cand.size() > s.first.back(), "item without an allowed width");
    s.first.push_back(s.cand.size());
  }
  return s;
}

// Widths per block from one chosen option per item.
inline std::vector<int> bits_of(const AllocationProblem& p, const ItemSet& s,
                                const std::vector<std::size_t>& option_of_item) {
  std::vector<int> bits(p.num_blocks());
  for (std::size_t i = 0; i < bits.size(); ++i)
    bits[i] = p.candidate_bits[s.cand[option_of_item[s.item_of_block[i]]]];
  return bits;
}

// Smallest and largest total of resource r over the items (matches feasible_range()).
inline std::pair<double, double> item_range(const ItemSet& s, std::size_t r) {
  long double lo = 0, hi = 0;
  for (std::size_t u = 0; u < s.size(); ++u) {
    double mn = kInf, mx = -kInf;
    for (std::size_t o = s.begin(u); o < s.end(u); ++o) {
      mn = std::min(mn, s.cost[r][o]);
      mx = std::max(mx, s.cost[r][o]);
    }
    lo += mn;
    hi += mx;
  }
  return {static_cast<double>(lo), static_cast<double>(hi)};
}

// Whether `total` meets `budget`, allowing the rounding slack check_feasible() allows.
inline bool within_budget(double total, double budget) {
  return total <= budget + 1e-12 * std::max(std::abs(budget), std::abs(total)) + 1e-12;
}

// Resources after the primary one whose finite budget could bind (budget below the largest
// achievable total). The single-resource solvers optimise resources[0] only.
// Also refuses a mixed-width penalty on the primary resource, which these solvers (additive in the
// primary) cannot model; on a secondary resource the penalised total is what they check.
inline std::vector<std::size_t> binding_secondary(const AllocationProblem& p, const std::string& solver) {
  if (p.resources[0].has_mix_penalty())
    throw UserError(solver + ": the primary resource '" + p.resources[0].name + "' has a mixed-width factor (" +
                    std::to_string(p.resources[0].mix_factor) +
                    "), which only the 'hardware' allocator models; make it a secondary resource or use 'hardware'");
  std::vector<std::size_t> out;
  for (std::size_t r = 1; r < p.resources.size(); ++r) {
    if (!std::isfinite(p.resources[r].budget)) continue;
    if (feasible_range(p, r).second > p.resources[r].budget) out.push_back(r);
  }
  return out;
}

// The single-resource solvers solve the relaxation that ignores secondary budgets. Its answer is
// returned when it happens to meet them (then it is also optimal, resp. within the stated gap, for
// the full problem); otherwise this throws a UserError that points to the ILP allocator.
inline void require_secondary_met(const AllocationProblem& p, const Allocation& a,
                                  const std::vector<std::size_t>& binding, const std::string& solver) {
  for (std::size_t r : binding) {
    if (within_budget(a.cost[r], p.resources[r].budget)) continue;
    auto range = feasible_range(p, r);
    std::ostringstream m;
    m << solver << ": optimises only the primary resource '" << p.resources[0].name << "', but the budget "
      << p.resources[r].budget << " of resource '" << p.resources[r].name << "' (feasible range [" << range.first
      << ", " << range.second << "]) binds and the " << solver << " answer uses " << a.cost[r]
      << "; use the 'hardware' allocator (ILP with a constraint per budget)";
    throw UserError(m.str());
  }
}

inline std::string note_secondary(const AllocationProblem& p, const std::vector<std::size_t>& binding) {
  if (binding.empty()) return "";
  std::string s = "; secondary budgets (";
  for (std::size_t i = 0; i < binding.size(); ++i) s += (i ? ", " : "") + p.resources[binding[i]].name;
  return s + ") not optimised, met by the primary-only solution";
}

// Spends leftover primary budget: repeatedly moves items to a less distorting option whose extra
// cost (x are costs shifted per item, so only differences matter) fits in `slack_left`, best
// distortion saved per unit of cost first, one move per item per pass. Returns the moves made.
inline std::size_t spend_slack(const ItemSet& s, const std::vector<double>& x, long double slack_left,
                               std::vector<std::size_t>& choice) {
  struct Move {
    double ratio;
    double gain;
    std::size_t item, option;
  };
  std::vector<Move> moves;
  std::vector<char> touched(s.size(), 0);
  std::size_t made = 0;
  for (int pass = 0; pass < 16; ++pass) {
    moves.clear();
    for (std::size_t u = 0; u < s.size(); ++u) {
      const std::size_t cur = choice[u];
      for (std::size_t o = s.begin(u); o < s.end(u); ++o) {
        const double dx = x[o] - x[cur];
        if (!(s.dist[o] < s.dist[cur]) || dx > slack_left) continue;
        const double gain = s.dist[cur] - s.dist[o];
        moves.push_back({dx > 0 ? gain / dx : kInf, gain, u, o});
      }
    }
    if (moves.empty()) break;
    std::sort(moves.begin(), moves.end(), [](const Move& a, const Move& b) {
      return a.ratio > b.ratio || (a.ratio == b.ratio && (a.gain > b.gain || (a.gain == b.gain && a.option < b.option)));
    });
    std::fill(touched.begin(), touched.end(), 0);
    std::size_t before = made;
    for (const Move& m : moves) {
      if (touched[m.item]) continue;
      const double dx = x[m.option] - x[choice[m.item]];
      if (dx > slack_left) continue;
      choice[m.item] = m.option;
      slack_left -= dx;
      touched[m.item] = 1;
      ++made;
    }
    if (made == before) break;
  }
  return made;
}

// Moves items to cheaper options until the shifted total (x as in spend_slack) fits `slack`, each
// step the move that adds the least distortion per unit of cost saved (a heap of every item's best
// move). Ends within `slack` up to rounding (the cheapest options total 0). Returns the moves made.
inline std::size_t repair_to_fit(const ItemSet& s, const std::vector<double>& x, long double slack,
                                 std::vector<std::size_t>& choice) {
  long double used = 0;
  for (std::size_t u = 0; u < s.size(); ++u) used += x[choice[u]];
  if (used <= slack) return 0;
  struct Move {
    double ratio;
    std::size_t item, from, to;
    bool operator>(const Move& m) const { return ratio > m.ratio || (ratio == m.ratio && item > m.item); }
  };
  auto best_move = [&](std::size_t u, Move* m) {
    const std::size_t cur = choice[u];
    bool found = false;
    for (std::size_t o = s.begin(u); o < s.end(u); ++o) {
      if (!(x[o] < x[cur])) continue;
      const double r = (s.dist[o] - s.dist[cur]) / (x[cur] - x[o]);
      if (!found || r < m->ratio) *m = {r, u, cur, o};
      found = true;
    }
    return found;
  };
  std::vector<Move> heap;
  Move m{};
  for (std::size_t u = 0; u < s.size(); ++u)
    if (best_move(u, &m)) heap.push_back(m);
  std::make_heap(heap.begin(), heap.end(), std::greater<Move>());
  std::size_t made = 0;
  while (used > slack && !heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<Move>());
    const Move top = heap.back();
    heap.pop_back();
    if (choice[top.item] != top.from) continue;  // stale
    used -= x[top.from] - x[top.to];
    choice[top.item] = top.to;
    ++made;
    if (best_move(top.item, &m)) {
      heap.push_back(m);
      std::push_heap(heap.begin(), heap.end(), std::greater<Move>());
    }
  }
  return made;  // callers re-check the total: the running sum carries rounding
}

// The Lagrangian dual bound max_λ>=0 Σ_u min_j (d[u][j] + λ x[u][j]) - λ·slack on the optimum of
// the single-budget problem (x: costs shifted per item, slack: budget above the smallest total),
// with λ found by bisection on the sign of the subgradient. Any λ gives a valid bound; the best one
// evaluated is returned (and its λ through `lambda_out`).
inline double dual_lower_bound(const ItemSet& s, const std::vector<double>& x, double slack,
                               double* lambda_out = nullptr) {
  // value and subgradient (with the cheapest argmin) at λ
  auto eval = [&](double lambda, long double* value) {
    long double total = -static_cast<long double>(lambda) * slack, used = 0;
    for (std::size_t u = 0; u < s.size(); ++u) {
      long double best = std::numeric_limits<long double>::infinity();
      double bx = 0;
      for (std::size_t o = s.begin(u); o < s.end(u); ++o) {
        const long double v = (long double)s.dist[o] + (long double)lambda * x[o];
        if (v < best || (v == best && x[o] < bx)) {
          best = v;
          bx = x[o];
        }
      }
      total += best;
      used += bx;
    }
    *value = total;
    return used - slack;
  };
  long double best_value, v;
  double best_lambda = 0;
  if (eval(0.0, &best_value) <= 0) {
    if (lambda_out) *lambda_out = 0;
    return static_cast<double>(best_value);
  }
  double hi = 0;  // at λ >= hi every item takes a cheapest option
  for (std::size_t u = 0; u < s.size(); ++u) {
    double d0 = kInf;
    for (std::size_t o = s.begin(u); o < s.end(u); ++o)
      if (x[o] <= 0) d0 = std::min(d0, s.dist[o]);
    for (std::size_t o = s.begin(u); o < s.end(u); ++o)
      if (x[o] > 0) hi = std::max(hi, (d0 - s.dist[o]) / x[o]);
  }
  double lo = 0;
  for (int it = 0; it < 200 && lo < hi; ++it) {
    const double mid = lo + 0.5 * (hi - lo);
    if (mid <= lo || mid >= hi) break;
    const long double g = eval(mid, &v);
    if (v > best_value) {
      best_value = v;
      best_lambda = mid;
    }
    (g > 0 ? lo : hi) = mid;
  }
  for (double l : {lo, hi}) {
    eval(l, &v);
    if (v > best_value) {
      best_value = v;
      best_lambda = l;
    }
  }
  if (lambda_out) *lambda_out = best_lambda;
  return static_cast<double>(best_value);
}

class Stopwatch {
 public:
  Stopwatch() : t0_(std::chrono::steady_clock::now()) {}
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }

 private:
  std::chrono::steady_clock::time_point t0_;
};

// The lower bound on the optimum implied by an allocation's objective and gap bound.
inline double lower_bound_of(const Allocation& a) {
  if (!(a.gap_bound >= 0) || !std::isfinite(a.gap_bound)) return kNaN;
  return a.objective / (1 + a.gap_bound);
}

// Frontier post-processing shared by the allocators' pareto(): an answer for a smaller budget is
// also feasible for a larger one, so walking the budgets in ascending order each point keeps the
// better of its own answer and the best answer so far. The objective is then non-increasing in the
// budget even for heuristics and for solvers whose discretisation depends on the budget. The gap
// bound of a replaced point is recomputed against that point's own lower bound. Points are returned
// in the order of `budgets`; infeasible budgets are skipped.
template <class SolveAt>
std::vector<Allocation> monotone_frontier(const std::vector<double>& budgets, SolveAt solve_at) {
  std::vector<std::size_t> order(budgets.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return budgets[a] < budgets[b]; });
  std::vector<Allocation> at(budgets.size());
  std::vector<char> ok(budgets.size(), 0);
  const Allocation* best = nullptr;
  for (std::size_t idx : order) {
    try {
      at[idx] = solve_at(budgets[idx]);
    } catch (const InfeasibleError&) {
      continue;
    }
    ok[idx] = 1;
    if (best && best->objective < at[idx].objective) {
      const double lb = lower_bound_of(at[idx]);
      const double secs = at[idx].seconds;
      const std::string note = at[idx].note;
      at[idx] = *best;
      at[idx].seconds = secs;
      at[idx].gap_bound = std::isnan(lb) ? at[idx].gap_bound
                                         : std::max(0.0, at[idx].objective - lb) /
                                               std::max(lb, std::numeric_limits<double>::min());
      at[idx].note = note + "; answer of a smaller budget kept (better)";
    }
    best = &at[idx];
  }
  std::vector<Allocation> out;
  for (std::size_t i = 0; i < budgets.size(); ++i)
    if (ok[i]) out.push_back(std::move(at[i]));
  return out;
}

}  // namespace alloc_detail
}  // namespace hawq
