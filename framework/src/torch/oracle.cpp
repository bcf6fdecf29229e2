// CurvatureOracle: gradients, Hessian-vector products, per-example gradients, layer statistics.
#include "hawq/oracle.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "hawq/errors.h"
#include "hawq/estimator.h"

namespace hawq {

namespace F = torch::nn::functional;

OracleMode parse_oracle_mode(const std::string& s) {
  if (s == "full") return OracleMode::kFull;
  if (s == "layerwise") return OracleMode::kLayerwise;
  throw ConfigError("unknown oracle mode '" + s + "' (expected full or layerwise)");
}

CurvatureOracle::CurvatureOracle(Model& model, std::vector<Batch> batches, OracleMode mode)
    : model_(model), batches_(std::move(batches)), mode_(mode), weights_(model.quantizable()) {
  HAWQ_CHECK(!batches_.empty(), "oracle without calibration batches");
  // Curvature is measured at the trained point with frozen normalisation statistics.
  model_.module().eval();
  for (const auto& b : batches_) total_rows_ += model_.labels(b).ne(-100).sum().item<std::int64_t>();
  HAWQ_CHECK(total_rows_ > 0, "calibration batches have no counted rows");
}

static torch::Tensor sum_loss(Model& m, const Batch& b) {
  return F::cross_entropy(m.logits(b), m.labels(b), F::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kSum));
}

static std::vector<torch::Tensor> weight_tensors(const std::vector<QuantWeight>& ws) {
  std::vector<torch::Tensor> out;
  for (const auto& w : ws) out.push_back(w.weight);
  return out;
}

double CurvatureOracle::loss() {
  torch::NoGradGuard ng;
  double s = 0;
  for (const auto& b : batches_) s += sum_loss(model_, b).item<double>();
  return s / static_cast<double>(total_rows_);
}

WeightVec CurvatureOracle::gradient() {
  auto ws = weight_tensors(weights_);
  WeightVec g = zeros_like_weights();
  for (const auto& b : batches_) {
    auto l = sum_loss(model_, b) / static_cast<double>(total_rows_);
    auto gb = torch::autograd::grad({l}, ws);
    for (std::size_t i = 0; i < g.size(); ++i) g[i] += gb[i];
  }
  return g;
}

WeightVec CurvatureOracle::hvp(const WeightVec& v) {
  HAWQ_CHECK(v.size() == weights_.size(), "hvp: vector has the wrong number of tensors");
  ++hvps_;
  return mode_ == OracleMode::kFull ? hvp_full(v) : hvp_layerwise(v);
}

// Versions of every parameter and buffer: any in-place change (a quantizer writing weights,
// Model::restore) bumps one, which invalidates the cached gradient graph.
std::vector<std::int64_t> CurvatureOracle::state_versions() {
  std::vector<std::int64_t> out;
  for (const auto& p : model_.module().parameters()) out.push_back(static_cast<std::int64_t>(p._version()));
  for (const auto& b : model_.module().buffers()) out.push_back(static_cast<std::int64_t>(b._version()));
  return out;
}

WeightVec CurvatureOracle::hvp_full(const WeightVec& v) {
  auto ws = weight_tensors(weights_);
  // The cotangent goes straight into the double backward (grad_outputs = v), as PyHessian does;
  // weights whose v is undefined are left out of it.
  std::vector<std::size_t> idx;
  std::vector<torch::Tensor> vs;
  for (std::size_t i = 0; i < v.size(); ++i)
    if (v[i].defined()) {
      idx.push_back(i);
      vs.push_back(v[i]);
    }
  WeightVec out = zeros_like_weights();
  if (idx.empty()) return out;
  auto accumulate = [&](const std::vector<torch::Tensor>& g, bool retain) {
    std::vector<torch::Tensor> gs, cot;  // gradients that are constant in θ contribute nothing
    for (std::size_t k = 0; k < idx.size(); ++k)
      if (g[idx[k]].requires_grad()) {
        gs.push_back(g[idx[k]]);
        cot.push_back(vs[k]);
      }
    if (gs.empty()) return;
    auto hv = torch::autograd::grad(gs, ws, cot, /*retain_graph=*/retain, /*create_graph=*/false, /*allow_unused=*/true);
    for (std::size_t i = 0; i < hv.size(); ++i)
      if (hv[i].defined()) out[i] += hv[i];
  };
  // One calibration batch: keep its first-order gradient graph between HVPs, so each HVP is one
  // double backward (PyHessian's single-batch path) instead of forward + backward + double
  // backward. Several batches are recomputed per HVP, holding one batch's graph at a time.
  if (batches_.size() == 1) {
    auto versions = state_versions();
    if (cached_grads_.empty() || versions != cached_versions_) {
      cached_grads_.clear();
      auto l = sum_loss(model_, batches_[0]) / static_cast<double>(total_rows_);
      cached_grads_ = torch::autograd::grad({l}, ws, {}, /*retain_graph=*/true, /*create_graph=*/true);
      cached_versions_ = std::move(versions);
    }
    accumulate(cached_grads_, /*retain=*/true);
    return out;
  }
  for (const auto& b : batches_) {
    auto l = sum_loss(model_, b) / static_cast<double>(total_rows_);
    accumulate(torch::autograd::grad({l}, ws, {}, /*retain_graph=*/true, /*create_graph=*/true), /*retain=*/false);
  }
  return out;
}

