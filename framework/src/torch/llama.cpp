// LLaMA family (Hugging Face LlamaForCausalLM compatible): RMSNorm in float32, rotate-half RoPE,
// grouped-query attention, SwiGLU, causal attention, tied or untied head.
//
// The math follows transformers' modeling_llama so that logits agree to float tolerance: RoPE
// frequencies are computed in float32 from rope_theta and applied with rotate_half to q and k as HF
// stores them (no weight permutation); key/value head j serves query heads j*g .. j*g+g-1
// (g = heads / kv heads); attention softmax is in float32. Attention is written out with matmuls
// (no fused kernel) so that double backward works for the full-Hessian oracle.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <set>

#include "hawq/checkpoint.h"
#include "hawq/errors.h"
#include "hawq/fs.h"
#include "hawq/llama.h"
#include "hawq/model.h"
#include "hawq/registry.h"
#include "hawq/safetensors.h"

namespace hawq {

namespace nn = torch::nn;
using json = nlohmann::json;

// ------------------------------------------------------------------------------------ config

namespace {

// Reads config.json values with errors that name the file and the key.
struct JsonReader {
  const json& j;
  std::string where;

  [[noreturn]] void bad(const std::string& key, const std::string& what) const {
    throw FormatError(where + ": key '" + key + "' " + what);
  }
  bool has(const std::string& key) const { return j.contains(key) && !j.at(key).is_null(); }
  std::int64_t integer(const std::string& key, std::int64_t def, bool required) const {
    if (!has(key)) {
      if (required) bad(key, "is missing (required for a LLaMA model)");
      return def;
    }
    const auto& v = j.at(key);
    if (v.is_number_integer()) return v.get<std::int64_t>();
    if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()) return static_cast<std::int64_t>(v.get<double>());
    bad(key, "must be an integer, found " + v.dump());
  }
  double number(const std::string& key, double def) const {
    if (!has(key)) return def;
    const auto& v = j.at(key);
    if (!v.is_number()) bad(key, "must be a number, found " + v.dump());
    return v.get<double>();
  }
  bool boolean(const std::string& key, bool def) const {
    if (!has(key)) return def;
    const auto& v = j.at(key);
    if (!v.is_boolean()) bad(key, "must be true or false, found " + v.dump());
    return v.get<bool>();
  }
  std::string string(const std::string& key, const std::string& def) const {
    if (!has(key)) return def;
    const auto& v = j.at(key);
    if (!v.is_string()) bad(key, "must be a string, found " + v.dump());
    return v.get<std::string>();
  }
};

std::string dtype_from_torch_name(const std::string& s) {
  if (s == "float32") return "F32";
  if (s == "float16") return "F16";
  if (s == "bfloat16") return "BF16";
  return "";
}

std::string torch_name_from_dtype(const std::string& s) {
  if (s == "F32") return "float32";
  if (s == "F16") return "float16";
  if (s == "BF16") return "bfloat16";
  return "";
}

}  // namespace

void LlamaConfig::validate(const std::string& where, bool config_error) const {
  auto fail = [&](const std::string& key, const std::string& msg) {
    const std::string m = where + ": " + (config_error ? "" : "key ") + "'" + key + "' " + msg;
    if (config_error) throw ConfigError(m);
    throw FormatError(m);
  };
  if (hidden_size <= 0) fail("hidden_size", "must be positive");
  if (intermediate_size <= 0) fail("intermediate_size", "must be positive");
  if (num_hidden_layers <= 0) fail("num_hidden_layers", "must be positive");
  if (num_attention_heads <= 0) fail("num_attention_heads", "must be positive");
  if (num_key_value_heads <= 0) fail("num_key_value_heads", "must be positive");
  if (vocab_size <= 0) fail("vocab_size", "must be positive");
  if (max_position_embeddings <= 0) fail("max_position_embeddings", "must be positive");
  if (num_attention_heads % num_key_value_heads != 0)
    fail("num_key_value_heads", "(" + std::to_string(num_key_value_heads) + ") must divide num_attention_heads (" +
                                    std::to_string(num_attention_heads) + ")");
  if (head_dim <= 0 || head_dim % 2 != 0) fail("head_dim", "must be a positive even number (RoPE rotates pairs), got " + std::to_string(head_dim));
  if (!(rms_norm_eps > 0)) fail("rms_norm_eps", "must be positive");
  if (!(rope_theta > 0)) fail("rope_theta", "must be positive");
  if (!(rope_factor > 0)) fail("rope_scaling", "factor must be positive");
  if (dtype_from_torch_name(torch_dtype).empty())
    fail("torch_dtype", "must be float32, float16 or bfloat16, got '" + torch_dtype + "'");
}

