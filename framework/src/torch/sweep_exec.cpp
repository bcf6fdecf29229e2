// One rank's execution of sweep points: estimate -> allocate -> quantise -> evaluate.
#include "hawq/sweep_exec.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>

#include "hawq/config.h"
#include "hawq/errors.h"
#include "hawq/fs.h"
#include "hawq/oracle.h"
#include "hawq/registry.h"

namespace hawq {

namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Paths in plugin params are written relative to the project (assets/..., data/...): make them
// work from any folder the binary is run in.
YAML::Node with_resolved_paths(const YAML::Node& params) {
  YAML::Node out = YAML::Clone(params);
  if (!out.IsMap()) return out;
  for (auto kv : out) {
    if (!kv.second.IsScalar()) continue;
    const std::string v = kv.second.Scalar();
    if (v.find('/') != std::string::npos && !std::filesystem::path(v).is_absolute() && !file_exists(v)) {
      std::string r = resolve_path(v);
      if (r != v) out[kv.first.Scalar()] = r;
    }
  }
  return out;
}

std::string spec_key(const PluginSpec& s) { return s.to_json().dump(); }

Params spec_params(const Experiment& e, const PluginSpec& s) {
  return Params(with_resolved_paths(s.params), s.params_path, e.config.sources);
}

std::vector<int> apply_pins(const MethodSpec& m, const Partition& part, std::vector<int> bits) {
  if (m.pin.empty()) return bits;
  for (std::size_t i = 0; i < part.blocks.size(); ++i) {
    const auto w = part.blocks[i].weight;
    const auto& name = part.weights[w].name;
    for (const auto& [key, width] : m.pin) {
      if ((key == "first" && w == 0) || (key == "last" && w + 1 == part.weights.size()) || key == name ||
          key + ".weight" == name)
        bits[i] = width;
    }
  }
  return bits;
}

std::vector<BlockStats> block_stats(Model& model, const Partition& part) {
  torch::NoGradGuard ng;
  auto ws = model.quantizable();
  std::vector<BlockStats> out(part.blocks.size());
  for (std::size_t i = 0; i < part.blocks.size(); ++i) {
    const auto& b = part.blocks[i];
    auto w = ws[b.weight].weight;
    auto s = w.reshape({w.size(0), -1}).slice(0, b.row0, b.row1).slice(1, b.col0, b.col1);
    out[i].numel = b.numel();
    out[i].weight_norm2 = s.to(torch::kDouble).pow(2).sum().item<double>();
  }
  return out;
}

// ‖Q_b(W_b) − W_b‖² for every block and candidate width (RTN grid, symmetric per row).
std::vector<std::vector<double>> measured_errors(Model& model, const Partition& part, const std::vector<int>& cands) {
  torch::NoGradGuard ng;
  auto ws = model.quantizable();
  std::vector<std::vector<double>> out(part.blocks.size(), std::vector<double>(cands.size()));
  for (std::size_t i = 0; i < part.blocks.size(); ++i) {
    const auto& b = part.blocks[i];
    auto w = ws[b.weight].weight;
    auto s = w.reshape({w.size(0), -1}).slice(0, b.row0, b.row1).slice(1, b.col0, b.col1).to(torch::kFloat);
    for (std::size_t j = 0; j < cands.size(); ++j)
      out[i][j] = (rtn_quantize_rows(s, cands[j], true, 0) - s).to(torch::kDouble).pow(2).sum().item<double>();
  }
  return out;
}

}  // namespace

