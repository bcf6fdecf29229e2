// ResNet family configuration (torchvision-compatible parameter names).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "hawq/model.h"

namespace hawq {

struct ResNetConfig {
  std::string arch = "resnet50";     // resnet18 | resnet34 | resnet50 | resnet101
  std::int64_t width = 64;           // base channels (torchvision: 64)
  std::string stem = "imagenet";     // imagenet (7×7/2 + max-pool) | small (3×3/1, no pool)
  std::int64_t in_channels = 3;
  std::int64_t num_classes = 1000;
  std::string checkpoint;            // folder with model.safetensors (+ config.json) or a .safetensors file
  static ResNetConfig from_params(const Params& p);
  std::string to_json() const;
};

std::unique_ptr<Model> make_resnet(const ResNetConfig& c);

}  // namespace hawq