LlamaConfig LlamaConfig::from_json(const std::string& text, const std::string& where) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw FormatError(where + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw FormatError(where + ": expected a JSON object");
  JsonReader r{j, where};
  const std::string model_type = r.string("model_type", "llama");
  if (model_type != "llama")
    throw FormatError(where + ": key 'model_type' is '" + model_type + "'; only 'llama' (LlamaForCausalLM) is supported");
  LlamaConfig c;
  c.hidden_size = r.integer("hidden_size", 0, true);
  c.intermediate_size = r.integer("intermediate_size", 0, true);
  c.num_hidden_layers = r.integer("num_hidden_layers", 0, true);
  c.num_attention_heads = r.integer("num_attention_heads", 0, true);
  c.vocab_size = r.integer("vocab_size", 0, true);
  c.num_key_value_heads = r.integer("num_key_value_heads", c.num_attention_heads, false);
  c.head_dim = r.integer("head_dim", c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0, false);
  c.max_position_embeddings = r.integer("max_position_embeddings", 2048, false);
  c.rms_norm_eps = r.number("rms_norm_eps", 1e-6);
  c.rope_theta = r.number("rope_theta", 10000.0);
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", false);
  c.bos_token_id = r.integer("bos_token_id", 1, false);
  // Llama 3 lists several end tokens; the first is the one written back.
  if (r.has("eos_token_id") && j["eos_token_id"].is_array()) {
    const auto& a = j["eos_token_id"];
    if (a.empty() || !a[0].is_number_integer()) r.bad("eos_token_id", "must be an integer or a list of integers");
    c.eos_token_id = a[0].get<std::int64_t>();
  } else {
    c.eos_token_id = r.integer("eos_token_id", 2, false);
  }
  c.initializer_range = r.number("initializer_range", 0.02);
  const std::string act = r.string("hidden_act", "silu");
  if (act != "silu") throw FormatError(where + ": key 'hidden_act' is '" + act + "'; LLaMA's SwiGLU needs 'silu'");
  if (r.boolean("attention_bias", false))
    throw FormatError(where + ": key 'attention_bias' is true; attention projections with biases are not supported");
  if (r.boolean("mlp_bias", false)) throw FormatError(where + ": key 'mlp_bias' is true; MLP biases are not supported");
  const std::string dt = r.string("torch_dtype", r.string("dtype", "float32"));
  c.torch_dtype = dtype_from_torch_name(dt).empty() ? "float32" : dt;
  if (r.has("rope_scaling")) {
    const auto& rs = j.at("rope_scaling");
    if (!rs.is_object()) throw FormatError(where + ": key 'rope_scaling' must be an object or null");
    JsonReader s{rs, where + " rope_scaling"};
    std::string type = s.string("rope_type", s.string("type", ""));
    if (type == "default" || type.empty()) {
      type = "";
    } else if (type == "linear") {
      c.rope_factor = s.number("factor", 1.0);
    } else if (type == "llama3") {
      c.rope_factor = s.number("factor", 8.0);
      c.rope_low_freq_factor = s.number("low_freq_factor", 1.0);
      c.rope_high_freq_factor = s.number("high_freq_factor", 4.0);
      c.rope_original_max_positions = s.integer("original_max_position_embeddings", 8192, false);
      if (!(c.rope_high_freq_factor > c.rope_low_freq_factor))
        throw FormatError(where + ": rope_scaling high_freq_factor must exceed low_freq_factor");
    } else {
      throw FormatError(where + ": key 'rope_scaling' has type '" + type + "'; supported: linear, llama3");
    }
    c.rope_scaling_type = type;
  }
  c.validate(where, false);
  return c;
}

