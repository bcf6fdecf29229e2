// Model: the interface every model family (resnet, llama) implements. Needs LibTorch.
//
// Both families are classifiers over their outputs: ResNet predicts one class per image, LLaMA one
// token per position. logits() returns [N, C] and labels() [N], and the training loss is the mean
// cross entropy over the N rows. That shared shape lets estimators (K-FAC type2/mc, Fisher) and
// the oracle work on any family without knowing which one it is.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "hawq/params.h"
#include "hawq/partition.h"

namespace hawq {

// One calibration or evaluation batch. Images: input [B,C,H,W] float, target [B] int64 labels.
// Text: input [B,T] int64 token ids, target [B,T] next-token ids (-100 = ignored).
struct Batch {
  torch::Tensor input;
  torch::Tensor target;
  std::int64_t size() const { return input.size(0); }
  Batch to(const torch::Device& d) const { return {input.to(d), target.to(d)}; }
};

// Geometry of a quantizable layer, for estimators that need the layer's input expansion (K-FAC).
struct LayerGeometry {
  bool conv = false;                 // Conv2d (else a linear map over the last dim)
  std::int64_t stride = 1, padding = 0, dilation = 1, groups = 1;
  std::vector<std::int64_t> kernel;  // {kh, kw} for conv
};

struct QuantWeight {
  WeightInfo info;          // name, role, shape, head_dim
  torch::Tensor weight;     // the live parameter (quantizers write into it)
  LayerGeometry geometry;
};

// Captures layer inputs and output gradients during a forward/backward pass (K-FAC, GPTQ).
// Models call on_layer() for every quantizable layer while a capture is installed.
class LayerCapture {
 public:
  virtual ~LayerCapture() = default;
  // `index` is the weight's index in quantizable(); `input` the layer input (before the weight),
  // `output` its output (before bias-free activation). Return value replaces the output (it may
  // be the same tensor with a gradient hook registered).
  virtual torch::Tensor on_layer(std::size_t index, const torch::Tensor& input, const torch::Tensor& output) = 0;
};

class Model {
 public:
  static constexpr const char* kKind = "model";
  virtual ~Model() = default;

  virtual std::string family() const = 0;
  virtual torch::nn::Module& module() = 0;
  // Quantizable weights in forward order (stable: partitions and results index into it).
  virtual std::vector<QuantWeight> quantizable() = 0;
  // [N, C] logits for the batch (N = B for images, B*T for text).
  virtual torch::Tensor logits(const Batch& batch) = 0;
  // [N] labels matching logits(); -100 marks rows that do not count.
  virtual torch::Tensor labels(const Batch& batch) const = 0;
  // Mean cross entropy over counted rows (the objective whose Hessian we estimate).
  torch::Tensor loss(const Batch& batch);
  // Architecture as JSON, written beside trained weights (config.json) so the folder reloads alone.
  virtual std::string config_json() const = 0;
  // "top1" (higher is better) or "ppl" (lower is better).
  virtual std::string metric_name() const = 0;
  // Evaluates the metric over the batches (summed correctly across batches, not averaged).
  virtual double evaluate(const std::vector<Batch>& batches);

  void set_capture(LayerCapture* c) { capture_ = c; }
  LayerCapture* capture() const { return capture_; }

  // Snapshot/restore of all parameters and buffers, so each sweep point starts from the same model.
  void snapshot();
  void restore();

  // Where the weights came from (for results).
  std::string checkpoint_path;

  // Weights as WeightInfo (torch-free view for partitioning).
  std::vector<WeightInfo> weight_infos();

 protected:
  // Helper for families: call in forward for quantizable layer `index`.
  torch::Tensor captured(std::size_t index, const torch::Tensor& input, const torch::Tensor& output) {
    return capture_ ? capture_->on_layer(index, input, output) : output;
  }

 private:
  LayerCapture* capture_ = nullptr;
  std::vector<torch::Tensor> saved_;
};

// Runs `fn` with torch intra-op threads fixed and restores the previous setting.
std::vector<Batch> to_device(const std::vector<Batch>& batches, const torch::Device& device);

}  // namespace hawq

#define HAWQ_REGISTER_MODEL(name, Type) HAWQ_REGISTER_PLUGIN(::hawq::Model, name, Type)
