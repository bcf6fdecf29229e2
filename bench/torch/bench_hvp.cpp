// Hessian-vector product speed and trace-estimation cost on the shipped ResNet.
//
// Model: assets/models/resnet50-w16-fmnist (ResNet-50 architecture, width 16, small stem,
// Fashion-MNIST) when present, else the same architecture with random weights. Batch: the first
// 64 calibration images of Fashion-MNIST (seed 0) when the dataset is installed, else random
// 1×28×28 images. The objective is the oracle's: mean cross entropy, Hessian over every
// quantizable weight (all convolutions + fc.weight), BatchNorm in eval mode.
//
// Measurements (one process, fixed intra-op threads):
//   hvp       oracle.hvp of one fixed Rademacher vector: google-benchmark repetitions of one HVP
//             each, after two warm-up HVPs; the median is the number compared with PyHessian.
//             1batch: the batch as one calibration batch (the oracle keeps the gradient graph,
//             each HVP is one double backward); 2batches: the same images as two half batches
//             (each HVP recomputes forward, gradient graph and double backward per batch).
//   trace     Hutchinson probes of the whole-model trace until its relative standard error is
//             <= 5% (at least 4 probes): probes and wall seconds.
//   perblock  `hutchinson` and `hutchpp` (sketch 16) with the same 64 matvecs on the layer
//             partition; from each block's per-probe variance, the matvecs each needs until EVERY
//             layer's relative standard error is <= 20/10/5%, and the same for the whole model.
// --dump FILE writes the batch, the fixed probe v and H v (safetensors) so that
// bench/pyhessian_ref.py runs on the same data and checks its H v against ours.
// --json FILE writes every number; scripts/bench_estimators.sh reads it.
//
//   bench_hvp [--threads 2] [--reps 20] [--batch 64] [--block-budget 64] [--block-sketch 16] [--skip-perblock]
//             [--skip-trace]
//             [--dump FILE] [--json FILE] [--benchmark_* flags]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hawq/checkpoint.h"
#include "hawq/dataset.h"
#include "hawq/estimator.h"
#include "hawq/fs.h"
#include "hawq/model.h"
#include "hawq/oracle.h"
#include "hawq/registry.h"
#include "hawq/version.h"

namespace {

struct Options {
  int threads = 2;
  int reps = 20;
  std::int64_t batch = 64;
  std::int64_t block_budget = 64, block_sketch = 16;
  bool perblock = true, trace = true;
  std::string dump, json;
};

struct Setup {
  std::unique_ptr<hawq::Model> model;
  std::unique_ptr<hawq::CurvatureOracle> oracle;
  std::string model_desc, data_desc;
  hawq::WeightVec v;
  std::int64_t params = 0;
};

Setup make_setup(const Options& o) {
  Setup s;
  const std::string dir = std::string(HAWQ_SOURCE_DIR) + "/assets/models/resnet50-w16-fmnist";
  std::string yaml = "{arch: resnet50, width: 16, stem: small, in_channels: 1, num_classes: 10}";
  if (hawq::file_exists(dir + "/model.safetensors")) {
    yaml = "{checkpoint: " + dir + "}";
    s.model_desc = "resnet50-w16-fmnist (shipped weights)";
  } else {
    s.model_desc = "resnet50 width16 small-stem (random weights; shipped model absent)";
  }
  s.model = hawq::Registry<hawq::Model>::instance().create("resnet", hawq::Params::from_yaml(yaml));
  std::vector<hawq::Batch> batches;
  try {
    auto ds = hawq::Registry<hawq::Dataset>::instance().create("fashion_mnist", hawq::Params());
    batches = ds->calibration(o.batch, o.batch, 0);
    s.data_desc = ds->describe() + " calibration[" + std::to_string(o.batch) + "], seed 0";
  } catch (const std::exception& e) {
    torch::manual_seed(0);
    batches = {{torch::randn({o.batch, 1, 28, 28}), torch::randint(0, 10, {o.batch}, torch::kLong)}};
    s.data_desc = std::string("random 1x28x28 images (") + e.what() + ")";
  }
  s.oracle = std::make_unique<hawq::CurvatureOracle>(*s.model, batches, hawq::OracleMode::kFull);
  auto gen = at::detail::createCPUGenerator(12345);
  s.v = hawq::CurvatureOracle::rademacher_like(s.oracle->zeros_like_weights(), gen);
  for (const auto& t : s.v) s.params += t.numel();
  return s;
}

// Collects every repetition's real time of the benchmarks it is handed.
class CollectingReporter : public benchmark::ConsoleReporter {
 public:
  CollectingReporter() : ConsoleReporter(OO_Tabular) {}
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs)  // time unit is ms -> seconds
      if (r.run_type == Run::RT_Iteration) seconds[r.run_name.function_name].push_back(r.GetAdjustedRealTime() / 1e3);
    ConsoleReporter::ReportRuns(runs);
  }
  std::map<std::string, std::vector<double>> seconds;
};