std::string LlamaConfig::to_json() const {
  json j = {{"architectures", {"LlamaForCausalLM"}},
            {"model_type", "llama"},
            {"hidden_act", "silu"},
            {"hidden_size", hidden_size},
            {"intermediate_size", intermediate_size},
            {"num_hidden_layers", num_hidden_layers},
            {"num_attention_heads", num_attention_heads},
            {"num_key_value_heads", num_key_value_heads},
            {"head_dim", head_dim},
            {"vocab_size", vocab_size},
            {"max_position_embeddings", max_position_embeddings},
            {"rms_norm_eps", rms_norm_eps},
            {"rope_theta", rope_theta},
            {"tie_word_embeddings", tie_word_embeddings},
            {"attention_bias", false},
            {"mlp_bias", false},
            {"bos_token_id", bos_token_id},
            {"eos_token_id", eos_token_id},
            {"initializer_range", initializer_range},
            {"torch_dtype", torch_dtype}};
  if (rope_scaling_type.empty()) {
    j["rope_scaling"] = nullptr;
  } else if (rope_scaling_type == "linear") {
    j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", rope_factor}};
  } else {
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", rope_factor},
                         {"low_freq_factor", rope_low_freq_factor},
                         {"high_freq_factor", rope_high_freq_factor},
                         {"original_max_position_embeddings", rope_original_max_positions}};
  }
  return j.dump(2);
}

// ------------------------------------------------------------------------------------ module

