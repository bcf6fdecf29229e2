// `hawq-bench train`: trains a registered model on a registered dataset from a YAML config and
// writes the weights in the family's checkpoint layout (model.safetensors + config.json) with a
// record of the command, seed, settings and final held-out metric (train_record.json).
#pragma once

#include <string>

#include "hawq/config.h"

namespace hawq {

// Returns the process exit code. `command_line` is stored in the record.
int run_training(const LoadedConfig& cfg, const std::string& command_line);

}  // namespace hawq
