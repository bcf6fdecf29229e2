// Solve time of every registered allocator versus the number of blocks.
//
// Blocks are 128x128 weight tiles (numel 16384) with the analytic distortion Ω·σ²(b), σ²(b) =
// 1/(2^{2b}-1) (hawq::quant_noise), Ω log-normal; the primary resource is bits (numel·b) with a
// budget of 4 bits per weight on average. Candidate sets {2,3,4,8} and {2,...,8}; sizes 10 to 10^6
// in powers of ten. A "measured" variant perturbs every cost by up to ±1% (real-valued costs, as
// measured latencies are), which takes `dp` off its exact-bucket path. `llama7b` is the 395,264
// tiles of LLaMA-7B's decoder linear layers (32 layers x q,k,v,o 32x32 tiles + gate,up,down
// 32x86 tiles), with a scale per layer and role. Counters: gap_bound (NaN where the allocator does
// not bound it), objective, blocks.
//
//   bench_allocators [--benchmark_filter=...]   (also: --benchmark_format=json etc.)
#include <benchmark/benchmark.h>

#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "hawq/allocation.h"
#include "hawq/errors.h"
#include "hawq/params.h"
#include "hawq/registry.h"

namespace {

using hawq::AllocationProblem;

constexpr std::int64_t kTile = 128 * 128;

struct Spec {
  std::string family;      // "tiles" or "llama7b"
  std::vector<int> bits;   // candidate widths
  bool measured = false;   // real-valued (perturbed) costs
  std::size_t n = 0;       // blocks (tiles family)
  std::string key() const {
    std::string k = family + (measured ? "m" : "") + "/";
    for (int b : bits) k += std::to_string(b);
    return k + "/" + std::to_string(n);
  }
};

AllocationProblem make_problem(const Spec& s) {
  std::mt19937_64 rng(12345 + s.n);
  std::lognormal_distribution<double> omega(0.0, 1.0);
  std::uniform_real_distribution<double> jitter(0.99, 1.01);
  // Per (layer, role) scales for llama7b: sensitivity varies far more across layers than within.
  std::vector<double> scale;
  std::size_t n = s.n;
  if (s.family == "llama7b") {
    const int tiles_per_role[7] = {32 * 32, 32 * 32, 32 * 32, 32 * 32, 32 * 86, 32 * 86, 32 * 86};
    std::lognormal_distribution<double> role_scale(0.0, 1.5);
    for (int layer = 0; layer < 32; ++layer)
      for (int role = 0; role < 7; ++role) {
        const double sc = role_scale(rng);
        for (int t = 0; t < tiles_per_role[role]; ++t) scale.push_back(sc);
      }
    n = scale.size();
  }
  AllocationProblem p;
  p.candidate_bits = s.bits;
  p.numel.assign(n, kTile);
  p.distortion.resize(n);
  p.resources.resize(1);
  p.resources[0].name = "bits";
  p.resources[0].cost.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double om = omega(rng) * (scale.empty() ? 1.0 : scale[i]) * static_cast<double>(kTile);
    auto& d = p.distortion[i];
    auto& c = p.resources[0].cost[i];
    for (int b : s.bits) {
      d.push_back(om * hawq::quant_noise(b));
      c.push_back(static_cast<double>(kTile) * b * (s.measured ? jitter(rng) : 1.0));
    }
  }
  p.resources[0].budget = 4.0 * static_cast<double>(kTile) * static_cast<double>(n);
  return p;
}

// Keeps the most recent problem only (the largest ones take a few hundred MB).
const AllocationProblem& problem_for(const Spec& s) {
  static std::string key;
  static std::unique_ptr<AllocationProblem> cached;
  if (!cached || key != s.key()) {
    cached.reset();
    cached = std::make_unique<AllocationProblem>(make_problem(s));
    key = s.key();
  }
  return *cached;
}

// Sizes a solver is not meant for (memory or time), with the reason.
std::string out_of_range(const std::string& name, std::size_t n) {
  if (name == "dp" && n > 10000)
    return "dp: choice table of items x buckets bytes (10^5 items x 20000 buckets = 2 GB); use lagrangian";
  if (name == "hardware" && n > 10000) return "hardware: ILP with 10^5+ one-hot rows is not meant for this size";
  return "";
}

void solve_bench(benchmark::State& state, std::string name, Spec spec) {
  const std::string why = out_of_range(name, spec.n);
  if (!why.empty()) {
    state.SkipWithError(why.c_str());
    for (auto _ : state) {
    }
    return;
  }
  const AllocationProblem& p = problem_for(spec);
  auto alloc = hawq::Registry<hawq::Allocator>::instance().create(name, hawq::Params::from_yaml("{}"));
  hawq::Allocation a;
  for (auto _ : state) {
    try {
      a = alloc->solve(p);
    } catch (const hawq::UserError& e) {
      state.SkipWithError(e.what());
      break;
    }
    benchmark::ClobberMemory();
  }
  state.counters["gap_bound"] = a.gap_bound;
  state.counters["objective"] = a.objective;
  state.counters["blocks"] = static_cast<double>(p.num_blocks());
  state.SetLabel(a.note.substr(0, 120));
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  const auto names = hawq::Registry<hawq::Allocator>::instance().names();
  const std::vector<std::vector<int>> sets = {{2, 3, 4, 8}, {2, 3, 4, 5, 6, 7, 8}};
  auto reg = [&](const std::string& name, const Spec& s) {
    std::string label = "solve/" + name + "/" + s.key();
    benchmark::RegisterBenchmark(label.c_str(), solve_bench, name, s)->Unit(benchmark::kMillisecond)->UseRealTime();
  };
  for (const auto& bits : sets)
    for (std::size_t n = 10; n <= 1000000; n *= 10)
      for (const auto& name : names) reg(name, {"tiles", bits, false, n});
  for (std::size_t n = 10; n <= 10000; n *= 10)
    for (const auto& name : names) reg(name, {"tiles", {2, 3, 4, 8}, true, n});
  for (const char* name : {"lagrangian", "greedy"}) reg(name, {"llama7b", {2, 3, 4, 8}, false, 395264});
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