namespace {

struct RMSNormImpl : nn::Module {
  RMSNormImpl(std::int64_t d, double eps) : eps_(eps) { weight = register_parameter("weight", torch::ones({d})); }
  torch::Tensor forward(const torch::Tensor& x) {
    // As HF: normalise in float32, cast back, then scale by the weight.
    auto h = x.to(torch::kFloat);
    h = h * torch::rsqrt(h.pow(2).mean(-1, true) + eps_);
    return weight * h.to(x.scalar_type());
  }
  double eps_;
  torch::Tensor weight;
};
TORCH_MODULE(RMSNorm);

nn::Linear linear(std::int64_t in, std::int64_t out) { return nn::Linear(nn::LinearOptions(in, out).bias(false)); }

struct AttentionImpl : nn::Module {
  explicit AttentionImpl(const LlamaConfig& c) {
    q_proj = register_module("q_proj", linear(c.hidden_size, c.num_attention_heads * c.head_dim));
    k_proj = register_module("k_proj", linear(c.hidden_size, c.num_key_value_heads * c.head_dim));
    v_proj = register_module("v_proj", linear(c.hidden_size, c.num_key_value_heads * c.head_dim));
    o_proj = register_module("o_proj", linear(c.num_attention_heads * c.head_dim, c.hidden_size));
  }
  nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
};
TORCH_MODULE(Attention);

struct MlpImpl : nn::Module {
  explicit MlpImpl(const LlamaConfig& c) {
    gate_proj = register_module("gate_proj", linear(c.hidden_size, c.intermediate_size));
    up_proj = register_module("up_proj", linear(c.hidden_size, c.intermediate_size));
    down_proj = register_module("down_proj", linear(c.intermediate_size, c.hidden_size));
  }
  nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(Mlp);

struct DecoderLayerImpl : nn::Module {
  explicit DecoderLayerImpl(const LlamaConfig& c) {
    self_attn = register_module("self_attn", Attention(c));
    mlp = register_module("mlp", Mlp(c));
    input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
    post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  }
  Attention self_attn{nullptr};
  Mlp mlp{nullptr};
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(DecoderLayer);

// HF's LlamaModel (registered as "model").
struct BackboneImpl : nn::Module {
  explicit BackboneImpl(const LlamaConfig& c) {
    embed_tokens = register_module("embed_tokens", nn::Embedding(c.vocab_size, c.hidden_size));
    nn::ModuleList list;
    for (std::int64_t i = 0; i < c.num_hidden_layers; ++i) {
      layers.emplace_back(c);
      list->push_back(layers.back());
    }
    register_module("layers", list);
    norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  }
  nn::Embedding embed_tokens{nullptr};
  std::vector<DecoderLayer> layers;
  RMSNorm norm{nullptr};
};
TORCH_MODULE(Backbone);

// HF's LlamaForCausalLM: "model" + "lm_head" (absent when tied). No buffers: the RoPE tables are
// derived from the config, as HF's non-persistent inv_freq buffer is.
struct LlamaNetImpl : nn::Module {
  explicit LlamaNetImpl(const LlamaConfig& c) {
    model = register_module("model", Backbone(c));
    if (!c.tie_word_embeddings) lm_head = register_module("lm_head", linear(c.hidden_size, c.vocab_size));
  }
  Backbone model{nullptr};
  nn::Linear lm_head{nullptr};
};
TORCH_MODULE(LlamaNet);

torch::Tensor rotate_half(const torch::Tensor& x) {
  const auto half = x.size(-1) / 2;
  return torch::cat({-x.slice(-1, half), x.slice(-1, 0, half)}, -1);
}

// RoPE inverse frequencies, float32 as HF computes them, with optional linear / llama3 scaling.
torch::Tensor rope_inv_freq(const LlamaConfig& c) {
  auto exponent = torch::arange(0, c.head_dim, 2, torch::kLong).to(torch::kFloat) / static_cast<float>(c.head_dim);
  auto inv = 1.0 / torch::pow(torch::full({}, static_cast<float>(c.rope_theta)), exponent);
  inv = inv.to(torch::kFloat);
  if (c.rope_scaling_type == "linear") {
    inv = inv / static_cast<float>(c.rope_factor);
  } else if (c.rope_scaling_type == "llama3") {
    // Long wavelengths are slowed by `factor`, short ones kept, the band between interpolated.
    const double old_len = static_cast<double>(c.rope_original_max_positions);
    const double low_wavelen = old_len / c.rope_low_freq_factor, high_wavelen = old_len / c.rope_high_freq_factor;
    auto wavelen = 2 * M_PI / inv;
    auto scaled = torch::where(wavelen > low_wavelen, inv / c.rope_factor, inv);
    auto smooth = (old_len / wavelen - c.rope_low_freq_factor) / (c.rope_high_freq_factor - c.rope_low_freq_factor);
    auto smoothed = (1 - smooth) * scaled / c.rope_factor + smooth * scaled;
    auto medium = (wavelen >= high_wavelen).logical_and(wavelen <= low_wavelen);
    inv = torch::where(medium, smoothed, scaled).to(torch::kFloat);
  }
  return inv;
}

const std::vector<std::string> kArchKeys = {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                                            "num_key_value_heads", "head_dim", "vocab_size", "max_position_embeddings",
                                            "rms_norm_eps", "rope_theta", "tie_word_embeddings", "bos_token_id",
                                            "eos_token_id", "initializer_range"};

// Weight files of a Hugging Face folder, single or sharded.
std::vector<std::string> weight_files(const std::string& folder) {
  namespace fsys = std::filesystem;
  const std::string index = folder + "/model.safetensors.index.json";
  if (file_exists(index)) {
    json j;
    try {
      j = json::parse(read_file(index));
    } catch (const json::exception& e) {
      throw FormatError(index + ": not valid JSON: " + e.what());
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      throw FormatError(index + ": key 'weight_map' is missing or not an object");
    std::set<std::string> names;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string()) throw FormatError(index + ": weight_map entry '" + it.key() + "' is not a file name");
      const std::string f = it.value().get<std::string>();
      if (f.empty() || f.find('/') != std::string::npos || f.find("..") != std::string::npos)
        throw FormatError(index + ": weight_map entry '" + it.key() + "' names '" + f + "', not a file in the folder");
      names.insert(f);
    }
    if (names.empty()) throw FormatError(index + ": weight_map is empty");
    std::vector<std::string> files;
    for (const auto& n : names) {
      if (!file_exists(folder + "/" + n)) throw FormatError(index + ": shard " + n + " is listed but missing from " + folder);
      files.push_back(folder + "/" + n);
    }
    return files;
  }
  if (file_exists(folder + "/model.safetensors")) return {folder + "/model.safetensors"};
  std::vector<std::string> shards;
  std::error_code ec;
  for (const auto& e : fsys::directory_iterator(folder, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("model-", 0) == 0 && n.find("-of-") != std::string::npos && n.size() > 12 &&
        n.compare(n.size() - 12, 12, ".safetensors") == 0)
      shards.push_back(e.path().string());
  }
  std::sort(shards.begin(), shards.end());
  if (!shards.empty()) return shards;
  if (file_exists(folder + "/pytorch_model.bin") || file_exists(folder + "/pytorch_model.bin.index.json"))
    throw FormatError(folder + ": only pytorch_model.bin weights found; hawq-bench reads safetensors only "
                      "(convert with transformers: model.save_pretrained(dir, safe_serialization=True))");
  throw FormatError(folder + ": no model.safetensors, model.safetensors.index.json or model-*-of-*.safetensors");
}

class LlamaModel : public Model {
 public:
  explicit LlamaModel(const Params& p) : config_(read_config(p)), net_(config_) {
    quantize_lm_head_ = p.get_bool("quantize_lm_head", false);
    const std::string dtype = p.get_string("dtype", "");
    if (!dtype.empty()) {
      if (dtype_from_torch_name(dtype).empty())
        throw ConfigError(p.where("dtype") + ": expected float32, float16 or bfloat16, got '" + dtype + "'");
      config_.torch_dtype = dtype;
    }
    const auto init_seed = static_cast<std::uint64_t>(p.get_int("init_seed", 0));
    if (!folder_.empty()) {
      std::vector<std::string> ignorable = {"rotary_emb.inv_freq", "num_batches_tracked"};
      if (config_.tie_word_embeddings) ignorable.push_back("lm_head.weight");
      load_state_dict(*net_, weight_files(folder_), ignorable);
      checkpoint_path = folder_;
    } else {
      init_weights(init_seed);
    }
    net_->eval();
    inv_freq_ = rope_inv_freq(config_);
    collect();
  }