AllocationProblem build_problem(const MethodSpec& m, const Partition& part, const Sensitivity& sens,
                                const std::vector<BlockStats>& stats, double budget_bits,
                                const std::vector<std::vector<double>>& measured, const LatencyTable* latency) {
  const std::size_t n = part.blocks.size();
  HAWQ_CHECK(sens.blocks.size() == n && stats.size() == n, "sensitivity/partition size mismatch");
  AllocationProblem p;
  p.candidate_bits = m.candidate_bits;
  Resource bits;
  bits.name = "bits";
  std::int64_t total = 0;
  const bool per_element = sens.quantity != "top_eigenvalue";  // traces are sums over the block's elements
  for (std::size_t i = 0; i < n; ++i) {
    const auto& b = part.blocks[i];
    p.block_names.push_back(b.name);
    p.numel.push_back(b.numel());
    total += b.numel();
    double est = sens.blocks[i].estimate;
    if (!std::isfinite(est))
      throw UserError("sensitivity of block '" + b.name + "' is not finite (" + std::to_string(est) +
                      "): NaN weights or a diverging estimator");
    // A curvature estimate below zero is noise around a (near-)zero trace: treat it as zero.
    est = std::max(est, 0.0);
    const double nb = static_cast<double>(b.numel());
    const double curv = per_element ? est / nb : est;  // curvature per parameter
    double omega = 0;
    if (m.signal == "omega") omega = curv * stats[i].weight_norm2;
    else if (m.signal == "trace") omega = est;
    else if (m.signal == "eigenvalue") omega = est * stats[i].weight_norm2;
    else omega = curv;  // trace_per_param
    std::vector<double> d, c;
    for (std::size_t j = 0; j < m.candidate_bits.size(); ++j) {
      const int bw = m.candidate_bits[j];
      d.push_back(m.distortion == "measured" ? curv * measured[i][j] : omega * quant_noise(bw));
      c.push_back(nb * bw);
    }
    p.distortion.push_back(d);
    bits.cost.push_back(c);
  }
  // Tolerance for summing many products in floating point; the bound is on average bits.
  bits.budget = budget_bits * static_cast<double>(total) * (1 + 1e-12);
  p.resources.push_back(bits);
  if (latency) {
    // Each block carries its share of its weight's measured GEMM latency at every width; the
    // latencies are looked up once per weight, not once per block.
    Resource lat;
    lat.name = "latency_us";
    const std::int64_t mb = m.latency_batch;
    std::vector<std::vector<double>> weight_us(part.weights.size());
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t wi = part.blocks[i].weight;
      const auto& w = part.weights[wi];
      if (weight_us[wi].empty())
        for (int bw : m.candidate_bits) weight_us[wi].push_back(latency->layer_us(w.rows(), w.cols(), mb, bw));
      const double share = static_cast<double>(part.blocks[i].numel()) / static_cast<double>(w.numel());
      std::vector<double> c;
      for (double us : weight_us[wi]) c.push_back(share * us);
      lat.cost.push_back(c);
      lat.mix_group.push_back(static_cast<int>(wi));
    }
    // A weight whose blocks end up at two or more widths runs the kernels' mixed path: the table's
    // measured factor over the additive cost, which the `hardware` ILP models exactly.
    lat.mix_factor = latency->mixed_penalty(mb);  // what weight_us() charges a mixed weight
    lat.budget = std::numeric_limits<double>::infinity();
    if (m.latency_budget.set()) {
      const int ref = m.latency_budget.uniform_bits > 0 ? m.latency_budget.uniform_bits : 16;
      const double f = m.latency_budget.uniform_bits > 0 ? 1.0 : m.latency_budget.fraction_of_fp16;
      double ref_us = 0;
      for (const auto& w : part.weights) ref_us += latency->layer_us(w.rows(), w.cols(), mb, ref);
      lat.budget = f * ref_us * (1 + 1e-12);
    }
    p.resources.push_back(lat);
  }
  auto pinned = apply_pins(m, part, std::vector<int>(n, 0));
  if (std::any_of(pinned.begin(), pinned.end(), [](int x) { return x != 0; })) p.pinned_bits = pinned;
  return p;
}

