// Safetensors <-> LibTorch: tensor conversion and state-dict loading with strict checks.
#include "hawq/checkpoint.h"

#include <cstring>
#include <set>

#include "hawq/errors.h"

namespace hawq {

torch::Tensor load_tensor(const SafeTensorsFile& file, const std::string& name) {
  const auto& e = file.entry(name);
  const std::uint8_t* p = file.data(name);
  const std::int64_t n = e.numel();
  auto out = torch::empty(e.shape, torch::kFloat);
  float* dst = out.data_ptr<float>();
  if (e.dtype == "F32") {
    std::memcpy(dst, p, static_cast<std::size_t>(n) * 4);
  } else if (e.dtype == "F16" || e.dtype == "BF16") {
    const bool bf = e.dtype == "BF16";
    for (std::int64_t i = 0; i < n; ++i) {
      std::uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      dst[i] = bf ? bf16_to_float(h) : half_to_float(h);
    }
  } else if (e.dtype == "F64") {
    for (std::int64_t i = 0; i < n; ++i) {
      double d;
      std::memcpy(&d, p + 8 * i, 8);
      dst[i] = static_cast<float>(d);
    }
  } else if (e.dtype == "I64") {
    auto t = torch::empty(e.shape, torch::kLong);
    std::memcpy(t.data_ptr<std::int64_t>(), p, static_cast<std::size_t>(n) * 8);
    return t;
  } else {
    throw FormatError("safetensors file " + file.path() + ": tensor '" + name + "' has dtype " + e.dtype +
                      "; expected F32, F16, BF16, F64 or I64");
  }
  return out;
}

SafeTensorOut to_safetensor(const std::string& name, const torch::Tensor& t, const std::string& dtype) {
  SafeTensorOut o;
  o.name = name;
  o.dtype = dtype;
  o.shape = t.sizes().vec();
  auto c = t.detach().cpu().contiguous();
  if (dtype == "I64") {
    auto l = c.to(torch::kLong);
    o.bytes.resize(l.numel() * 8);
    std::memcpy(o.bytes.data(), l.data_ptr<std::int64_t>(), o.bytes.size());
    return o;
  }
  auto f = c.to(torch::kFloat);
  const float* src = f.data_ptr<float>();
  const std::int64_t n = f.numel();
  if (dtype == "F32") {
    o.bytes.resize(n * 4);
    std::memcpy(o.bytes.data(), src, o.bytes.size());
  } else if (dtype == "F16" || dtype == "BF16") {
    o.bytes.resize(n * 2);
    for (std::int64_t i = 0; i < n; ++i) {
      std::uint16_t h = dtype == "F16" ? float_to_half(src[i]) : float_to_bf16(src[i]);
      std::memcpy(o.bytes.data() + 2 * i, &h, 2);
    }
  } else {
    HAWQ_CHECK(false, "to_safetensor: unsupported dtype " + dtype);
  }
  return o;
}

void load_state_dict(torch::nn::Module& module, const std::vector<std::string>& files,
                     const std::vector<std::string>& ignorable_suffixes) {
  std::map<std::string, torch::Tensor> targets;
  for (auto& p : module.named_parameters()) targets[p.key()] = p.value();
  for (auto& b : module.named_buffers()) targets[b.key()] = b.value();
  std::set<std::string> seen;
  torch::NoGradGuard ng;
  for (const auto& path : files) {
    SafeTensorsFile f(path);
    for (const auto& kv : f.tensors()) {
      const std::string& name = kv.first;
      auto it = targets.find(name);
      if (it == targets.end()) {
        bool ignorable = false;
        for (const auto& s : ignorable_suffixes)
          ignorable |= name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
        if (ignorable) continue;
        throw FormatError("checkpoint " + path + ": unexpected tensor '" + name +
                          "' (the model has no such parameter; wrong architecture settings?)");
      }
      if (kv.second.shape != it->second.sizes().vec()) {
        std::string want, got;
        for (auto s : it->second.sizes()) want += std::to_string(s) + ",";
        for (auto s : kv.second.shape) got += std::to_string(s) + ",";
        throw FormatError("checkpoint " + path + ": tensor '" + name + "' has shape [" + got + "] but the model expects [" +
                          want + "]");
      }
      auto t = load_tensor(f, name);
      if (t.is_floating_point() && !torch::isfinite(t).all().item<bool>())
        throw FormatError("checkpoint " + path + ": tensor '" + name + "' contains NaN or Inf values");
      it->second.copy_(t.to(it->second.dtype()));
      seen.insert(name);
    }
  }
  for (const auto& kv : targets)
    if (!seen.count(kv.first)) {
      std::string list;
      for (const auto& f : files) list += (list.empty() ? "" : ", ") + f;
      throw FormatError("checkpoint " + list + ": missing tensor '" + kv.first + "'");
    }
}

void save_state_dict(const torch::nn::Module& module, const std::string& path, const std::string& dtype,
                     const std::map<std::string, std::string>& metadata) {
  std::vector<SafeTensorOut> out;
  for (const auto& p : module.named_parameters()) out.push_back(to_safetensor(p.key(), p.value(), dtype));
  for (const auto& b : module.named_buffers())
    out.push_back(to_safetensor(b.key(), b.value(), b.value().is_floating_point() ? dtype : "I64"));
  write_safetensors(path, out, metadata);
}

}  // namespace hawq