  std::string family() const override { return "llama"; }
  torch::nn::Module& module() override { return *net_; }
  std::vector<QuantWeight> quantizable() override { return weights_; }
  std::string metric_name() const override { return "ppl"; }
  std::string config_json() const override { return config_.to_json(); }
  torch::Tensor labels(const Batch& b) const override { return b.target.reshape({-1}).to(torch::kLong); }

  torch::Tensor logits(const Batch& b) override {
    const auto& c = config_;
    auto ids = b.input;
    if (ids.dim() != 2) throw UserError("llama: batch input must be [batch, seq] token ids");
    ids = ids.to(torch::kLong);
    if (ids.numel() > 0) {
      const auto lo = ids.min().item<std::int64_t>(), hi = ids.max().item<std::int64_t>();
      if (lo < 0 || hi >= c.vocab_size)
        throw UserError("llama: token id " + std::to_string(lo < 0 ? lo : hi) + " is outside the vocabulary [0, " +
                        std::to_string(c.vocab_size) + "); do the tokenizer and the model belong together?");
    }
    const std::int64_t B = ids.size(0), T = ids.size(1);
    auto& n = *net_;
    auto x = n.model->embed_tokens->forward(ids);  // [B,T,d]
    const auto [cos, sin] = rope_tables(T, x.device(), x.scalar_type());
    auto mask = torch::ones({T, T}, torch::TensorOptions().dtype(torch::kBool).device(x.device())).triu(1);
    const std::int64_t H = c.num_attention_heads, KV = c.num_key_value_heads, D = c.head_dim;
    const double scale = 1.0 / std::sqrt(static_cast<double>(D));
    std::size_t q = 0;
    auto proj = [&](nn::Linear& l, const torch::Tensor& in) { return captured(q++, in, l->forward(in)); };
    for (auto& layer : n.model->layers) {
      auto& at = *layer->self_attn;
      auto h = layer->input_layernorm->forward(x);
      auto qs = proj(at.q_proj, h).view({B, T, H, D}).transpose(1, 2);
      auto ks = proj(at.k_proj, h).view({B, T, KV, D}).transpose(1, 2);
      auto vs = proj(at.v_proj, h).view({B, T, KV, D}).transpose(1, 2);
      qs = qs * cos + rotate_half(qs) * sin;
      ks = ks * cos + rotate_half(ks) * sin;
      if (KV != H) {  // grouped-query attention: kv head j serves query heads j*g .. j*g+g-1
        ks = ks.repeat_interleave(H / KV, 1);
        vs = vs.repeat_interleave(H / KV, 1);
      }
      auto scores = torch::matmul(qs, ks.transpose(-2, -1)) * scale;
      scores = scores.masked_fill(mask, -std::numeric_limits<float>::infinity());
      auto probs = torch::softmax(scores, -1, torch::kFloat).to(qs.scalar_type());
      auto attn = torch::matmul(probs, vs).transpose(1, 2).reshape({B, T, H * D});
      x = x + proj(at.o_proj, attn);
      auto& mlp = *layer->mlp;
      auto h2 = layer->post_attention_layernorm->forward(x);
      // Separate statements: operand evaluation order is unspecified in C++, and the capture
      // indices must follow forward order (gate before up).
      auto gate = proj(mlp.gate_proj, h2);
      auto up = proj(mlp.up_proj, h2);
      auto act = torch::silu(gate) * up;
      x = x + proj(mlp.down_proj, act);
    }
    x = n.model->norm->forward(x);
    torch::Tensor out;
    if (c.tie_word_embeddings) {
      auto o = torch::linear(x, n.model->embed_tokens->weight);
      out = quantize_lm_head_ ? captured(q++, x, o) : o;
    } else {
      out = quantize_lm_head_ ? proj(n.lm_head, x) : n.lm_head->forward(x);
    }
    return out.reshape({B * T, c.vocab_size}).to(torch::kFloat);
  }

