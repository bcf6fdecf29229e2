// Small models and exact-curvature helpers for tests.
//
// The models are small enough (tens to a few hundred weights) that the full Hessian of the
// oracle's objective, and its Gauss-Newton part, can be formed exactly by autograd in double
// precision. Estimator tests compare against these matrices.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "hawq/model.h"
#include "hawq/partition.h"

namespace hawq::test {

namespace tnn = torch::nn;

// A classifier made of an optional 2-D convolution, then linear layers with tanh between them.
// hidden = {} gives a single linear layer: logits = W x (+ b). All weights are quantizable.
struct TinySpec {
  std::int64_t in = 6;                   // input features (or conv: input channels)
  std::vector<std::int64_t> hidden = {}; // hidden widths of the MLP part
  std::int64_t classes = 3;
  bool bias = true;
  // Convolution front end (conv_out > 0): input [B, in, image, image], kernel k, padding pad;
  // its output is tanh'ed and flattened into the MLP part.
  std::int64_t conv_out = 0, image = 4, kernel = 3, padding = 1;
  std::uint64_t seed = 1;
};

class TinyModel : public Model {
 public:
  explicit TinyModel(const TinySpec& s) : spec_(s) {
    torch::manual_seed(s.seed);
    std::int64_t width = s.in;
    if (s.conv_out > 0) {
      conv_ = net_->register_module("conv", tnn::Conv2d(tnn::Conv2dOptions(s.in, s.conv_out, s.kernel)
                                                            .padding(s.padding)
                                                            .bias(s.bias)));
      const std::int64_t side = s.image + 2 * s.padding - s.kernel + 1;
      width = s.conv_out * side * side;
      QuantWeight q;
      q.info = {"conv.weight", "conv", conv_->weight.sizes().vec(), 0};
      q.weight = conv_->weight;
      q.geometry.conv = true;
      q.geometry.kernel = {s.kernel, s.kernel};
      q.geometry.padding = s.padding;
      weights_.push_back(q);
    }
    std::vector<std::int64_t> dims = {width};
    dims.insert(dims.end(), s.hidden.begin(), s.hidden.end());
    dims.push_back(s.classes);
    for (std::size_t i = 0; i + 1 < dims.size(); ++i) {
      const std::string name = "fc" + std::to_string(i);
      auto l = net_->register_module(name, tnn::Linear(tnn::LinearOptions(dims[i], dims[i + 1]).bias(s.bias)));
      linears_.push_back(l);
      QuantWeight q;
      q.info = {name + ".weight", "linear", l->weight.sizes().vec(), 0};
      q.weight = l->weight;
      weights_.push_back(q);
    }
    net_->to(torch::kDouble);
    net_->eval();
  }

  std::string family() const override { return "tiny"; }
  torch::nn::Module& module() override { return *net_; }
  std::vector<QuantWeight> quantizable() override { return weights_; }
  std::string config_json() const override { return "{\"family\": \"tiny\"}"; }
  std::string metric_name() const override { return "top1"; }
  torch::Tensor labels(const Batch& b) const override { return b.target; }

  torch::Tensor logits(const Batch& b) override {
    std::size_t q = 0;
    auto x = b.input;
    if (conv_) x = torch::tanh(captured(q++, x, conv_->forward(x))).flatten(1);
    for (std::size_t i = 0; i < linears_.size(); ++i) {
      if (i > 0) x = torch::tanh(x);
      x = captured(q++, x, linears_[i]->forward(x));
    }
    return x;
  }

  const TinySpec& spec() const { return spec_; }

 private:
  TinySpec spec_;
  std::shared_ptr<tnn::Module> net_ = std::make_shared<tnn::Module>();
  tnn::Conv2d conv_{nullptr};
  std::vector<tnn::Linear> linears_;
  std::vector<QuantWeight> weights_;
};

// A fixed random batch for `m`: inputs N(0,1) (or ±1 when `rademacher`), labels uniform.
inline Batch tiny_batch(const TinyModel& m, std::int64_t n, std::uint64_t seed, bool rademacher = false) {
  auto gen = at::detail::createCPUGenerator(seed);
  const auto& s = m.spec();
  std::vector<std::int64_t> shape = {n, s.in};
  if (s.conv_out > 0) shape = {n, s.in, s.image, s.image};
  auto opts = torch::TensorOptions().dtype(torch::kDouble);
  torch::Tensor x = rademacher ? torch::randint(0, 2, shape, gen, opts) * 2 - 1 : torch::randn(shape, gen, opts);
  auto y = torch::randint(0, s.classes, {n}, gen, torch::TensorOptions().dtype(torch::kLong));
  return {x, y};
}

inline std::vector<WeightInfo> infos(Model& m) { return m.weight_infos(); }

// Flat offsets of each quantizable weight in the concatenated parameter vector.
inline std::vector<std::int64_t> weight_offsets(Model& m) {
  std::vector<std::int64_t> off = {0};
  for (const auto& q : m.quantizable()) off.push_back(off.back() + q.weight.numel());
  return off;
}

// Sum CE over all batches divided by the counted rows: the oracle's objective L.
inline torch::Tensor objective(Model& m, const std::vector<Batch>& batches) {
  namespace F = torch::nn::functional;
  torch::Tensor s;
  std::int64_t rows = 0;
  for (const auto& b : batches) {
    auto l = F::cross_entropy(m.logits(b), m.labels(b), F::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kSum));
    s = s.defined() ? s + l : l;
    rows += m.labels(b).ne(-100).sum().item<std::int64_t>();
  }
  return s / static_cast<double>(rows);
}