torch::Tensor expand_layer_input(const QuantWeight& w, const torch::Tensor& input) {
  if (!w.geometry.conv) return input.reshape({-1, input.size(-1)});
  HAWQ_CHECK(w.geometry.groups == 1, "grouped convolutions are not supported by the layer statistics");
  auto cols = F::unfold(input, F::UnfoldFuncOptions(w.geometry.kernel)
                                   .dilation(w.geometry.dilation)
                                   .padding(w.geometry.padding)
                                   .stride(w.geometry.stride));  // [B, C*kh*kw, L]
  return cols.transpose(1, 2).reshape({-1, cols.size(1)});
}

void CurvatureOracle::ensure_layer_gram() {
  if (!gram_.empty()) return;
  gram_.assign(weights_.size(), torch::Tensor());
  std::vector<std::int64_t> rows(weights_.size(), 0);
  layer_statistics("none", 0, [&](std::size_t, const std::vector<torch::Tensor>& in, const std::vector<torch::Tensor>&) {
    for (std::size_t i = 0; i < weights_.size(); ++i) {
      auto x = expand_layer_input(weights_[i], in[i]).to(torch::kDouble);
      auto g = x.t().mm(x);
      gram_[i] = gram_[i].defined() ? gram_[i] + g : g;
      rows[i] += x.size(0);
    }
  });
  for (std::size_t i = 0; i < weights_.size(); ++i) gram_[i] = (2.0 / static_cast<double>(rows[i])) * gram_[i];
}

WeightVec CurvatureOracle::hvp_layerwise(const WeightVec& v) {
  ensure_layer_gram();
  WeightVec out = zeros_like_weights();
  for (std::size_t i = 0; i < weights_.size(); ++i) {
    if (!v[i].defined()) continue;
    auto v2 = v[i].reshape({v[i].size(0), -1}).to(torch::kDouble);
    out[i] = v2.mm(gram_[i]).to(v[i].dtype()).reshape(v[i].sizes());
  }
  return out;
}

void CurvatureOracle::per_example_gradients(const std::function<void(std::int64_t, const WeightVec&)>& fn) {
  auto ws = weight_tensors(weights_);
  std::int64_t e = 0;
  for (const auto& b : batches_) {
    for (std::int64_t i = 0; i < b.size(); ++i, ++e) {
      Batch one{b.input.slice(0, i, i + 1), b.target.slice(0, i, i + 1)};
      auto l = model_.loss(one);
      fn(e, torch::autograd::grad({l}, ws));
    }
  }
}

namespace {
// Records each quantizable layer's input and, through a tensor hook, its output gradient.
class RecordingCapture : public LayerCapture {
 public:
  RecordingCapture(std::size_t n, bool grads) : inputs(n), out_grads(n), grads_(grads) {}
  torch::Tensor on_layer(std::size_t index, const torch::Tensor& input, const torch::Tensor& output) override {
    inputs[index] = input.detach();
    if (grads_ && output.requires_grad()) {
      auto* slot = &out_grads[index];
      output.register_hook([slot](torch::Tensor g) { *slot = g.detach(); });
    }
    return output;
  }
  std::vector<torch::Tensor> inputs, out_grads;