  const LlamaConfig& config() const { return config_; }

 private:
  LlamaConfig read_config(const Params& p) {
    std::string ckpt = p.get_string("checkpoint", "");
    if (ckpt.empty()) {
      LlamaConfig c;
      auto req = [&](const char* k) {
        if (!p.has(k))
          throw ConfigError(p.where() + ": llama needs `checkpoint:` (a Hugging Face folder) or the architecture inline; `" +
                            std::string(k) + "` is missing");
        return static_cast<std::int64_t>(p.get_int(k, 0));
      };
      c.hidden_size = req("hidden_size");
      c.intermediate_size = req("intermediate_size");
      c.num_hidden_layers = req("num_hidden_layers");
      c.num_attention_heads = req("num_attention_heads");
      c.vocab_size = req("vocab_size");
      c.num_key_value_heads = p.get_int("num_key_value_heads", c.num_attention_heads);
      c.head_dim = p.get_int("head_dim", c.num_attention_heads > 0 ? c.hidden_size / c.num_attention_heads : 0);
      c.max_position_embeddings = p.get_int("max_position_embeddings", 2048);
      c.rms_norm_eps = p.get_double("rms_norm_eps", 1e-6);
      c.rope_theta = p.get_double("rope_theta", 10000.0);
      c.tie_word_embeddings = p.get_bool("tie_word_embeddings", false);
      c.bos_token_id = p.get_int("bos_token_id", 1);
      c.eos_token_id = p.get_int("eos_token_id", 2);
      c.initializer_range = p.get_double("initializer_range", 0.02);
      c.validate(p.where(), true);
      return c;
    }
    for (const auto& k : kArchKeys)
      if (p.has(k))
        throw ConfigError(p.where(k) + ": `" + k + "` comes from the checkpoint's config.json; give either `checkpoint:` "
                          "or the architecture inline, not both");
    // A path to a .safetensors file means its folder.
    if (ckpt.size() > 12 && ckpt.compare(ckpt.size() - 12, 12, ".safetensors") == 0 && !std::filesystem::is_directory(ckpt))
      ckpt = dir_name(ckpt);
    if (!std::filesystem::is_directory(ckpt)) throw UserError(p.where("checkpoint") + ": LLaMA checkpoint folder not found: " + ckpt);
    const std::string cfg = ckpt + "/config.json";
    if (!file_exists(cfg)) throw FormatError(cfg + ": missing (a Hugging Face LLaMA folder needs config.json)");
    folder_ = ckpt;
    return LlamaConfig::from_json(read_file(cfg), cfg);
  }

