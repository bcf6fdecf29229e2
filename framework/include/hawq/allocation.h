// Bit allocation: the problem an allocator solves and the answer it returns. Torch-free.
//
// An AllocationProblem lists blocks (layers, tiles, heads ...), the candidate bit widths, the
// distortion of every (block, bits) pair, and one or more resources with a cost per (block, bits)
// and a budget. The allocator picks one candidate per block, minimising total distortion subject to
// every resource staying within its budget, with tied groups sharing a width and pinned blocks
// fixed. Distortion is whatever the method chose: analytic Ω·σ²(b) or a measured quantity.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "hawq/params.h"

namespace hawq {

struct Resource {
  std::string name;                        // "bits", "bytes", "bops", "latency_us", ...
  std::vector<std::vector<double>> cost;   // cost[block][candidate index], in the resource's unit
  double budget = std::numeric_limits<double>::infinity();  // total cost must be <= budget
  // Optional mixed-width penalty (kernel latency: a weight whose blocks run at more than one width
  // takes the kernels' slower mixed path). Blocks with the same mix_group id >= 0 form one unit
  // (e.g. one weight matrix); when they end up with two or more distinct widths, their summed
  // cost is multiplied by mix_factor (>= 1). Empty or all -1 = no penalty (purely additive).
  // `hardware` models it exactly; the single-resource solvers meet it as a secondary budget or
  // refuse it on the primary resource.
  std::vector<int> mix_group;
  double mix_factor = 1.0;
  bool has_mix_penalty() const { return mix_factor > 1.0 && !mix_group.empty(); }
};

struct AllocationProblem {
  std::vector<std::string> block_names;            // for messages and results
  std::vector<std::int64_t> numel;                 // weight elements per block
  std::vector<int> candidate_bits;                 // ascending, shared by every block
  std::vector<std::vector<double>> distortion;     // distortion[block][candidate index], >= 0
  std::vector<Resource> resources;                 // at least one; resources[0] is the primary one
  // Tied groups: blocks with the same id >= 0 must take the same width. -1 = untied. May be empty.
  std::vector<int> group;
  // Pinned widths: 0 = free, otherwise the block must take exactly this width (which must be a
  // candidate). May be empty.
  std::vector<int> pinned_bits;

  std::size_t num_blocks() const { return numel.size(); }
  std::size_t num_candidates() const { return candidate_bits.size(); }
  // Aborts if sizes disagree; throws UserError on NaN/negative distortion or unknown pinned width.
  void validate() const;
};

struct Allocation {
  std::vector<int> bits;          // chosen width per block
  double objective = 0;           // total distortion of the choice
  std::vector<double> cost;       // total cost per resource, same order as problem.resources
  // Upper bound on (objective - optimum) / max(optimum, tiny). 0 for exact solvers.
  double gap_bound = 0;
  double seconds = 0;             // wall time of solve()
  std::string note;               // solver detail (resolution, iterations, ...)
};

class Allocator {
 public:
  static constexpr const char* kKind = "allocator";
  virtual ~Allocator() = default;
  // Throws InfeasibleError naming the feasible range when no choice meets every budget.
  virtual Allocation solve(const AllocationProblem& problem) const = 0;
  // Distortion-vs-cost frontier: one solve per budget of resource `resource`, others unchanged.
  // Infeasible budgets are skipped. Solvers may override with something faster.
  virtual std::vector<Allocation> pareto(const AllocationProblem& problem, std::size_t resource,
                                         const std::vector<double>& budgets) const;
};

// Helpers shared by allocators and the framework.
double quant_noise(int bits);  // σ²(b) = 1 / (2^{2b} - 1), the seed's relative quantisation error
// Objective and per-resource cost of a given choice (no feasibility check), mixed-width penalties
// applied.
Allocation evaluate_allocation(const AllocationProblem& problem, const std::vector<int>& bits);
// Smallest and largest achievable total of resource r respecting ties and pins. With a mixed-width
// penalty the smallest is that of the additive costs (a lower bound; the cheapest width per block
// is normally one width per unit, which has no penalty) and the largest includes the penalty on
// every unit of two or more blocks (an upper bound).
std::pair<double, double> feasible_range(const AllocationProblem& problem, std::size_t r);
// Throws InfeasibleError if some budget is below its feasible minimum (message names the range).
void check_feasible(const AllocationProblem& problem);

}  // namespace hawq

#define HAWQ_REGISTER_ALLOCATOR(name, Type) HAWQ_REGISTER_PLUGIN(::hawq::Allocator, name, Type)