namespace {

// One GPU per rank on a node: the node-local rank (Open MPI, MPICH/Slurm spellings) modulo the
// visible devices; a single process uses device 0.
torch::Device pick_device(const std::string& kind) {
  if (kind != "cuda") return torch::kCPU;
  if (!torch::cuda::is_available())
    throw UserError("device: cuda requested, but this LibTorch build sees no CUDA device (CPU-only LibTorch, or no GPU)");
  long local = 0;
  for (const char* v : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"})
    if (const char* s = std::getenv(v)) {
      local = std::strtol(s, nullptr, 10);
      break;
    }
  const long count = static_cast<long>(torch::cuda::device_count());
  const long index = local % count;
  std::fprintf(stderr, "hawq-bench: node-local rank %ld uses cuda:%ld of %ld visible GPU(s)\n", local, index, count);
  return torch::Device(torch::kCUDA, static_cast<torch::DeviceIndex>(index));
}

}  // namespace

SweepExecutor::SweepExecutor(const Experiment& e) : e_(e), device_(pick_device(e.device)) {
  model_ = Registry<Model>::instance().create(e.model.name, spec_params(e, e.model), e.model.where);
  model_->module().to(device_);
  model_->module().eval();
  model_->snapshot();
  weights_ = model_->weight_infos();
  data_ = Registry<Dataset>::instance().create(e.data.name, spec_params(e, e.data), e.data.where);
  for (const auto& p : e.points) {
    if (p.estimator.name != "none" && !estimators_.count(spec_key(p.estimator)))
      estimators_[spec_key(p.estimator)] = Registry<Estimator>::instance().create(p.estimator.name, spec_params(e, p.estimator), p.estimator.where);
    if (p.allocator.name != "none" && !allocators_.count(spec_key(p.allocator)))
      allocators_[spec_key(p.allocator)] = Registry<Allocator>::instance().create(p.allocator.name, spec_params(e, p.allocator), p.allocator.where);
    if (!quantizers_.count(spec_key(p.quantizer)))
      quantizers_[spec_key(p.quantizer)] = Registry<Quantizer>::instance().create(p.quantizer.name, spec_params(e, p.quantizer), p.quantizer.where);
    // Budgets outside what the candidate widths (and pins) can reach are input errors: say so now.
    const auto& part = partition(p.method.partition);
    std::int64_t total = 0;
    double lo = 0, hi = 0;
    auto pins = apply_pins(p.method, part, std::vector<int>(part.blocks.size(), 0));
    for (std::size_t i = 0; i < part.blocks.size(); ++i) {
      const double nb = static_cast<double>(part.blocks[i].numel());
      total += part.blocks[i].numel();
      lo += nb * (pins[i] ? pins[i] : (p.method.uniform ? p.budget : p.method.candidate_bits.front()));
      hi += nb * (pins[i] ? pins[i] : (p.method.uniform ? p.budget : p.method.candidate_bits.back()));
    }
    lo /= static_cast<double>(total);
    hi /= static_cast<double>(total);
    if (!p.method.uniform && (p.budget < lo - 1e-9))
      throw InfeasibleError("method " + p.method.name + ": budget " + std::to_string(p.budget) +
                            " bits is infeasible; the candidate widths and pins allow average bits in [" +
                            std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  eval_ = to_device(data_->evaluation(e.eval_samples, e.eval_batch), device_);
  for (const auto& b : eval_) eval_count_ += b.size();
}

const Partition& SweepExecutor::partition(const std::string& policy) {
  auto it = partitions_.find(policy);
  if (it == partitions_.end()) it = partitions_.emplace(policy, make_partition(weights_, policy)).first;
  return it->second;
}

const std::vector<Batch>& SweepExecutor::calibration(std::uint64_t seed) {
  auto it = calib_.find(seed);
  if (it == calib_.end())
    it = calib_.emplace(seed, to_device(data_->calibration(e_.calib_samples, e_.calib_batch, seed), device_)).first;
  return it->second;
}

std::string SweepExecutor::baseline_key() const {
  nlohmann::json k = {{"model", e_.model.to_json()}, {"data", e_.data.to_json()}, {"evaluation", e_.base["evaluation"]}};
  return fingerprint(k.dump());
}

nlohmann::json SweepExecutor::baseline() {
  auto t0 = Clock::now();
  model_->restore();
  double m = model_->evaluate(eval_);
  return {{"model", e_.model.label()},  {"data", e_.data.label()},    {"metric_name", model_->metric_name()},
          {"metric", m},                {"eval_samples", eval_count_}, {"seconds", since(t0)},
          {"dataset", data_->describe()}, {"checkpoint", model_->checkpoint_path}};
}

nlohmann::json sensitivity_to_json(const Sensitivity& s, const Partition& p, const std::vector<BlockStats>& stats) {
  nlohmann::json j = {{"estimator", s.estimator}, {"quantity", s.quantity}, {"hvps", s.hvps},     {"seconds", s.seconds},
                      {"peak_bytes", s.peak_bytes}, {"note", s.note},     {"partition", p.policy}, {"raw_samples", s.raw_samples}};
  for (std::size_t i = 0; i < s.blocks.size(); ++i) {
    j["blocks"].push_back(p.blocks[i].name);
    j["estimate"].push_back(s.blocks[i].estimate);
    j["std_error"].push_back(s.blocks[i].std_error);
    j["samples"].push_back(s.blocks[i].samples);
    j["numel"].push_back(stats[i].numel);
    j["weight_norm2"].push_back(stats[i].weight_norm2);
  }
  return j;
}

Sensitivity sensitivity_from_json(const nlohmann::json& j) {
  Sensitivity s;
  s.estimator = j.value("estimator", "");
  s.quantity = j.value("quantity", "");
  s.hvps = j.value("hvps", 0LL);
  s.seconds = j.value("seconds", 0.0);
  s.peak_bytes = j.value("peak_bytes", 0LL);
  s.note = j.value("note", "");
  for (std::size_t i = 0; i < j["estimate"].size(); ++i)
    s.blocks.push_back({j["estimate"][i].get<double>(), j["std_error"][i].get<double>(), j["samples"][i].get<std::int64_t>()});
  if (j.contains("raw_samples"))
    for (const auto& r : j["raw_samples"]) s.raw_samples.push_back(r.get<double>());
  return s;
}

Sensitivity SweepExecutor::estimate(const Point& p, double& seconds) {
  auto t0 = Clock::now();
  model_->restore();
  const auto& part = partition(p.method.partition);
  CurvatureOracle oracle(*model_, calibration(p.seed), parse_oracle_mode(e_.oracle));
  EstimateRequest req;
  req.max_hvps = e_.max_hvps;
  req.rel_tol = e_.rel_tol;
  req.seed = p.seed;
  torch::manual_seed(p.seed);
  Sensitivity s = estimators_.at(spec_key(p.estimator))->estimate(oracle, part, req);
  model_->restore();  // estimators must not change weights; restoring makes sure of it
  seconds = since(t0);
  return s;
}

nlohmann::json SweepExecutor::run_point(const Point& p, const Sensitivity* sens) {
  auto t0 = Clock::now();
  nlohmann::json r = {{"id", p.id},
                      {"index", p.index},
                      {"model", e_.model.label()},
                      {"data", e_.data.label()},
                      {"method", p.method.name},
                      {"partition", p.method.partition},
                      {"estimator", p.estimator.label()},
                      {"allocator", p.allocator.label()},
                      {"quantizer", p.quantizer.label()},
                      {"budget_bits", p.budget},
                      {"seed", p.seed},
                      {"metric_name", model_->metric_name()},
                      {"calib_samples", e_.calib_samples},
                      {"eval_samples", eval_count_},
                      {"estimate_key", p.estimate_key},
                      {"baseline_key", baseline_key()},
                      {"params", p.params}};
  model_->restore();
  const auto& part = partition(p.method.partition);
  std::vector<int> bits(part.blocks.size(), static_cast<int>(std::lround(p.budget)));
  double t_alloc = 0;
  nlohmann::json alloc_json;
  std::vector<BlockStats> stats = block_stats(*model_, part);
  if (p.method.uniform) {
    bits = apply_pins(p.method, part, bits);
  } else {
    auto ta = Clock::now();
    std::vector<std::vector<double>> measured;
    if (p.method.distortion == "measured") measured = measured_errors(*model_, part, p.method.candidate_bits);
    const LatencyTable* lat = nullptr;
    if (!p.method.latency_table.empty()) {
      auto it = latency_tables_.find(p.method.latency_table);
      if (it == latency_tables_.end())
        it = latency_tables_.emplace(p.method.latency_table, LatencyTable::load(p.method.latency_table)).first;
      lat = &it->second;
    }
    AllocationProblem prob = build_problem(p.method, part, *sens, stats, p.budget, measured, lat);
    Allocation a = allocators_.at(spec_key(p.allocator))->solve(prob);
    bits = a.bits;
    t_alloc = since(ta);
    alloc_json = {{"objective", a.objective}, {"gap_bound", a.gap_bound}, {"note", a.note}, {"solver_seconds", a.seconds},
                  {"cost_bits", a.cost.empty() ? 0.0 : a.cost[0]}};
    if (lat) {
      // Estimated weight-GEMM latency of the allocation (sum over the quantised weights at batch m):
      // the latency resource evaluated with its mixed-path factor for weights that ended up with
      // more than one width (LatencyTable::weight_us per weight; what a latency budget bounds), and
      // without it (the plain additive sum).
      AllocationProblem additive = prob;
      additive.resources[1].mix_factor = 1.0;
      alloc_json["cost_latency_us"] = evaluate_allocation(prob, a.bits).cost.at(1);
      alloc_json["cost_latency_us_additive"] = evaluate_allocation(additive, a.bits).cost.at(1);
      alloc_json["latency_batch"] = p.method.latency_batch;
      alloc_json["latency_table"] = p.method.latency_table;
      if (std::isfinite(prob.resources[1].budget)) alloc_json["latency_budget_us"] = prob.resources[1].budget;
    }
  }
  std::int64_t total = 0;
  double bit_sum = 0;
  for (std::size_t i = 0; i < part.blocks.size(); ++i) {
    total += part.blocks[i].numel();
    bit_sum += static_cast<double>(part.blocks[i].numel()) * bits[i];
    alloc_json["blocks"].push_back(part.blocks[i].name);
    alloc_json["roles"].push_back(part.weights[part.blocks[i].weight].role);
    alloc_json["numel"].push_back(part.blocks[i].numel());
    alloc_json["bits"].push_back(bits[i]);
  }
  auto tq = Clock::now();
  QuantizeContext ctx;
  ctx.calibration = calibration(p.seed);
  ctx.seed = p.seed;
  if (sens)
    for (const auto& b : sens->blocks) ctx.block_sensitivity.push_back(b.estimate);
  torch::manual_seed(p.seed);
  quantizers_.at(spec_key(p.quantizer))->quantize(*model_, part, bits, ctx);
  const double t_quant = since(tq);
  auto te = Clock::now();
  const double metric = model_->evaluate(eval_);
  const double t_eval = since(te);
  if (!std::isfinite(metric)) throw UserError("evaluation produced a non-finite " + model_->metric_name());
  // Scale storage: one fp16 scale per row of every block (per-channel grids), or per group.
  std::int64_t group = p.quantizer.params["group_size"] ? p.quantizer.params["group_size"].as<std::int64_t>() : 0;
  double scale_bits = 0;
  for (const auto& b : part.blocks) {
    const std::int64_t cols = b.col1 - b.col0;
    const std::int64_t groups = group > 0 ? (cols + group - 1) / group : 1;
    scale_bits += 16.0 * static_cast<double>((b.row1 - b.row0) * groups);
  }
  r["avg_bits"] = bit_sum / static_cast<double>(total);
  r["effective_bits"] = (bit_sum + scale_bits) / static_cast<double>(total);
  r["metric"] = metric;
  r["status"] = "ok";
  r["message"] = "";
  r["allocation"] = alloc_json;
  r["timings"] = {{"allocate", t_alloc}, {"quantize", t_quant}, {"evaluate", t_eval}, {"total", since(t0)}};
  r["peak_bytes"] = peak_rss_bytes();
  return r;
}

void SweepExecutor::run_group(const std::vector<std::size_t>& points, const nlohmann::json* cached,
                              const std::atomic<bool>& stop, const std::function<void(const nlohmann::json&)>& emit) {
  const Sensitivity* sens = nullptr;
  std::string est_error;
  double est_seconds = 0;
  const Point& first = e_.points[points.front()];
  if (!first.estimate_key.empty()) {
    auto it = sens_cache_.find(first.estimate_key);
    if (it == sens_cache_.end() && cached) it = sens_cache_.emplace(first.estimate_key, sensitivity_from_json(*cached)).first;
    if (it == sens_cache_.end() && !stop) {
      try {
        Sensitivity s = estimate(first, est_seconds);
        const auto& part = partition(first.method.partition);
        nlohmann::json rec = sensitivity_to_json(s, part, block_stats(*model_, part));
        rec["seed"] = first.seed;
        emit({{"kind", "estimate"}, {"key", first.estimate_key}, {"record", rec}});
        it = sens_cache_.emplace(first.estimate_key, std::move(s)).first;
      } catch (const std::exception& ex) {
        est_error = std::string("estimation failed: ") + ex.what();
      }
    }
    if (it != sens_cache_.end()) sens = &it->second;
  }
  for (std::size_t idx : points) {
    if (stop) return;
    const Point& p = e_.points[idx];
    nlohmann::json r;
    auto t0 = Clock::now();
    try {
      if (!p.estimate_key.empty() && !sens) throw UserError(est_error.empty() ? "no estimate" : est_error);
      r = run_point(p, sens);
      if (idx == points.front() && est_seconds > 0) r["timings"]["estimate"] = est_seconds;
    } catch (const std::exception& ex) {
      r = {{"id", p.id},           {"index", p.index},          {"model", e_.model.label()},     {"data", e_.data.label()},
           {"method", p.method.name}, {"partition", p.method.partition}, {"estimator", p.estimator.label()},
           {"allocator", p.allocator.label()}, {"quantizer", p.quantizer.label()}, {"budget_bits", p.budget},
           {"seed", p.seed},       {"metric_name", model_->metric_name()}, {"status", "failed"},
           {"message", ex.what()}, {"estimate_key", p.estimate_key}, {"baseline_key", baseline_key()},
           {"timings", {{"total", since(t0)}}}, {"params", p.params}};
      model_->restore();
    }
    emit({{"kind", "point"}, {"key", p.id}, {"record", r}});
  }
}

}  // namespace hawq