  void init_weights(std::uint64_t seed) {
    // transformers' init: N(0, initializer_range) for linear and embedding weights, ones for norms.
    torch::NoGradGuard ng;
    auto gen = at::detail::createCPUGenerator(seed);
    for (auto& p : net_->named_parameters()) {
      const auto& name = p.key();
      if (name.find("norm") != std::string::npos) p.value().fill_(1.0);
      else p.value().normal_(0.0, config_.initializer_range, gen);
    }
  }

  std::pair<torch::Tensor, torch::Tensor> rope_tables(std::int64_t T, const torch::Device& dev, torch::ScalarType st) {
    if (!cos_.defined() || cos_.size(0) < T || cos_.device() != dev) {
      auto pos = torch::arange(std::max<std::int64_t>(T, 1), torch::kFloat);
      auto freqs = torch::outer(pos, inv_freq_);  // [T, D/2]
      auto emb = torch::cat({freqs, freqs}, -1);
      cos_ = emb.cos().to(dev);
      sin_ = emb.sin().to(dev);
    }
    return {cos_.slice(0, 0, T).to(st), sin_.slice(0, 0, T).to(st)};
  }

  void collect() {
    auto& n = *net_;
    const auto& c = config_;
    auto add = [&](const std::string& name, const std::string& role, nn::Linear& l, std::int64_t head_dim) {
      QuantWeight w;
      w.info.name = name;
      w.info.role = role;
      w.info.shape = l->weight.sizes().vec();
      w.info.head_dim = head_dim;
      w.weight = l->weight;
      weights_.push_back(w);
    };
    for (std::int64_t i = 0; i < c.num_hidden_layers; ++i) {
      auto& layer = n.model->layers[static_cast<std::size_t>(i)];
      const std::string pre = "model.layers." + std::to_string(i) + ".";
      add(pre + "self_attn.q_proj.weight", "q_proj", layer->self_attn->q_proj, c.head_dim);
      add(pre + "self_attn.k_proj.weight", "k_proj", layer->self_attn->k_proj, c.head_dim);
      add(pre + "self_attn.v_proj.weight", "v_proj", layer->self_attn->v_proj, c.head_dim);
      add(pre + "self_attn.o_proj.weight", "o_proj", layer->self_attn->o_proj, c.head_dim);
      add(pre + "mlp.gate_proj.weight", "gate_proj", layer->mlp->gate_proj, 0);
      add(pre + "mlp.up_proj.weight", "up_proj", layer->mlp->up_proj, 0);
      add(pre + "mlp.down_proj.weight", "down_proj", layer->mlp->down_proj, 0);
    }
    if (quantize_lm_head_) {
      QuantWeight w;
      w.info.role = "lm_head";
      if (c.tie_word_embeddings) {
        // Tied: the head IS the embedding matrix, so quantising it also quantises the lookup table.
        w.info.name = "model.embed_tokens.weight";
        w.weight = n.model->embed_tokens->weight;
      } else {
        w.info.name = "lm_head.weight";
        w.weight = n.lm_head->weight;
      }
      w.info.shape = w.weight.sizes().vec();
      weights_.push_back(w);
    }
  }

