// `greedy`: start high, lower the cheapest-to-lower item until the primary budget is met.
//
// Each item (tied group or untied block; pins leave it one option) keeps its Pareto-efficient
// options on (primary cost, distortion): sorted by cost, each one strictly less distorting than
// every cheaper one. All items start at their least distorting option (normally the highest
// candidate width). A priority queue holds, per item, the distortion increase per unit of saved
// cost of stepping down to its next cheaper option; the smallest is applied and the item's next
// step queued, until the total cost meets the budget. O(n log n) for n items.
//
// The sequence of steps does not depend on the budget and every step adds distortion, so the
// objective is non-increasing in the budget; pareto() replays one sequence for all budgets. There
// is no bound on the gap to the optimum: gap_bound is NaN. Secondary budgets are not optimised (see
// allocator_common.h: the answer is returned if it meets them, else a UserError names `hardware`).
#include <queue>

#include "allocator_common.h"
#include "hawq/registry.h"

namespace hawq {
namespace {

using namespace alloc_detail;

class GreedyAllocator : public Allocator {
 public:
  explicit GreedyAllocator(const Params&) {}

  Allocation solve(const AllocationProblem& problem) const override {
    Stopwatch sw;
    problem.validate();
    check_feasible(problem);
    auto out = run(problem, {problem.resources[0].budget}, sw);
    return std::move(out.front());
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
    // Feasibility of everything but the swept budget (which is checked per point below).
    AllocationProblem p = problem;
    p.resources[0].budget = kInf;
    check_feasible(p);
    const double lo = feasible_range(p, 0).first;
    std::vector<double> ok;
    for (double b : budgets)
      if (!(b < lo * (1 - 1e-12) - 1e-9)) ok.push_back(b);
    return run(problem, ok, sw);
  }

 private:
  // One descent from the top; an allocation for each budget, in the order given.
  std::vector<Allocation> run(const AllocationProblem& problem, const std::vector<double>& budgets,
                              const Stopwatch& sw) const;
};

std::vector<Allocation> GreedyAllocator::run(const AllocationProblem& problem, const std::vector<double>& budgets,
                                             const Stopwatch& sw) const {
  const auto binding = binding_secondary(problem, "greedy");
  const ItemSet s = build_items(problem);
  const std::size_t U = s.size();
  const auto& c = s.cost[0];

  // Pareto-efficient options per item, ascending cost / descending distortion.
  std::vector<std::size_t> first(U + 1, 0), opts;
  opts.reserve(c.size());
  std::vector<std::size_t> tmp;
  long double lo = 0;
  for (std::size_t u = 0; u < U; ++u) {
    tmp.clear();
    for (std::size_t o = s.begin(u); o < s.end(u); ++o) tmp.push_back(o);
    std::sort(tmp.begin(), tmp.end(), [&](std::size_t a, std::size_t b) {
      return c[a] < c[b] || (c[a] == c[b] && (s.dist[a] < s.dist[b] || (s.dist[a] == s.dist[b] && a < b)));
    });
    double best = kInf;
    for (std::size_t o : tmp)
      if (s.dist[o] < best) {
        opts.push_back(o);
        best = s.dist[o];
      }
    first[u + 1] = opts.size();
    lo += c[opts[first[u]]];
  }

  std::vector<std::size_t> pos(U);
  long double total = 0;
  for (std::size_t u = 0; u < U; ++u) {
    pos[u] = first[u + 1] - 1;
    total += c[opts[pos[u]]];
  }
  using Entry = std::pair<double, std::size_t>;  // (distortion added per unit of cost saved, item)
  auto step = [&](std::size_t u) {
    const std::size_t a = opts[pos[u]], b = opts[pos[u] - 1];
    return Entry((s.dist[b] - s.dist[a]) / (c[a] - c[b]), u);
  };
  std::vector<Entry> initial;
  initial.reserve(U);
  for (std::size_t u = 0; u < U; ++u)
    if (pos[u] > first[u]) initial.push_back(step(u));
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> queue(std::greater<Entry>(), std::move(initial));
  auto push = [&](std::size_t u) {
    if (pos[u] > first[u]) queue.push(step(u));
  };

  // Budgets from the largest down: each one continues the same descent.
  std::vector<std::size_t> order(budgets.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return budgets[a] > budgets[b]; });
  std::vector<Allocation> out(budgets.size());
  std::size_t steps = 0;
  std::vector<std::size_t> choice(U);
  for (std::size_t idx : order) {
    const long double target = std::max<long double>(budgets[idx], lo);
    while (total > target && !queue.empty()) {
      const std::size_t u = queue.top().second;
      queue.pop();
      total -= c[opts[pos[u]]] - c[opts[pos[u] - 1]];
      --pos[u];
      ++steps;
      push(u);
    }
    for (std::size_t u = 0; u < U; ++u) choice[u] = opts[pos[u]];
    Allocation a = evaluate_allocation(problem, bits_of(problem, s, choice));
    require_secondary_met(problem, a, binding, "greedy");
    a.gap_bound = kNaN;
    a.note = "greedy: " + std::to_string(steps) + " lowering steps over " + std::to_string(U) +
             " items; gap to the optimum not bounded (gap_bound = NaN)" + note_secondary(problem, binding);
    a.seconds = sw.seconds();
    out[idx] = std::move(a);
  }
  return out;
}

}  // namespace
}  // namespace hawq

HAWQ_REGISTER_ALLOCATOR("greedy", hawq::GreedyAllocator)
