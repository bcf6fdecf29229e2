// Model base: loss, metric evaluation, snapshot/restore, weight views.
#include "hawq/model.h"

#include <cmath>

#include "hawq/errors.h"

namespace hawq {

torch::Tensor Model::loss(const Batch& batch) {
  return torch::nn::functional::cross_entropy(
      logits(batch), labels(batch), torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
}

double Model::evaluate(const std::vector<Batch>& batches) {
  torch::NoGradGuard ng;
  module().eval();
  const bool top1 = metric_name() == "top1";
  double correct = 0, nll = 0;
  std::int64_t count = 0;
  for (const auto& b : batches) {
    auto lg = logits(b);
    auto lb = labels(b);
    auto mask = lb.ne(-100);
    count += mask.sum().item<std::int64_t>();
    if (top1) {
      correct += lg.argmax(1).eq(lb).logical_and(mask).sum().item<double>();
    } else {
      nll += torch::nn::functional::cross_entropy(
                 lg.to(torch::kFloat), lb,
                 torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kSum))
                 .item<double>();
    }
  }
  HAWQ_CHECK(count > 0, "evaluation over an empty set");
  return top1 ? correct / static_cast<double>(count) : std::exp(nll / static_cast<double>(count));
}

void Model::snapshot() {
  torch::NoGradGuard ng;
  saved_.clear();
  for (const auto& p : module().parameters()) saved_.push_back(p.detach().clone());
  for (const auto& b : module().buffers()) saved_.push_back(b.detach().clone());
}

void Model::restore() {
  torch::NoGradGuard ng;
  HAWQ_CHECK(!saved_.empty(), "restore() without snapshot()");
  std::size_t i = 0;
  for (auto& p : module().parameters()) p.copy_(saved_[i++]);
  for (auto& b : module().buffers()) b.copy_(saved_[i++]);
}

std::vector<WeightInfo> Model::weight_infos() {
  std::vector<WeightInfo> out;
  for (const auto& q : quantizable()) out.push_back(q.info);
  return out;
}

std::vector<Batch> to_device(const std::vector<Batch>& batches, const torch::Device& device) {
  std::vector<Batch> out;
  out.reserve(batches.size());
  for (const auto& b : batches) out.push_back(b.to(device));
  return out;
}

}  // namespace hawq
