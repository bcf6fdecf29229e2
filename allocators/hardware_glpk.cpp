// `hardware`: integer linear program through GLPK, with a constraint for every finite budget.
//
//   minimise   Σ_u Σ_j d[u][j] x[u][j]
//   subject to Σ_j x[u][j] = 1                          for every item u       (one width each)
//              Σ_u Σ_j c_r[u][j] x[u][j] <= budget_r    for every resource r with a finite budget
//              x[u][j] ∈ {0, 1}
// Items are tied groups or untied blocks: the equalities x[i][j] = x[i'][j] of tied blocks are
// substituted before the solve (one set of binaries per group, its distortion and costs summed over
// the members), pinned blocks are fixed (their cost is moved to the right-hand side) and widths
// outside `supported_bits` get no variable. Each budget row is shifted by the items' cheapest costs
// and scaled to unit size, and the objective is scaled by the smallest possible total distortion,
// which keeps GLPK's absolute tolerances small relative to the answer.
// A resource with a mixed-width penalty (Resource::mix_group / mix_factor: a unit of blocks that
// takes two or more widths costs mix_factor times its additive cost) gets, per unit, binaries
// "uniform at width j" and per-option continuous terms that make the budget row charge the
// penalty exactly when the unit is mixed (add_mix_penalty). GLPK then struggles to find
// incumbents, so it gets a feasible start, and the search runs without the MIP presolver, whose
// renumbering of columns the start could not follow. With one penalised resource whose units do
// not share items, a Lagrangian relaxation of the budget rows (mix_lagrangian: per unit, uniform
// at one width or mixed with the penalty) gives the start and a second lower bound, and when the
// two meet the answer is optimal without GLPK (lagrange_iterations, default 500; 0 = off);
// otherwise, or when it finds no feasible answer, two additive problems solved first (units tied
// to one width; penalised budgets divided by their factor) offer the start.
// glp_intopt (branch and bound, MIP presolve on unless a start is offered) solves it to optimality (mip_gap 0: gap_bound 0).
// With mip_gap > 0 the bound follows from GLPK's stopping rule; when time_limit_s stops the search
// with an incumbent, the best open node's bound (else the LP relaxation), or the Lagrangian bound
// where higher, is the lower bound. Params: supported_bits (list; default every candidate),
// time_limit_s (default 60), mip_gap (default 0), lagrange_iterations (default 500), verbose
// (default false: GLPK's terminal output is silenced).
#include <glpk.h>

#include <algorithm>
#include <climits>
#include <functional>
#include <map>
#include <memory>
#include <set>

#include "allocator_common.h"
#include "hawq/registry.h"

