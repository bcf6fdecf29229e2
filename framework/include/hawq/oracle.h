// CurvatureOracle: the only way estimators touch a model. Needs LibTorch.
//
// It owns fixed calibration batches and answers gradient, Hessian-vector product, per-sample
// gradient and layer-statistics queries over them, so a new model family needs no estimator change
// and every estimator sees exactly the same objective:
//   L(θ) = (1/N) Σ_batches Σ_rows CE(logits, labels)   (mean over all counted rows of all batches)
// Modes:
//   full       double backward through the whole model (exact Hessian of L restricted to weights)
//   layerwise  each weight's local reconstruction objective ‖(W'−W)X‖²/N (Hessian I ⊗ 2XXᵀ/N, as GPTQ);
//              memory of one layer at a time, the path for very large models
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "hawq/model.h"

namespace hawq {

enum class OracleMode { kFull, kLayerwise };
OracleMode parse_oracle_mode(const std::string& s);  // "full" | "layerwise"

// One tensor per quantizable weight (same shapes), the vector type estimators work with.
using WeightVec = std::vector<torch::Tensor>;

class CurvatureOracle {
 public:
  CurvatureOracle(Model& model, std::vector<Batch> batches, OracleMode mode);

  Model& model() { return model_; }
  OracleMode mode() const { return mode_; }
  const std::vector<Batch>& batches() const { return batches_; }
  const std::vector<QuantWeight>& weights() const { return weights_; }
  std::int64_t total_rows() const { return total_rows_; }  // counted rows N across batches

  // Current loss L(θ) and its gradient.
  double loss();
  WeightVec gradient();
  // H v for the mode's objective. `v` has one tensor per weight; entries may be undefined
  // (treated as zero). Counts one HVP.
  WeightVec hvp(const WeightVec& v);
  std::int64_t hvp_count() const { return hvps_; }

  // Per-example gradients of the per-example loss (rows of example e averaged), for every weight:
  // calls fn(example_index, grads). Exact (one backward per example), never from the batch mean.
  void per_example_gradients(const std::function<void(std::int64_t, const WeightVec&)>& fn);

  // Layer inputs and output gradients captured over all batches, for K-FAC/GPTQ-style statistics:
  // calls fn(batch_index, inputs[w], output_grads[w]). `output_grad_mode`:
  //   "empirical": gradients of the true-label loss; "mc": labels sampled from the model's softmax
  //   (seeded); "none": no backward (inputs only). Gradients are of the SUM of row losses.
  using LayerStatsFn = std::function<void(std::size_t, const std::vector<torch::Tensor>&, const std::vector<torch::Tensor>&)>;
  void layer_statistics(const std::string& output_grad_mode, std::uint64_t seed, const LayerStatsFn& fn);

  // Helpers on weight vectors (PyHessian-style).
  static double dot(const WeightVec& a, const WeightVec& b);
  static WeightVec rademacher_like(const WeightVec& like, torch::Generator& gen);
  WeightVec zeros_like_weights() const;

 private:
  WeightVec hvp_full(const WeightVec& v);
  WeightVec hvp_layerwise(const WeightVec& v);
  void ensure_layer_gram();
  std::vector<std::int64_t> state_versions();

  Model& model_;
  std::vector<Batch> batches_;
  OracleMode mode_;
  std::vector<QuantWeight> weights_;
  std::int64_t total_rows_ = 0;
  std::int64_t hvps_ = 0;
  // layerwise mode: per weight, 2XXᵀ/N over the (expanded) layer input columns.
  std::vector<torch::Tensor> gram_;
  // full mode with one calibration batch: the first-order gradient graph kept between HVPs, and
  // the parameter/buffer versions it was built at (rebuilt when any of them changes).
  std::vector<torch::Tensor> cached_grads_;
  std::vector<std::int64_t> cached_versions_;
};

// Expands a captured layer input into the columns the weight's 2-D view multiplies:
// linear -> [rows, in_features]; conv -> unfolded patches [rows, in_channels*kh*kw].
torch::Tensor expand_layer_input(const QuantWeight& w, const torch::Tensor& input);

// Peak resident set size of this process in bytes (from /proc/self/status VmHWM), 0 if unknown.
std::int64_t peak_rss_bytes();

}  // namespace hawq