 private:
  bool grads_;
};
}  // namespace

void CurvatureOracle::layer_statistics(const std::string& mode, std::uint64_t seed, const LayerStatsFn& fn) {
  if (mode != "empirical" && mode != "mc" && mode != "none")
    throw ConfigError("unknown output-gradient mode '" + mode + "' (expected empirical, mc or none)");
  auto gen = at::detail::createCPUGenerator(seed);
  for (std::size_t bi = 0; bi < batches_.size(); ++bi) {
    const auto& b = batches_[bi];
    RecordingCapture cap(weights_.size(), mode != "none");
    model_.set_capture(&cap);
    try {
      if (mode == "none") {
        torch::NoGradGuard ng;
        model_.logits(b);
      } else {
        auto lg = model_.logits(b);
        auto lb = model_.labels(b);
        if (mode == "mc") {
          auto probs = torch::softmax(lg.detach().to(torch::kFloat).cpu(), 1);
          auto sampled = torch::multinomial(probs, 1, true, gen).squeeze(1).to(lb.device());
          lb = torch::where(lb.ne(-100), sampled, lb);
        }
        F::cross_entropy(lg, lb, F::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kSum)).backward();
        for (auto& p : model_.module().parameters()) p.mutable_grad() = torch::Tensor();
      }
    } catch (...) {
      model_.set_capture(nullptr);
      throw;
    }
    model_.set_capture(nullptr);
    fn(bi, cap.inputs, cap.out_grads);
  }
}

double CurvatureOracle::dot(const WeightVec& a, const WeightVec& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].defined() && b[i].defined()) s += (a[i].to(torch::kDouble) * b[i].to(torch::kDouble)).sum().item<double>();
  return s;
}

WeightVec CurvatureOracle::rademacher_like(const WeightVec& like, torch::Generator& gen) {
  WeightVec out;
  for (const auto& t : like) {
    auto r = torch::randint(0, 2, t.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat));
    out.push_back((r * 2 - 1).to(t.device()).to(t.dtype()));
  }
  return out;
}

WeightVec CurvatureOracle::zeros_like_weights() const {
  WeightVec out;
  for (const auto& w : weights_) out.push_back(torch::zeros_like(w.weight).detach());
  return out;
}

void accumulate_blocks(const Partition& partition, std::size_t w, const torch::Tensor& x, std::vector<double>& out) {
  auto x2 = x.reshape({x.size(0), -1}).to(torch::kDouble);
  for (std::size_t bi : partition.blocks_of(w)) {
    const auto& b = partition.blocks[bi];
    out[bi] += x2.slice(0, b.row0, b.row1).slice(1, b.col0, b.col1).sum().item<double>();
  }
}

ProbeSettings::ProbeSettings(const Params& p)
    : max_hvps_(p.get_int("max_hvps", -1)), min_probes_(p.get_int("min_probes", 4)), rel_tol_(p.get_double("rel_tol", -1)) {
  if (min_probes_ < 2) throw ConfigError(p.where("min_probes") + ": at least 2 probes are needed for a standard error");
}

double ProbeMoments::add(const std::vector<double>& sample, double start) {
  double total = start;
  for (std::size_t b = 0; b < sum_.size(); ++b) {
    sum_[b] += sample[b];
    sumsq_[b] += sample[b] * sample[b];
    total += sample[b];
  }
  ++n_;
  return total;
}

double ProbeMoments::std_error(std::size_t b) const {
  const double k = static_cast<double>(n_), m = mean(b);
  const double var = n_ > 1 ? std::max(0.0, (sumsq_[b] - k * m * m) / (k - 1)) : 0.0;
  return std::sqrt(var / k);
}

bool ProbeMoments::converged(double rel_tol, const std::vector<double>& offset) const {
  for (std::size_t b = 0; b < sum_.size(); ++b)
    if (!(std_error(b) <= rel_tol * std::abs((offset.empty() ? 0.0 : offset[b]) + mean(b)))) return false;
  return true;
}

std::int64_t peak_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      std::istringstream ss(line.substr(6));
      std::int64_t kb = 0;
      ss >> kb;
      return kb * 1024;
    }
  }
  return 0;
}

}  // namespace hawq