namespace hawq {
namespace {

using namespace alloc_detail;

std::string list_text(const std::vector<int>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

std::string block_name(const AllocationProblem& p, std::size_t i) {
  return p.block_names.empty() ? std::to_string(i) : p.block_names[i];
}

struct GlpDeleter {
  void operator()(glp_prob* lp) const { glp_delete_prob(lp); }
};

// Branch-and-bound callback: keeps the best global lower bound seen (the bound of the best active
// node), which bounds the gap when the time limit stops the search.
struct BoundTracker {
  bool have = false;
  double bound = 0;
  std::vector<double> start;  // a feasible solution (1-based column values) to offer once, if any
};

void track_bound(glp_tree* tree, void* info) {
  auto* t = static_cast<BoundTracker*>(info);
  if (glp_ios_reason(tree) == GLP_IHEUR && !t->start.empty()) {
    glp_ios_heur_sol(tree, t->start.data());
    t->start.clear();
  }
  const int node = glp_ios_best_node(tree);
  if (node == 0) return;
  const double b = glp_ios_node_bound(tree, node);
  if (!t->have || b > t->bound) {
    t->have = true;
    t->bound = b;
  }
}

// Restores GLPK's terminal output flag on scope exit.
class TermOut {
 public:
  explicit TermOut(bool on) : prev_(glp_term_out(on ? GLP_ON : GLP_OFF)) {}
  ~TermOut() { glp_term_out(prev_); }

 private:
  int prev_;
};

// A unit of a resource's mixed-width penalty (Resource::mix_group) that the ILP must model: its
// blocks belong to two or more items, so they can end up with different widths.
struct MixUnit {
  std::map<std::size_t, double> coef;   // option -> additive cost of the unit's blocks in that option's item
  std::set<int> forced;                 // candidate indices of the unit's fixed items
  double fixed = 0;                     // additive cost of the unit's blocks in fixed items
  std::vector<std::size_t> free_items;  // the unit's items with more than one option
};

// The widths unit g can be uniform at: its fixed items' width, or any width of its options when it
// has no fixed items; none when its fixed items already have two widths.
std::set<int> uniform_widths(const MixUnit& g, const ItemSet& s) {
  if (g.forced.size() > 1) return {};
  std::set<int> widths = g.forced;
  if (widths.empty())
    for (const auto& oc : g.coef) widths.insert(s.cand[oc.first]);
  return widths;
}

// The widths unit g takes under a choice of one option per item.
std::set<int> chosen_widths(const MixUnit& g, const ItemSet& s, const std::vector<std::size_t>& choice) {
  std::set<int> widths = g.forced;
  for (std::size_t u : g.free_items) widths.insert(s.cand[choice[u]]);
  return widths;
}

// The penalty (f - 1) A_g that unit g pays under a choice of one option per item.
long double unit_extra(const MixUnit& g, double f, const ItemSet& s, const std::vector<std::size_t>& choice) {
  if (chosen_widths(g, s, choice).size() < 2) return 0.0L;
  long double a = g.fixed;
  for (std::size_t u : g.free_items) a += g.coef.at(choice[u]);
  return (f - 1.0) * a;
}

// ... summed over the units.
long double mix_extra(const std::vector<MixUnit>& units, double f, const ItemSet& s,
                      const std::vector<std::size_t>& choice) {
  long double extra = 0;
  for (const MixUnit& g : units) extra += unit_extra(g, f, s, choice);
  return extra;
}

std::vector<MixUnit> mix_units(const AllocationProblem& q, const ItemSet& s, std::size_t r) {
  const Resource& res = q.resources[r];
  std::vector<MixUnit> out;
  if (!res.has_mix_penalty()) return out;
  std::map<int, std::vector<std::size_t>> blocks;  // mix group -> blocks
  for (std::size_t i = 0; i < q.num_blocks(); ++i)
    if (res.mix_group[i] >= 0) blocks[res.mix_group[i]].push_back(i);
  for (const auto& kv : blocks) {
    std::set<std::size_t> items;
    for (std::size_t i : kv.second) items.insert(s.item_of_block[i]);
    if (items.size() < 2) continue;  // one item: one width, never mixed
    MixUnit g;
    for (std::size_t i : kv.second) {
      const std::size_t u = s.item_of_block[i];
      for (std::size_t o = s.begin(u); o < s.end(u); ++o) {
        const double c = res.cost[i][static_cast<std::size_t>(s.cand[o])];
        if (s.num_options(u) == 1) {
          g.fixed += c;
          g.forced.insert(s.cand[o]);
        } else {
          g.coef[o] += c;
        }
      }
    }
    for (std::size_t u : items)
      if (s.num_options(u) > 1) g.free_items.push_back(u);
    out.push_back(std::move(g));
  }
  return out;
}

// The penalty of unit g is (f - 1) Σ_o a_o (x_o - p_o) over the options o of its items (a_o = the
// additive cost of g's blocks in option o), with binaries w[g][j] ("g is uniform at width j",
// Σ_j w <= 1, and x_o + Σ_{j != width(o)} w[g][j] <= 1) and continuous p_o <= x_o, p_o <= w[g][width(o)]:
// a uniform unit sets its w and pays nothing, a mixed one has every w at 0 and pays (f - 1) A_g.
// Per-option terms keep the LP relaxation tight (a big-M on the unit's total did not). Fixed items
// add (f - 1) a (1 - w[g][their width]). Adds the rows and columns, the per-option penalty
// coefficients to `xcoef` (resource unit, for the budget row's x entries), the budget row's
// entries of the new columns to (ia, ja, ar) and returns the constant part, Σ (f - 1) a over fixed items.
struct MixCols {  // the columns add_mix_penalty made, to write a known solution into
  std::vector<std::map<int, int>> w;                     // per unit: width -> w column
  std::vector<std::vector<std::pair<int, std::size_t>>> p;  // per unit: (p column, option)
};
double add_mix_penalty(glp_prob* lp, const std::vector<MixUnit>& units, double f, double scale, int rr,
                       const std::vector<int>& col_of, const ItemSet& s, std::map<std::size_t, double>& xcoef,
                       std::vector<int>& ia, std::vector<int>& ja, std::vector<double>& ar, MixCols& cols) {
  auto put = [&](int row, int col, double v) {
    ia.push_back(row);
    ja.push_back(col);
    ar.push_back(v);
  };
  auto bin = [&]() {
    const int col = glp_add_cols(lp, 1);
    glp_set_col_kind(lp, col, GLP_BV);
    return col;
  };
  double constant = 0;
  cols.w.assign(units.size(), {});
  cols.p.assign(units.size(), {});
  for (std::size_t gi = 0; gi < units.size(); ++gi) {
    const MixUnit& g = units[gi];
    for (const auto& oc : g.coef) xcoef[oc.first] += (f - 1.0) * oc.second;
    constant += (f - 1.0) * g.fixed;
    if (g.forced.size() > 1) continue;  // always mixed: the penalty is linear in x
    std::map<int, int>& w = cols.w[gi];
    for (int j : uniform_widths(g, s)) w[j] = bin();
    const int one = glp_add_rows(lp, 1);  // Σ w <= 1
    glp_set_row_bnds(lp, one, GLP_UP, 0.0, 1.0);
    for (const auto& wj : w) put(one, wj.second, 1.0);
    if (!g.forced.empty()) put(rr, w.begin()->second, -(f - 1.0) * g.fixed / scale);
    for (const auto& oc : g.coef) {
      const int x = col_of[oc.first], j = s.cand[oc.first];
      const int compat = glp_add_rows(lp, 1);  // x_o + Σ_{j' != j} w[j'] <= 1
      glp_set_row_bnds(lp, compat, GLP_UP, 0.0, 1.0);
      put(compat, x, 1.0);
      for (const auto& wj : w)
        if (wj.first != j) put(compat, wj.second, 1.0);
      if (!w.count(j) || oc.second == 0) continue;  // no uniform unit at this width: p_o = 0
      const int p = glp_add_cols(lp, 1);
      glp_set_col_kind(lp, p, GLP_CV);
      glp_set_col_bnds(lp, p, GLP_DB, 0.0, 1.0);
      const int px = glp_add_rows(lp, 1), pw = glp_add_rows(lp, 1);  // p <= x, p <= w[j]
      glp_set_row_bnds(lp, px, GLP_UP, 0.0, 0.0);
      glp_set_row_bnds(lp, pw, GLP_UP, 0.0, 0.0);
      put(px, p, 1.0);
      put(px, x, -1.0);
      put(pw, p, 1.0);
      put(pw, w.at(j), -1.0);
      put(rr, p, -(f - 1.0) * oc.second / scale);
      cols.p[gi].push_back({p, oc.first});
    }
  }
  return constant;
}

std::size_t item_of_option(const ItemSet& s, std::size_t o) {
  return static_cast<std::size_t>(std::upper_bound(s.first.begin(), s.first.end(), o) - s.first.begin()) - 1;
}

// Lagrangian relaxation of the budget rows for a problem with one penalised resource whose units
// do not share items: with multipliers λ_r >= 0 each unit (and each item outside the units) is
// solved on its own — the unit either uniform at one width (no penalty) or mixed (every item at its
// own best option, the penalty charged) — so L(λ) = Σ min(...) - Σ λ_r B_r is a lower bound on
// the optimum for every λ. A projected subgradient ascent on λ gives the best such bound; every
// iterate's answer that meets the budgets (penalty included), improved while it still does (the
// budgets' slack spent on the best moves, then one item at a time), is a candidate start.
struct LagrangeResult {
  double bound = -kInf;              // best lower bound on the total distortion (fixed items included)
  std::vector<std::size_t> choice;   // best answer found that meets every budget (option per item)
  double objective = kInf;           // its total distortion
  int iterations = 0;                // subgradient steps taken
  double seconds = 0;
};

LagrangeResult mix_lagrangian(const AllocationProblem& q, const ItemSet& s, const std::vector<std::size_t>& rows,
                              std::size_t rp, const std::vector<MixUnit>& units, int iterations) {
  LagrangeResult out;
  Stopwatch sw;
  const std::size_t U = s.size();
  const double f = q.resources[rp].mix_factor;
  std::vector<int> unit_of(U, -1);
  for (std::size_t gi = 0; gi < units.size(); ++gi)
    for (std::size_t u : units[gi].free_items) {
      if (unit_of[u] >= 0) return out;  // an item in two units: the units do not separate
      unit_of[u] = static_cast<int>(gi);
    }
  std::vector<double> pen(s.cand.size(), 0.0);  // (f - 1) · the option's additive cost inside its unit
  for (const MixUnit& g : units)
    for (const auto& oc : g.coef) pen[oc.first] = (f - 1.0) * oc.second;
  // Resources in units of their budgets, distortion in units of its smallest possible total.
  double dscale = 0;
  for (std::size_t u = 0; u < U; ++u) {
    double m = kInf;
    for (std::size_t o = s.begin(u); o < s.end(u); ++o) m = std::min(m, s.dist[o]);
    dscale += m;
  }
  if (!(dscale > 0)) dscale = 1;
  std::vector<double> bscale(rows.size());
  for (std::size_t k = 0; k < rows.size(); ++k) bscale[k] = std::max(std::abs(q.resources[rows[k]].budget), 1e-300);
  const std::size_t kp = static_cast<std::size_t>(std::find(rows.begin(), rows.end(), rp) - rows.begin());
  HAWQ_CHECK(kp < rows.size(), "the penalised resource has a finite budget");

  auto used = [&](const std::vector<std::size_t>& ch) {  // per finite budget, penalty included
    std::vector<long double> u(rows.size(), 0.0L);
    for (std::size_t k = 0; k < rows.size(); ++k)
      for (std::size_t i = 0; i < U; ++i) u[k] += s.cost[rows[k]][ch[i]];
    u[kp] += mix_extra(units, f, s, ch);
    return u;
  };
  // The budgets' use u after item i moves to option o (ch is left as it was).
  auto used_after = [&](std::vector<std::size_t>& ch, const std::vector<long double>& u, std::size_t i,
                        std::size_t o) {
    const std::size_t was = ch[i];
    std::vector<long double> t = u;
    for (std::size_t k = 0; k < rows.size(); ++k) t[k] += s.cost[rows[k]][o] - s.cost[rows[k]][was];
    if (unit_of[i] >= 0) {
      const MixUnit& g = units[static_cast<std::size_t>(unit_of[i])];
      const long double before = unit_extra(g, f, s, ch);
      ch[i] = o;
      t[kp] += unit_extra(g, f, s, ch) - before;
      ch[i] = was;
    }
    return t;
  };
  auto meets = [&](const std::vector<long double>& u) {
    for (std::size_t k = 0; k < rows.size(); ++k)
      if (!within_budget(static_cast<double>(u[k]), q.resources[rows[k]].budget)) return false;
    return true;
  };
  auto distortion = [&](const std::vector<std::size_t>& ch) {
    long double d = 0;
    for (std::size_t i = 0; i < U; ++i) d += s.dist[ch[i]];
    return static_cast<double>(d);
  };
  // One item at a time, the option with the least distortion that keeps every budget met.
  auto improve = [&](std::vector<std::size_t>& ch) {
    std::vector<long double> u = used(ch);
    for (int pass = 0; pass < 50; ++pass) {
      bool changed = false;
      for (std::size_t i = 0; i < U; ++i) {
        if (s.num_options(i) < 2) continue;
        const std::size_t was = ch[i];
        std::size_t best = was;
        std::vector<long double> best_u;
        for (std::size_t o = s.begin(i); o < s.end(i); ++o) {
          if (!(s.dist[o] < s.dist[best])) continue;
          std::vector<long double> t = used_after(ch, u, i, o);
          if (meets(t)) {
            best = o;
            best_u = std::move(t);
          }
        }
        if (best != was) {
          ch[i] = best;
          u = std::move(best_u);
          changed = true;
        }
      }
      if (!changed) break;
    }
  };
  // The budgets' slack spent where it buys the most: every single-item move that lowers the
  // distortion, by distortion saved per unit of slack used (the largest share over the budgets),
  // applied in that order while the budgets stay met.
  auto fill = [&](std::vector<std::size_t>& ch) {
    std::vector<long double> u = used(ch);
    struct Move {
      double ratio;
      std::size_t item, option;
    };
    std::vector<Move> moves;
    for (std::size_t i = 0; i < U; ++i)
      for (std::size_t o = s.begin(i); o < s.end(i); ++o) {
        const double gain = s.dist[ch[i]] - s.dist[o];
        if (!(gain > 0)) continue;
        double use = 0;
        for (std::size_t k = 0; k < rows.size(); ++k) {
          const double slack = std::max(static_cast<double>(q.resources[rows[k]].budget - u[k]), 1e-12 * bscale[k]);
          use = std::max(use, (s.cost[rows[k]][o] - s.cost[rows[k]][ch[i]]) / slack);
        }
        moves.push_back({use > 0 ? gain / use : kInf, i, o});
      }
    std::sort(moves.begin(), moves.end(), [](const Move& a, const Move& b) { return a.ratio > b.ratio; });
    for (const Move& m : moves) {
      if (!(s.dist[m.option] < s.dist[ch[m.item]])) continue;  // an earlier move already did better
      std::vector<long double> t = used_after(ch, u, m.item, m.option);
      if (meets(t)) {
        ch[m.item] = m.option;
        u = std::move(t);
      }
    }
  };
  auto offer = [&](std::vector<std::size_t> ch) {
    if (!meets(used(ch))) return;
    fill(ch);
    improve(ch);
    const double d = distortion(ch);
    if (d < out.objective) {
      out.objective = d;
      out.choice = std::move(ch);
    }
  };

  std::vector<double> lam(rows.size(), 0.0);
  std::vector<std::size_t> ch(U);
  std::vector<double> val(s.cand.size());
  double theta = 1.0;
  int since_better = 0;
  for (int it = 0; it < iterations; ++it) {
    out.iterations = it + 1;
    for (std::size_t o = 0; o < s.cand.size(); ++o) {
      double v = s.dist[o] / dscale;
      for (std::size_t k = 0; k < rows.size(); ++k) v += lam[k] * s.cost[rows[k]][o] / bscale[k];
      val[o] = v;
    }
    const double lp = lam[kp] / bscale[kp];
    long double L = 0;
    for (std::size_t i = 0; i < U; ++i) {
      if (unit_of[i] >= 0) continue;
      std::size_t b = s.begin(i);
      for (std::size_t o = s.begin(i); o < s.end(i); ++o)
        if (val[o] < val[b]) b = o;
      ch[i] = b;
      L += val[b];
    }
    for (const MixUnit& g : units) {
      // mixed: every item on its own, the penalty charged (fixed items' part is a constant)
      long double mixed = lp * (f - 1.0) * g.fixed;
      for (std::size_t i : g.free_items) {
        std::size_t b = s.begin(i);
        for (std::size_t o = s.begin(i); o < s.end(i); ++o)
          if (val[o] + lp * pen[o] < val[b] + lp * pen[b]) b = o;
        ch[i] = b;
        mixed += val[b] + lp * pen[b];
      }
      // uniform at width j: every item at its option of width j, no penalty
      long double best = mixed;
      int best_j = -1;
      for (int j : uniform_widths(g, s)) {
        long double t = 0;
        bool all = true;
        for (std::size_t i : g.free_items) {
          std::size_t at = s.end(i);
          for (std::size_t o = s.begin(i); o < s.end(i); ++o)
            if (s.cand[o] == j) at = o;
          if (at == s.end(i)) {
            all = false;
            break;
          }
          t += val[at];
        }
        if (all && t < best) {
          best = t;
          best_j = j;
        }
      }
      if (best_j >= 0)
        for (std::size_t i : g.free_items)
          for (std::size_t o = s.begin(i); o < s.end(i); ++o)
            if (s.cand[o] == best_j) ch[i] = o;
      L += best;
    }
    for (std::size_t k = 0; k < rows.size(); ++k) L -= lam[k];  // - Σ λ_k (B_k / B_k)
    const double bound = static_cast<double>(L) * dscale;
    if (bound > out.bound * (1 + 1e-12)) {
      out.bound = bound;
      since_better = 0;
    } else if (++since_better >= 20) {
      theta /= 2;
      since_better = 0;
    }
    const std::vector<long double> u = used(ch);
    offer(ch);
    // Polyak step towards the best answer's objective (or 10 % above the bound before there is one)
    std::vector<double> g(rows.size());
    double norm = 0;
    for (std::size_t k = 0; k < rows.size(); ++k) {
      g[k] = static_cast<double>(u[k] / bscale[k]) - 1.0;
      norm += g[k] * g[k];
    }
    if (norm == 0) break;  // every budget met with equality: λ is optimal
    const double target = std::isfinite(out.objective) ? out.objective / dscale : (L + 0.1 * std::abs(static_cast<double>(L)) + 1e-9);
    const double step = theta * std::max(target - static_cast<double>(L), 1e-9) / norm;
    for (std::size_t k = 0; k < rows.size(); ++k) lam[k] = std::max(0.0, lam[k] + step * g[k]);
    if (theta < 1e-6) break;
    if (std::isfinite(out.objective) && out.objective <= out.bound * (1 + 1e-9)) break;  // proven optimal
  }
  out.seconds = sw.seconds();
  return out;
}

class HardwareAllocator : public Allocator {
 public:
  explicit HardwareAllocator(const Params& p) {
    for (long long b : p.get_int_list("supported_bits", {})) {
      if (b < 1 || b > 64)
        throw ConfigError(p.where("supported_bits") + ": expected bit widths in [1, 64], got " + std::to_string(b));
      supported_.push_back(static_cast<int>(b));
    }
    std::sort(supported_.begin(), supported_.end());
    supported_.erase(std::unique(supported_.begin(), supported_.end()), supported_.end());
    time_limit_s_ = p.get_double("time_limit_s", 60.0);
    if (!(time_limit_s_ > 0))
      throw ConfigError(p.where("time_limit_s") + ": expected a positive number of seconds");
    mip_gap_ = p.get_double("mip_gap", 0.0);
    if (!(mip_gap_ >= 0 && mip_gap_ < 1))
      throw ConfigError(p.where("mip_gap") + ": expected a relative gap in [0, 1)");
    verbose_ = p.get_bool("verbose", false);
    const long long li = p.get_int("lagrange_iterations", 500);
    if (li < 0 || li > 1000000)
      throw ConfigError(p.where("lagrange_iterations") + ": expected an iteration count in [0, 1000000]");
    lagrange_iterations_ = static_cast<int>(li);
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
  // Option per item of a feasible answer to the penalised problem q from two additive problems
  // solved by this allocator (a third of the time limit each; empty when neither is feasible):
  // every mixed-width unit tied to one width, and every penalised budget divided by its factor.
  // The one with less distortion wins.
  std::vector<std::size_t> warm_start(const AllocationProblem& q, const ItemSet& s) const;

  std::vector<int> supported_;
  double time_limit_s_;
  double mip_gap_;
  bool verbose_;
  int lagrange_iterations_;
};

Allocation HardwareAllocator::solve(const AllocationProblem& problem) const {
  Stopwatch sw;
  problem.validate();
  check_feasible(problem);

  // Widths the hardware runs: drop the others, reject pins to them.
  AllocationProblem restricted;
  const AllocationProblem* P = &problem;
  std::string restrict_note;
  if (!supported_.empty()) {
    auto is_supported = [&](int b) { return std::binary_search(supported_.begin(), supported_.end(), b); };
    std::vector<std::size_t> keep;
    for (std::size_t j = 0; j < problem.num_candidates(); ++j)
      if (is_supported(problem.candidate_bits[j])) keep.push_back(j);
    if (keep.empty())
      throw UserError("hardware: none of the candidate widths " + list_text(problem.candidate_bits) +
                      " is in supported_bits " + list_text(supported_));
    for (std::size_t i = 0; i < problem.pinned_bits.size(); ++i)
      if (problem.pinned_bits[i] != 0 && !is_supported(problem.pinned_bits[i]))
        throw UserError("hardware: block '" + block_name(problem, i) + "' is pinned to " +
                        std::to_string(problem.pinned_bits[i]) + " bits, which supported_bits " +
                        list_text(supported_) + " does not include");
    if (keep.size() < problem.num_candidates()) {
      restricted = problem;
      auto take = [&](std::vector<double>& row) {
        std::vector<double> out;
        for (std::size_t j : keep) out.push_back(row[j]);
        row.swap(out);
      };
      restricted.candidate_bits.clear();
      for (std::size_t j : keep) restricted.candidate_bits.push_back(problem.candidate_bits[j]);
      for (auto& row : restricted.distortion) take(row);
      for (auto& r : restricted.resources)
        for (auto& row : r.cost) take(row);
      P = &restricted;
      restrict_note = "; widths restricted to supported_bits " + list_text(restricted.candidate_bits);
      try {
        check_feasible(restricted);
      } catch (const InfeasibleError& e) {
        throw InfeasibleError(std::string(e.what()) + "; widths restricted to supported_bits " +
                              list_text(restricted.candidate_bits));
      }
    }
  }
  const AllocationProblem& q = *P;
  const ItemSet s = build_items(q);
  const std::size_t U = s.size(), R = q.resources.size();

  // Fixed items (one option) are constants; the others get binaries.
  std::vector<std::size_t> choice(U);
  std::vector<std::size_t> free_items;
  long double obj_floor = 0;  // smallest possible distortion of the free items
  for (std::size_t u = 0; u < U; ++u) {
    choice[u] = s.begin(u);
    if (s.num_options(u) > 1) {
      free_items.push_back(u);
      double m = kInf;
      for (std::size_t o = s.begin(u); o < s.end(u); ++o) m = std::min(m, s.dist[o]);
      obj_floor += m;
    }
  }
  std::vector<std::size_t> rows_of;  // resources with a finite budget
  for (std::size_t r = 0; r < R; ++r)
    if (std::isfinite(q.resources[r].budget)) rows_of.push_back(r);

  std::ostringstream note;
  double gap = 0;
  double lagr_bound = -kInf;  // the Lagrangian relaxation's lower bound, when it ran
  int lagr_iterations = 0;
  double lagr_seconds = 0;
  if (!free_items.empty()) {
    double obj_scale = static_cast<double>(obj_floor);
    if (!(obj_scale > 0)) {
      obj_scale = 0;
      for (std::size_t u : free_items)
        for (std::size_t o = s.begin(u); o < s.end(u); ++o) obj_scale = std::max(obj_scale, s.dist[o]);
    }
    if (!(obj_scale > 0)) obj_scale = 1;

    std::unique_ptr<glp_prob, GlpDeleter> lp(glp_create_prob());
    glp_set_obj_dir(lp.get(), GLP_MIN);
    std::vector<int> col_of(s.cand.size(), 0);
    int ncols = 0;
    for (std::size_t u : free_items)
      for (std::size_t o = s.begin(u); o < s.end(u); ++o) col_of[o] = ++ncols;
    glp_add_cols(lp.get(), ncols);
    for (std::size_t u : free_items)
      for (std::size_t o = s.begin(u); o < s.end(u); ++o) {
        glp_set_col_kind(lp.get(), col_of[o], GLP_BV);
        glp_set_obj_coef(lp.get(), col_of[o], s.dist[o] / obj_scale);
      }
    std::vector<int> ia{0}, ja{0};
    std::vector<double> ar{0.0};
    glp_add_rows(lp.get(), static_cast<int>(free_items.size()));
    int row = 0;
    for (std::size_t u : free_items) {
      ++row;
      glp_set_row_bnds(lp.get(), row, GLP_FX, 1.0, 1.0);
      for (std::size_t o = s.begin(u); o < s.end(u); ++o) {
        ia.push_back(row);
        ja.push_back(col_of[o]);
        ar.push_back(1.0);
      }
    }
    // Budget rows: Σ (c - min c) x <= budget - Σ min c, scaled by the largest coefficient.
    struct BudgetRow {
      std::size_t r;
      int row;
      double scale;
      double rhs;        // in the resource's unit, shifted
      long double base;  // the shift: Σ over items of their cheapest option
      std::vector<MixUnit> units;  // mixed-width units of the resource, if any
      double constant;   // their penalty terms that do not depend on the choice (row bound offset)
      MixCols cols;      // their columns
    };
    std::vector<BudgetRow> budget_rows;
    int penalty_units = 0;
    for (std::size_t r : rows_of) {
      long double base = 0;
      double scale = 0;
      std::vector<double> mins(U);
      for (std::size_t u = 0; u < U; ++u) {
        double m = kInf;
        for (std::size_t o = s.begin(u); o < s.end(u); ++o) m = std::min(m, s.cost[r][o]);
        mins[u] = m;
        base += m;
        if (s.num_options(u) > 1)
          for (std::size_t o = s.begin(u); o < s.end(u); ++o) scale = std::max(scale, s.cost[r][o] - m);
      }
      const std::vector<MixUnit> units = mix_units(q, s, r);
      const double f = q.resources[r].mix_factor;
      for (const MixUnit& g : units) {
        for (const auto& oc : g.coef) scale = std::max(scale, (f - 1.0) * oc.second);
        scale = std::max(scale, (f - 1.0) * g.fixed);
      }
      if (!(scale > 0)) continue;  // every free item costs the same in this resource
      const double rhs = std::max(0.0, static_cast<double>((long double)q.resources[r].budget - base));
      const int rr = glp_add_rows(lp.get(), 1);
      std::map<std::size_t, double> xcoef;  // the penalty's per-option terms, resource unit
      MixCols cols;
      const double constant = add_mix_penalty(lp.get(), units, f, scale, rr, col_of, s, xcoef, ia, ja, ar, cols);
      glp_set_row_bnds(lp.get(), rr, GLP_UP, 0.0, (rhs - constant) / scale);
      for (std::size_t u : free_items)
        for (std::size_t o = s.begin(u); o < s.end(u); ++o) {
          const auto it = xcoef.find(o);
          const double coef = (s.cost[r][o] - mins[u] + (it == xcoef.end() ? 0.0 : it->second)) / scale;
          if (coef == 0) continue;
          ia.push_back(rr);
          ja.push_back(col_of[o]);
          ar.push_back(coef);
        }
      penalty_units += static_cast<int>(units.size());
      budget_rows.push_back({r, rr, scale, rhs, base, units, constant, cols});
    }
    ncols = glp_get_num_cols(lp.get());
    glp_load_matrix(lp.get(), static_cast<int>(ia.size()) - 1, ia.data(), ja.data(), ar.data());

    glp_iocp parm;
    glp_init_iocp(&parm);
    parm.presolve = GLP_ON;
    parm.msg_lev = verbose_ ? GLP_MSG_ON : GLP_MSG_OFF;
    parm.tm_lim = static_cast<int>(std::min(time_limit_s_ * 1000.0, static_cast<double>(INT_MAX)));
    parm.mip_gap = mip_gap_;
    // MIR cuts prove optimality of these multiple-choice knapsacks several times faster than GLPK's
    // defaults; best-projection backtracking finds better incumbents when the time limit stops it.
    parm.mir_cuts = GLP_ON;
    parm.bt_tech = GLP_BT_BPH;
    BoundTracker tracker;
    parm.cb_func = track_bound;
    parm.cb_info = &tracker;
    LagrangeResult lagr;
    if (penalty_units) {
      // Penalised units make incumbents hard for GLPK to find and its bound weak. With one penalised
      // resource whose units separate, a Lagrangian relaxation of the budgets gives a lower bound
      // and a feasible answer (often optimal: then GLPK is not needed); otherwise, or when it finds
      // none, offer the better of two feasible answers of additive problems, one width per unit
      // (never penalised) and every penalised budget divided by its factor (met whatever the penalty).
      std::size_t npen = 0, rp = 0;
      const std::vector<MixUnit>* pu = nullptr;
      for (const BudgetRow& br : budget_rows)
        if (!br.units.empty()) {
          ++npen;
          rp = br.r;
          pu = &br.units;
        }
      if (npen == 1 && lagrange_iterations_ > 0) {
        lagr = mix_lagrangian(q, s, rows_of, rp, *pu, lagrange_iterations_);
        lagr_bound = lagr.bound;
        lagr_iterations = lagr.iterations;
        lagr_seconds = lagr.seconds;
      }
      const std::vector<std::size_t> start = lagr.choice.empty() ? warm_start(q, s) : lagr.choice;
      if (!start.empty()) {
        tracker.start.assign(static_cast<std::size_t>(glp_get_num_cols(lp.get())) + 1, 0.0);
        for (std::size_t u : free_items) tracker.start[static_cast<std::size_t>(col_of[start[u]])] = 1.0;
        for (const BudgetRow& br : budget_rows)
          for (std::size_t gi = 0; gi < br.units.size(); ++gi) {
            const MixUnit& g = br.units[gi];
            const std::set<int> widths = chosen_widths(g, s, start);
            if (widths.size() != 1 || !br.cols.w[gi].count(*widths.begin())) continue;
            tracker.start[static_cast<std::size_t>(br.cols.w[gi].at(*widths.begin()))] = 1.0;
            for (const auto& [pc, o] : br.cols.p[gi])
              if (start[item_of_option(s, o)] == o) tracker.start[static_cast<std::size_t>(pc)] = 1.0;
          }
      }
    }
    // the search gets what the warm start's solves left of time_limit_s
    parm.tm_lim = static_cast<int>(std::min(std::max(1.0, time_limit_s_ - sw.seconds()) * 1000.0, static_cast<double>(INT_MAX)));

    const bool proven = !lagr.choice.empty() && lagr.objective <= lagr.bound + 1e-9 * std::abs(lagr.bound);
    if (proven) {
      for (std::size_t u : free_items) choice[u] = lagr.choice[u];
      note << "hardware: " << free_items.size() << " items, " << budget_rows.size() << " budget rows, "
           << penalty_units << " mixed-width units; optimal (the Lagrangian bound meets its answer)";
    } else {
      // GLPK meets rows within its feasibility tolerance; if the rounded-to-binary answer overshoots
      // a true budget, tighten that row by the overshoot and solve again.
      int ret = 0, status = 0;
      bool met = false;
      for (int attempt = 0; attempt < 4 && !met; ++attempt) {
        {
          TermOut quiet(verbose_);
          if (!tracker.start.empty()) {
            // The callback's column numbers are those of the problem in the search tree, which the
            // MIP presolver would renumber: solve the LP relaxation here and search without it.
            glp_smcp sp;
            glp_init_smcp(&sp);
            sp.msg_lev = verbose_ ? GLP_MSG_ON : GLP_MSG_OFF;
            sp.presolve = GLP_ON;
            parm.presolve = glp_simplex(lp.get(), &sp) == 0 && glp_get_status(lp.get()) == GLP_OPT ? GLP_OFF : GLP_ON;
            if (parm.presolve == GLP_ON) tracker.start.clear();  // no LP optimum to start from: no offer
          }
          ret = glp_intopt(lp.get(), &parm);
        }
        status = glp_mip_status(lp.get());
        if (ret == GLP_ENOPFS || status == GLP_NOFEAS) {
          std::ostringstream m;
          m << "hardware: no assignment meets every budget at once (each one alone is achievable):";
          for (std::size_t r : rows_of) {
            auto range = feasible_range(q, r);
            m << " '" << q.resources[r].name << "' budget " << q.resources[r].budget << " (feasible range ["
              << range.first << ", " << range.second << "]);";
          }
          m << " given candidate widths, pins and ties" << restrict_note;
          throw InfeasibleError(m.str());
        }
        if (status != GLP_OPT && status != GLP_FEAS) {
          if (ret == GLP_ETMLIM)
            throw UserError("hardware: GLPK found no feasible assignment within time_limit_s=" +
                            std::to_string(time_limit_s_) + "; raise time_limit_s or use 'lagrangian'");
          throw UserError("hardware: GLPK's glp_intopt failed with code " + std::to_string(ret));
        }
        for (std::size_t u : free_items) {
          std::size_t best = s.begin(u);
          for (std::size_t o = s.begin(u); o < s.end(u); ++o)
            if (glp_mip_col_val(lp.get(), col_of[o]) > glp_mip_col_val(lp.get(), col_of[best])) best = o;
          choice[u] = best;
        }
        met = true;
        for (auto& br : budget_rows) {
          // the row's use in its shifted unit: the choice's cost, penalty included, less the shift
          long double used = mix_extra(br.units, q.resources[br.r].mix_factor, s, choice) - br.base;
          for (std::size_t u = 0; u < U; ++u) used += s.cost[br.r][choice[u]];
          if (used > br.rhs && !within_budget(static_cast<double>(used), br.rhs)) {
            met = false;
            br.rhs -= static_cast<double>(used - br.rhs) * (1 + 1e-6) + 1e-12 * br.scale;
            glp_set_row_bnds(lp.get(), br.row, GLP_UP, 0.0, (std::max(0.0, br.rhs) - br.constant) / br.scale);
          }
        }
      }
      if (!met) throw UserError("hardware: GLPK's answer overshoots a budget beyond rounding; tightening did not help");

      const double mip_scaled = glp_mip_obj_val(lp.get());
      long double fixed_dist = 0;
      for (std::size_t u = 0; u < U; ++u)
        if (s.num_options(u) == 1) fixed_dist += s.dist[choice[u]];
      note << "hardware: GLPK ILP, " << ncols << " columns, " << free_items.size() << " one-hot rows, "
           << budget_rows.size() << " budget rows";
      if (penalty_units) note << ", " << penalty_units << " mixed-width units";
      note << "; ";
      // the relative gap GLPK's stopping rule at mip_gap allows
      auto mip_gap_bound = [&]() {
        const double abs_gap = mip_gap_ * (std::abs(mip_scaled) + 2.220446049250313e-16) * obj_scale;
        const double obj = static_cast<double>(fixed_dist) + mip_scaled * obj_scale;
        return abs_gap / std::max(obj - abs_gap, std::numeric_limits<double>::min());
      };
      if (ret == 0 && status == GLP_OPT) {
        if (mip_gap_ > 0) {
          gap = mip_gap_bound();
          note << "solved within mip_gap " << mip_gap_;
        } else {
          note << "optimal";
        }
      } else {
        // Stopped early (time limit or gap tolerance): the LP relaxation bounds the optimum.
        if (ret == GLP_EMIPGAP) {
          gap = mip_gap_bound();
          note << "stopped at mip_gap " << mip_gap_;
        } else if (tracker.have) {
          const double node = static_cast<double>(fixed_dist) + tracker.bound * obj_scale;
          const double lower = std::max(node, lagr.bound);
          const double obj = static_cast<double>(fixed_dist) + mip_scaled * obj_scale;
          gap = std::max(0.0, obj - lower) / std::max(lower, std::numeric_limits<double>::min());
          note << "stopped at time_limit_s " << time_limit_s_ << " with a feasible answer; gap bound from the "
               << (lagr.bound > node ? "Lagrangian relaxation" : "best open node");
        } else {
          glp_smcp sp;
          glp_init_smcp(&sp);
          sp.msg_lev = verbose_ ? GLP_MSG_ON : GLP_MSG_OFF;
          sp.presolve = GLP_ON;
          int lp_ret;
          {
            TermOut quiet(verbose_);
            lp_ret = glp_simplex(lp.get(), &sp);
          }
          gap = kNaN;
          double lower = lagr.bound;
          if (lp_ret == 0 && glp_get_status(lp.get()) == GLP_OPT)
            lower = std::max(lower, static_cast<double>(fixed_dist) + glp_get_obj_val(lp.get()) * obj_scale);
          if (std::isfinite(lower)) {
            const double obj = static_cast<double>(fixed_dist) + mip_scaled * obj_scale;
            gap = std::max(0.0, obj - lower) / std::max(lower, std::numeric_limits<double>::min());
          }
          note << "stopped at time_limit_s " << time_limit_s_ << " with a feasible answer; gap bound from the "
               << (lower == lagr.bound ? "Lagrangian relaxation" : "LP relaxation");
        }
      }
    }
  } else {
    note << "hardware: every item fixed by pins or by a single supported width";
  }
  Allocation a = evaluate_allocation(problem, bits_of(q, s, choice));
  for (std::size_t r = 0; r < R; ++r)
    HAWQ_CHECK(within_budget(a.cost[r], problem.resources[r].budget) || !std::isfinite(problem.resources[r].budget) ||
                   a.cost[r] <= problem.resources[r].budget * (1 + 1e-9) + 1e-9,
               "hardware answer exceeds a budget");
  a.gap_bound = gap;
  a.note = note.str() + restrict_note;
  if (std::isfinite(lagr_bound)) {
    std::ostringstream lb;
    lb.precision(17);
    lb << "; Lagrangian bound " << lagr_bound;
    lb.precision(3);
    lb << " (" << lagr_iterations << " steps, " << lagr_seconds << " s)";
    a.note += lb.str();
  }
  a.seconds = sw.seconds();
  return a;
}

std::vector<std::size_t> HardwareAllocator::warm_start(const AllocationProblem& q, const ItemSet& s) const {
  HardwareAllocator sub = *this;
  sub.time_limit_s_ = time_limit_s_ / 3;
  sub.supported_.clear();  // q is already restricted
  std::vector<AllocationProblem> tries(2, q);
  {  // one width per unit: merge each penalised resource's units into the tied groups
    AllocationProblem& t = tries[0];
    const std::size_t n = q.num_blocks();
    std::vector<std::size_t> parent(n);
    for (std::size_t i = 0; i < n; ++i) parent[i] = i;
    std::function<std::size_t(std::size_t)> root = [&](std::size_t i) {
      return parent[i] == i ? i : parent[i] = root(parent[i]);
    };
    auto join = [&](const std::vector<int>& ids) {
      std::map<int, std::size_t> first;
      for (std::size_t i = 0; i < n; ++i) {
        if (ids.empty() || ids[i] < 0) continue;
        const auto it = first.emplace(ids[i], i).first;
        parent[root(i)] = root(it->second);
      }
    };
    join(q.group);
    for (auto& r : t.resources)
      if (r.has_mix_penalty()) {
        join(r.mix_group);
        r.mix_factor = 1.0;
      }
    t.group.assign(n, -1);
    for (std::size_t i = 0; i < n; ++i) t.group[i] = static_cast<int>(root(i));
  }
  for (auto& r : tries[1].resources)  // every penalised budget divided by its factor
    if (r.has_mix_penalty()) {
      r.budget /= r.mix_factor;
      r.mix_factor = 1.0;
    }
  std::vector<int> best;
  double best_obj = kInf;
  for (const AllocationProblem& t : tries) {
    try {
      const Allocation a = sub.solve(t);
      const Allocation e = evaluate_allocation(q, a.bits);  // penalised, on the real budgets
      bool ok = true;
      for (std::size_t r = 0; r < q.resources.size(); ++r)
        ok = ok && (!std::isfinite(q.resources[r].budget) || within_budget(e.cost[r], q.resources[r].budget));
      if (ok && e.objective < best_obj) {
        best_obj = e.objective;
        best = a.bits;
      }
    } catch (const std::exception&) {  // infeasible or out of time: no start from this one
    }
  }
  if (best.empty()) return {};
  std::vector<std::size_t> option(s.size());
  for (std::size_t i = 0; i < q.num_blocks(); ++i) {
    const std::size_t u = s.item_of_block[i];
    for (std::size_t o = s.begin(u); o < s.end(u); ++o)
      if (q.candidate_bits[static_cast<std::size_t>(s.cand[o])] == best[i]) option[u] = o;
  }
  return option;
}

}  // namespace
}  // namespace hawq

HAWQ_REGISTER_ALLOCATOR("hardware", hawq::HardwareAllocator)
