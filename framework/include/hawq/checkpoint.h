// LibTorch bridge for safetensors: tensors in and out, state dicts of modules.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "hawq/safetensors.h"

namespace hawq {

// The tensor `name` of `file` as a float32 CPU tensor (F32/F16/BF16/F64 accepted).
torch::Tensor load_tensor(const SafeTensorsFile& file, const std::string& name);
// A tensor in the given safetensors dtype ("F32", "F16", "BF16", "I64").
SafeTensorOut to_safetensor(const std::string& name, const torch::Tensor& t, const std::string& dtype = "F32");

// Loads a state dict (parameters and buffers by their module paths) from one or more files.
// Every module entry must be present with the same shape; checkpoint entries the module does not
// have are errors, except names listed in `ignorable_suffixes` (e.g. "num_batches_tracked").
// Non-finite weights are rejected, naming the tensor.
void load_state_dict(torch::nn::Module& module, const std::vector<std::string>& files,
                     const std::vector<std::string>& ignorable_suffixes = {"num_batches_tracked"});
// Writes parameters and buffers (float ones in `dtype`), atomically.
void save_state_dict(const torch::nn::Module& module, const std::string& path, const std::string& dtype = "F32",
                     const std::map<std::string, std::string>& metadata = {});

}  // namespace hawq