// Process CPU seconds (all threads; google benchmark's CPU time is the calling thread's only).
double process_cpu_seconds() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

double median(std::vector<double> x) {
  std::sort(x.begin(), x.end());
  const auto n = x.size();
  return n == 0 ? NAN : (n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]));
}

std::vector<hawq::SafeTensorOut> dump_tensors(Setup& s) {
  auto flat = [](const hawq::WeightVec& w) {
    std::vector<torch::Tensor> parts;
    for (const auto& t : w) parts.push_back(t.reshape(-1));
    return torch::cat(parts);
  };
  const auto& b = s.oracle->batches().at(0);
  auto hv = s.oracle->hvp(s.v);
  return {hawq::to_safetensor("input", b.input), hawq::to_safetensor("target", b.target, "I64"),
          hawq::to_safetensor("v", flat(s.v)), hawq::to_safetensor("hv", flat(hv))};
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::vector<char*> rest = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_hvp: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--threads") o.threads = std::stoi(next());
    else if (a == "--reps") o.reps = std::stoi(next());
    else if (a == "--batch") o.batch = std::stoll(next());
    else if (a == "--block-budget") o.block_budget = std::stoll(next());
    else if (a == "--block-sketch") o.block_sketch = std::stoll(next());
    else if (a == "--skip-perblock") o.perblock = false;
    else if (a == "--skip-trace") o.trace = false;
    else if (a == "--dump") o.dump = next();
    else if (a == "--json") o.json = next();
    else rest.push_back(argv[i]);
  }
  torch::set_num_threads(o.threads);
  Setup s = make_setup(o);
  std::printf("model: %s, %lld quantizable weights\ndata: %s\nthreads: %d\n", s.model_desc.c_str(),
              static_cast<long long>(s.params), s.data_desc.c_str(), o.threads);
  nlohmann::json out = {{"model", s.model_desc}, {"data", s.data_desc}, {"threads", o.threads},
                        {"batch", o.batch}, {"params", s.params}, {"torch", TORCH_VERSION}};

  // Warm-up (allocator, OpenMP pool), and the dump for the Python reference.
  if (!o.dump.empty()) hawq::write_safetensors(o.dump, dump_tensors(s));
  for (int i = 0; i < 2; ++i) s.oracle->hvp(s.v);

  // The same data as two batches of half the size: the oracle's multi-batch path, which runs
  // forward + gradient graph + double backward for every batch of every HVP.
  const auto& b0 = s.oracle->batches().at(0);
  const std::int64_t half = b0.size() / 2;
  hawq::CurvatureOracle split(*s.model,
                              {{b0.input.slice(0, 0, half), b0.target.slice(0, 0, half)},
                               {b0.input.slice(0, half, b0.size()), b0.target.slice(0, half, b0.size())}},
                              hawq::OracleMode::kFull);
  for (int i = 0; i < 2; ++i) split.hvp(s.v);

  // HVP timing through google benchmark: each repetition is exactly one HVP.
  std::map<std::string, std::vector<double>> cpu_seconds;
  auto timed = [&](const std::string& name, hawq::CurvatureOracle& oracle) {
    benchmark::RegisterBenchmark(name.c_str(), [&, name](benchmark::State& st) {
      for (auto _ : st) {
        const double c0 = process_cpu_seconds();
        benchmark::DoNotOptimize(oracle.hvp(s.v));
        cpu_seconds[name].push_back(process_cpu_seconds() - c0);
      }
    })->Iterations(1)->Repetitions(o.reps)->Unit(benchmark::kMillisecond)->UseRealTime();
  };
  timed("hvp/1batch", *s.oracle);
  timed("hvp/2batches", split);
  int bargc = static_cast<int>(rest.size());
  benchmark::Initialize(&bargc, rest.data());
  CollectingReporter rep;
  benchmark::RunSpecifiedBenchmarks(&rep);
  benchmark::Shutdown();
  for (const char* name : {"1batch", "2batches"}) {
    const auto& times = rep.seconds[std::string("hvp/") + name];
    out[std::string("hvp_") + name + "_seconds"] = times;
    out[std::string("hvp_") + name + "_median_s"] = median(times);
    out[std::string("hvp_") + name + "_cpu_seconds"] = cpu_seconds[std::string("hvp/") + name];
    std::printf("hvp (%s) median: %.4f s over %zu repetitions\n", name, median(times), times.size());
  }

  // Whole-model trace to 5% relative standard error.
  if (o.trace) {
    auto gen = at::detail::createCPUGenerator(0);
    auto like = s.oracle->zeros_like_weights();
    const auto t0 = std::chrono::steady_clock::now();
    const std::clock_t c0 = std::clock();
    double sum = 0, sumsq = 0, se = INFINITY, mean = 0;
    int k = 0;
    while (k < 4 || se > 0.05 * std::abs(mean)) {
      auto v = hawq::CurvatureOracle::rademacher_like(like, gen);
      const double x = hawq::CurvatureOracle::dot(v, s.oracle->hvp(v));
      sum += x;
      sumsq += x * x;
      ++k;
      mean = sum / k;
      se = k > 1 ? std::sqrt(std::max(0.0, (sumsq - k * mean * mean) / (k - 1)) / k) : INFINITY;
      if (k >= 1000) break;
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
    out["trace"] = {{"probes", k}, {"seconds", secs}, {"cpu_seconds", cpu}, {"estimate", mean}, {"std_error", se}};
    std::printf("trace to 5%% rel. s.e.: %d probes, %.2f s, trace %.4g +- %.3g\n", k, secs, mean, se);
  }

  // Per-block: Hutchinson and Hutch++ at the same number of matvecs on the layer partition.
  // Standard errors fall as 1/sqrt(probes), so each block's per-probe variance gives the matvecs
  // needed for a target relative standard error: Hutchinson n = s²/(ε·tr)², Hutch++ 2k + s_r²/(ε·tr)²
  // (s_r from the residual probes; Hutch++ is unbiased for any sketch, so this is its whole error).
  if (o.perblock) {
    auto part = hawq::make_partition(s.model->weight_infos(), "layer");
    const std::int64_t budget = o.block_budget, sketch = o.block_sketch;
    nlohmann::json pb = {{"partition", "layer"}, {"blocks", part.blocks.size()}, {"budget", budget}, {"sketch", sketch}};
    std::map<std::string, hawq::Sensitivity> res;
    for (const std::string name : {"hutchinson", "hutchpp"}) {
      auto params = hawq::Params::from_yaml(name == "hutchpp" ? "{sketch: " + std::to_string(sketch) + "}" : "{}");
      hawq::EstimateRequest req;
      req.max_hvps = budget;
      req.seed = 0;
      res[name] = hawq::Registry<hawq::Estimator>::instance().create(name, params)->estimate(*s.oracle, part, req);
    }
    const auto& H = res["hutchinson"];
    const auto& P = res["hutchpp"];
    const double m_h = static_cast<double>(H.blocks[0].samples), m_r = static_cast<double>(P.blocks[0].samples);
    std::vector<double> rel_h, rel_p;
    for (const double eps : {0.2, 0.1, 0.05}) {
      double need_h = 0, need_p = 0;
      rel_h.clear();
      rel_p.clear();
      for (std::size_t b = 0; b < part.blocks.size(); ++b) {
        const double tr = std::abs(P.blocks[b].estimate);  // the lower-variance estimate as the common scale
        const double var_h = H.blocks[b].std_error * H.blocks[b].std_error * m_h;  // per-probe variance
        const double var_r = P.blocks[b].std_error * P.blocks[b].std_error * m_r;
        need_h = std::max(need_h, std::ceil(var_h / std::pow(eps * tr, 2)));
        need_p = std::max(need_p, std::ceil(var_r / std::pow(eps * tr, 2)));
        rel_h.push_back(H.blocks[b].std_error / tr);
        rel_p.push_back(P.blocks[b].std_error / tr);
      }
      need_p += 2.0 * static_cast<double>(sketch);
      // The median layer: matvecs from the median per-probe relative variance.
      std::vector<double> mh, mp;
      for (std::size_t b = 0; b < part.blocks.size(); ++b) {
        const double tr = std::abs(P.blocks[b].estimate);
        mh.push_back(H.blocks[b].std_error * H.blocks[b].std_error * m_h / (tr * tr));
        mp.push_back(P.blocks[b].std_error * P.blocks[b].std_error * m_r / (tr * tr));
      }
      const double med_h = std::ceil(median(mh) / (eps * eps));
      const double med_p = 2.0 * static_cast<double>(sketch) + std::ceil(median(mp) / (eps * eps));
      pb["median_block_" + std::to_string(static_cast<int>(std::lround(eps * 100))) + "pct"] = {
          {"hutchinson_hvps", med_h}, {"hutchpp_hvps", med_p}, {"ratio", med_h / med_p}};
      std::printf("median layer <= %2.0f%% rel. s.e.: hutchinson %.0f HVPs, hutchpp %.0f HVPs (ratio %.2f)\n", 100 * eps,
                  med_h, med_p, med_h / med_p);
      pb["every_block_" + std::to_string(static_cast<int>(std::lround(eps * 100))) + "pct"] = {
          {"hutchinson_hvps", need_h}, {"hutchpp_hvps", need_p}, {"ratio", need_h / need_p}};
      std::printf("every layer <= %2.0f%% rel. s.e.: hutchinson %.0f HVPs, hutchpp %.0f HVPs (ratio %.2f)\n", 100 * eps,
                  need_h, need_p, need_h / need_p);
    }
    pb["at_budget"] = {{"hutchinson_median_rel_se", median(rel_h)}, {"hutchpp_median_rel_se", median(rel_p)},
                       {"hutchinson_worst_rel_se", *std::max_element(rel_h.begin(), rel_h.end())},
                       {"hutchpp_worst_rel_se", *std::max_element(rel_p.begin(), rel_p.end())},
                       {"hutchinson_seconds", H.seconds}, {"hutchpp_seconds", P.seconds}};
    std::printf("at %lld HVPs: median layer rel. s.e. hutchinson %.3f, hutchpp %.3f; worst %.3f vs %.3f\n",
                static_cast<long long>(budget), median(rel_h), median(rel_p),
                *std::max_element(rel_h.begin(), rel_h.end()), *std::max_element(rel_p.begin(), rel_p.end()));
    // Whole model, from the per-probe totals.
    auto var_of = [](const std::vector<double>& x) {
      double m = 0, q = 0;
      for (double v : x) m += v;
      m /= static_cast<double>(x.size());
      for (double v : x) q += (v - m) * (v - m);
      return q / static_cast<double>(x.size() - 1);
    };
    double tr = 0;
    for (const auto& b : P.blocks) tr += b.estimate;
    const double nh = std::ceil(var_of(H.raw_samples) / std::pow(0.05 * tr, 2));
    const double np = 2.0 * static_cast<double>(sketch) + std::ceil(var_of(P.raw_samples) / std::pow(0.05 * tr, 2));
    pb["whole_model_5pct"] = {{"hutchinson_hvps", nh}, {"hutchpp_hvps", np}, {"ratio", nh / np}};
    std::printf("whole model <= 5%% rel. s.e.: hutchinson %.0f HVPs, hutchpp %.0f HVPs (ratio %.2f)\n", nh, np, nh / np);
    out["perblock"] = pb;
  }
  if (!o.json.empty()) {
    std::ofstream f(o.json);
    f << out.dump(2) << "\n";
  }
  return 0;
}
