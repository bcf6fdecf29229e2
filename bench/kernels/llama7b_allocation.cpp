// Writes the HAWQ-V3 allocation that the kernel benchmark's end-to-end decode step runs as its
// "hawq_v3" variant: the `hardware` allocator (the ILP of HAWQ-V3) over the 32 decoder layers of
// LLaMA-7B (q, k, v, o 4096x4096; gate, up 11008x4096; down 4096x11008), one width per weight
// (HAWQ-V3's layer-wise granularity) or per block of --block-rows output rows by all input
// features, with the measured latency table as the latency cost model, an average-bits budget and
// a latency budget.
//
// No LLaMA-7B weights are involved (the kernels' speed does not depend on weight values), so the
// per-block sensitivities are synthetic: log-normal with a fixed seed, scaled by the block's size
// and the width's quantisation noise, as in the allocator tests. What the file carries over to the
// benchmark is the structure the allocator chooses (which widths, where, how much of each) and the
// latency it predicts, which the benchmark then measures. The prediction is the ILP's additive cost
// and, for weights that end up mixed, the table's mixed-path factor (LatencyTable::weight_us).
//
//   llama7b_allocation TABLE OUT [--bits 4.0] [--latency uniform:4|FRACTION|none] [--seed 7]
//                      [--block-rows 0|R] [--name VARIANT]
//
// OUT: comment lines (#) with the variant name, the inputs and the predicted latencies, then one
// line per block:  layer role row_begin row_end bits
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "hawq/allocation.h"
#include "hawq/errors.h"
#include "hawq/latency.h"
#include "hawq/params.h"
#include "hawq/registry.h"
#include "llama7b_problem.h"

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: llama7b_allocation TABLE OUT [--bits B] [--latency uniform:B|FRACTION|none] [--seed N]\n"
               "                          [--block-rows 0|R (0: one width per weight)] [--name VARIANT]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  const std::string table_path = argv[1], out_path = argv[2];
  double avg_bits = 4.0;
  std::string latency = "uniform:4";
  unsigned seed = 7;
  std::int64_t block_rows = 0;
  std::string name = "hawq_v3";
  for (int i = 3; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return usage();
    if (a == "--bits") avg_bits = std::atof(argv[++i]);
    else if (a == "--latency") latency = argv[++i];
    else if (a == "--seed") seed = static_cast<unsigned>(std::atoi(argv[++i]));
    else if (a == "--block-rows") block_rows = std::atoll(argv[++i]);
    else if (a == "--name") name = argv[++i];
    else return usage();
  }
  if (block_rows < 0 || block_rows % 16 || !(avg_bits >= 2 && avg_bits <= 8) || name.empty() ||
      name.find_first_of(" \t\n#") != std::string::npos) {
    std::fprintf(stderr, "llama7b_allocation: --block-rows must be 0 or a multiple of 16, --bits within [2, 8], "
                         "--name one word\n");
    return 2;
  }
  try {
    const hawq::LatencyTable table = hawq::LatencyTable::load(table_path);
    hawq::kernels::Llama7bProblem lp = hawq::kernels::llama7b_problem(table, hawq::kernels::kLlama7bLayers, block_rows, seed);
    hawq::AllocationProblem& p = lp.problem;
    const std::vector<int>& cands = p.candidate_bits;
    const auto& blocks = lp.blocks;
    const double total = lp.total, fp16_us = lp.fp16_us;
    const std::vector<double>& uniform_us = lp.uniform_us;
    hawq::Resource &bits = p.resources[0], &lat = p.resources[1];
    bits.budget = avg_bits * total * (1 + 1e-12);
    std::string latency_text = "none";
    if (latency != "none") {
      const hawq::LatencyBudget lb = hawq::parse_latency_budget(latency, "--latency");
      if (lb.uniform_bits > 0) {
        std::size_t j = 0;
        while (j < cands.size() && cands[j] != lb.uniform_bits) ++j;
        if (j == cands.size()) throw hawq::UserError("--latency: uniform width must be one of 2, 3, 4, 8");
        lat.budget = uniform_us[j] * (1 + 1e-12);
      } else {
        lat.budget = lb.fraction_of_fp16 * fp16_us;
      }
      latency_text = lb.text();
    }
    auto ilp = hawq::Registry<hawq::Allocator>::instance().create("hardware", hawq::Params::from_yaml("{}"));
    const hawq::Allocation a = ilp->solve(p);

    double share[4] = {0, 0, 0, 0};
    for (std::size_t i = 0; i < a.bits.size(); ++i)
      for (std::size_t j = 0; j < cands.size(); ++j)
        if (a.bits[i] == cands[j]) share[j] += static_cast<double>(p.numel[i]) / total;
    // The estimate with the mixed-path factor for weights that got more than one width (the blocks
    // of one weight are consecutive).
    double estimate = 0;
    int mixed_weights = 0;
    for (std::size_t i = 0; i < blocks.size();) {
      std::map<int, double> ws;  // width -> share of the weight's rows
      std::size_t e = i;
      for (; e < blocks.size() && blocks[e].layer == blocks[i].layer && blocks[e].role == blocks[i].role; ++e)
        ws[a.bits[e]] += static_cast<double>(blocks[e].r1 - blocks[e].r0) / static_cast<double>(blocks[i].n);
      mixed_weights += ws.size() > 1 ? 1 : 0;
      estimate += table.weight_us(blocks[i].n, blocks[i].k, 1, {ws.begin(), ws.end()});
      i = e;
    }
    std::ofstream out(out_path);
    if (!out) throw hawq::UserError(out_path + ": cannot write");
    char line[512];
    out << "# variant: " << name << "\n";
    out << "# HAWQ-V3 (`hardware` allocator) allocation for a LLaMA-7B decode step, written by llama7b_allocation.\n";
    out << "# Synthetic sensitivities (log-normal sigma 1.5, seed " << seed << "); "
        << (block_rows > 0 ? "blocks of " + std::to_string(block_rows) + " output rows x all input features"
                           : std::string("one width per weight"))
        << ".\n";
    std::snprintf(line, sizeof line, "# latency table: %s\n", table_path.c_str());
    out << line;
    std::snprintf(line, sizeof line, "# budgets: %.3f average bits; latency %s (%.1f us)\n", avg_bits,
                  latency_text.c_str(), lat.budget);
    out << line;
    std::snprintf(line, sizeof line,
                  "# predicted M=1 latency of the 224 GEMVs: %.1f us (ILP's additive cost %.1f us; %d mixed weights at "
                  "factor %.3f; fp16 %.1f, uniform 2/3/4/8-bit %.1f/%.1f/%.1f/%.1f)\n",
                  estimate, a.cost[1], mixed_weights, table.mixed_factor(1), fp16_us, uniform_us[0], uniform_us[1],
                  uniform_us[2], uniform_us[3]);
    out << line;
    std::snprintf(line, sizeof line, "# average bits %.4f; share of weights at 2/3/4/8 bits: %.1f/%.1f/%.1f/%.1f %%\n",
                  a.cost[0] / total, 100 * share[0], 100 * share[1], 100 * share[2], 100 * share[3]);
    out << line;
    out << "# layer role row_begin row_end bits\n";
    for (std::size_t i = 0; i < blocks.size(); ++i)
      out << blocks[i].layer << ' ' << blocks[i].role << ' ' << blocks[i].r0 << ' ' << blocks[i].r1 << ' ' << a.bits[i]
          << '\n';
    if (!out) throw hawq::UserError(out_path + ": write failed");
    std::printf("%s: %zu blocks; average bits %.4f; predicted %.1f us (additive %.1f us, %d mixed weights; uniform "
                "4-bit %.1f us, fp16 %.1f us); 2/3/4/8-bit shares %.1f/%.1f/%.1f/%.1f %%; wrote %s\n",
                name.c_str(), blocks.size(), a.cost[0] / total, estimate, a.cost[1], mixed_weights, uniform_us[2],
                fp16_us, 100 * share[0], 100 * share[1], 100 * share[2], 100 * share[3], out_path.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "llama7b_allocation: %s\n", e.what());
    return 1;
  }
  return 0;
}
