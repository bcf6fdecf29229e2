// Dataset: calibration and evaluation batches for one model family. Needs LibTorch.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "hawq/model.h"

namespace hawq {

class Dataset {
 public:
  static constexpr const char* kKind = "dataset";
  virtual ~Dataset() = default;
  // Human-readable description for reports ("fashion_mnist test[0:2000]").
  virtual std::string describe() const = 0;
  // `count` calibration examples drawn from the training split with `seed`, in batches of
  // `batch_size` (images: images; text: windows of the dataset's seqlen).
  virtual std::vector<Batch> calibration(std::int64_t count, std::int64_t batch_size, std::uint64_t seed) = 0;
  // The evaluation split (limited to `limit` examples/windows if > 0), in batches.
  virtual std::vector<Batch> evaluation(std::int64_t limit, std::int64_t batch_size) = 0;
  // Training batches for one epoch, shuffled by seed (used by `hawq-bench train`).
  virtual std::vector<Batch> training_epoch(std::int64_t batch_size, std::uint64_t seed) = 0;
};

}  // namespace hawq

#define HAWQ_REGISTER_DATASET(name, Type) HAWQ_REGISTER_PLUGIN(::hawq::Dataset, name, Type)