// Plain gradient descent on L over all parameters, so tests can also look at a trained network
// (whose Hessian, like a real model's, is dominated by a few large eigenvalues).
inline void train(Model& m, const std::vector<Batch>& batches, int steps, double lr) {
  auto params = m.module().parameters();
  for (int i = 0; i < steps; ++i) {
    auto g = torch::autograd::grad({objective(m, batches)}, params);
    torch::NoGradGuard ng;
    for (std::size_t k = 0; k < params.size(); ++k) params[k].sub_(lr * g[k]);
  }
}

// The exact Hessian of L over the quantizable weights, [P, P], by double backward row by row.
inline torch::Tensor exact_hessian(Model& m, const std::vector<Batch>& batches) {
  std::vector<torch::Tensor> ws;
  for (const auto& q : m.quantizable()) ws.push_back(q.weight);
  auto g = torch::autograd::grad({objective(m, batches)}, ws, {}, true, true);
  std::vector<torch::Tensor> flat;
  for (auto& t : g) flat.push_back(t.reshape(-1));
  auto gf = torch::cat(flat);
  const auto P = gf.numel();
  auto H = torch::zeros({P, P}, torch::kDouble);
  for (std::int64_t i = 0; i < P; ++i) {
    auto row = torch::autograd::grad({gf[i]}, ws, {}, true, false, true);
    std::vector<torch::Tensor> r;
    for (std::size_t k = 0; k < row.size(); ++k)
      r.push_back(row[k].defined() ? row[k].reshape(-1) : torch::zeros({ws[k].numel()}, torch::kDouble));
    H[i] = torch::cat(r);
  }
  return 0.5 * (H + H.t());
}

// The exact generalised Gauss-Newton matrix of L: (1/N) Σ_rows J_rowᵀ (diag p − p pᵀ) J_row, [P, P].
inline torch::Tensor exact_ggn(Model& m, const std::vector<Batch>& batches) {
  std::vector<torch::Tensor> ws;
  for (const auto& q : m.quantizable()) ws.push_back(q.weight);
  std::int64_t P = 0, rows = 0;
  for (auto& w : ws) P += w.numel();
  auto G = torch::zeros({P, P}, torch::kDouble);
  for (const auto& b : batches) {
    auto z = m.logits(b);
    auto lb = m.labels(b);
    auto p = torch::softmax(z.detach(), 1);
    for (std::int64_t n = 0; n < z.size(0); ++n) {
      if (lb[n].item<std::int64_t>() == -100) continue;
      ++rows;
      const auto C = z.size(1);
      auto J = torch::zeros({C, P}, torch::kDouble);
      for (std::int64_t c = 0; c < C; ++c) {
        auto gr = torch::autograd::grad({z[n][c]}, ws, {}, true, false, true);
        std::vector<torch::Tensor> r;
        for (std::size_t k = 0; k < gr.size(); ++k)
          r.push_back(gr[k].defined() ? gr[k].reshape(-1) : torch::zeros({ws[k].numel()}, torch::kDouble));
        J[c] = torch::cat(r);
      }
      auto pn = p[n];
      auto Hz = torch::diag(pn) - torch::outer(pn, pn);
      G += J.t().mm(Hz).mm(J);
    }
  }
  return G / static_cast<double>(rows);
}

// Flat indices (into the concatenated parameter vector) of the coordinates of block `b`.
inline std::vector<std::int64_t> block_indices(const Partition& part, const std::vector<std::int64_t>& off, std::size_t b) {
  const auto& blk = part.blocks[b];
  const auto cols = part.weights[blk.weight].cols();
  std::vector<std::int64_t> idx;
  for (std::int64_t r = blk.row0; r < blk.row1; ++r)
    for (std::int64_t c = blk.col0; c < blk.col1; ++c) idx.push_back(off[blk.weight] + r * cols + c);
  return idx;
}

// Tr of each block's diagonal sub-matrix of a full [P, P] curvature matrix.
inline std::vector<double> block_traces(const torch::Tensor& M, const Partition& part, const std::vector<std::int64_t>& off) {
  std::vector<double> out;
  auto d = M.diagonal();
  for (std::size_t b = 0; b < part.blocks.size(); ++b) {
    double s = 0;
    for (auto i : block_indices(part, off, b)) s += d[i].item<double>();
    out.push_back(s);
  }
  return out;
}

// The block's diagonal sub-matrix [n_b, n_b] of a full [P, P] matrix.
inline torch::Tensor block_matrix(const torch::Tensor& M, const Partition& part, const std::vector<std::int64_t>& off, std::size_t b) {
  auto idx = torch::tensor(block_indices(part, off, b), torch::kLong);
  return M.index_select(0, idx).index_select(1, idx);
}

}  // namespace hawq::test