  std::string folder_;  // set by read_config(), so declared (and constructed) before config_
  LlamaConfig config_;
  LlamaNet net_;
  bool quantize_lm_head_ = false;
  torch::Tensor inv_freq_, cos_, sin_;
  std::vector<QuantWeight> weights_;
};

}  // namespace

std::unique_ptr<Model> make_llama(const Params& p) {
  auto m = std::make_unique<LlamaModel>(p);
  p.check_all_used();
  return m;
}

const LlamaConfig& llama_config(const Model& m) {
  auto* l = dynamic_cast<const LlamaModel*>(&m);
  if (!l) throw UserError("expected a llama model, got " + m.family());
  return l->config();
}

void save_llama(Model& m, const std::string& folder, const std::string& dtype_in, std::int64_t max_shard_bytes) {
  const LlamaConfig& c = llama_config(m);
  const std::string dtype = dtype_in.empty() ? dtype_from_torch_name(c.torch_dtype) : dtype_in;
  if (torch_name_from_dtype(dtype).empty()) throw UserError("save_llama: dtype must be F32, F16 or BF16, got '" + dtype + "'");
  make_dirs(folder);
  std::vector<SafeTensorOut> tensors;
  std::int64_t total = 0;
  for (const auto& p : m.module().named_parameters()) {
    tensors.push_back(to_safetensor(p.key(), p.value(), dtype));
    total += static_cast<std::int64_t>(tensors.back().bytes.size());
  }
  LlamaConfig saved = c;
  saved.torch_dtype = torch_name_from_dtype(dtype);
  const std::map<std::string, std::string> meta = {{"format", "pt"}};
  namespace fsys = std::filesystem;
  // A folder rewritten in the other layout must not keep stale files the loader would prefer.
  std::error_code ec;
  for (const auto& e : fsys::directory_iterator(folder, ec)) {
    const std::string n = e.path().filename().string();
    if (n == "model.safetensors.index.json" || n == "model.safetensors" ||
        (n.rfind("model-", 0) == 0 && n.find("-of-") != std::string::npos))
      fsys::remove(e.path(), ec);
  }
  if (max_shard_bytes <= 0 || total <= max_shard_bytes) {
    write_safetensors(folder + "/model.safetensors", tensors, meta);
  } else {
    std::vector<std::vector<SafeTensorOut>> shards(1);
    std::int64_t in_shard = 0;
    for (auto& t : tensors) {
      const auto sz = static_cast<std::int64_t>(t.bytes.size());
      if (in_shard > 0 && in_shard + sz > max_shard_bytes) {
        shards.emplace_back();
        in_shard = 0;
      }
      shards.back().push_back(std::move(t));
      in_shard += sz;
    }
    json index = {{"metadata", {{"total_size", total}}}, {"weight_map", json::object()}};
    char name[64];
    for (std::size_t k = 0; k < shards.size(); ++k) {
      std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", k + 1, shards.size());
      for (const auto& t : shards[k]) index["weight_map"][t.name] = name;
      write_safetensors(folder + "/" + name, shards[k], meta);
    }
    write_file_atomic(folder + "/model.safetensors.index.json", index.dump(2) + "\n");
  }
  write_file_atomic(folder + "/config.json", saved.to_json() + "\n");
}

HAWQ_REGISTER_MODEL("llama", LlamaModel)

}  // namespace hawq
