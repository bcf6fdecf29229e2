// LLaMA family: a LibTorch module with Hugging Face LlamaForCausalLM's parameter names and math.
//
// Parameter names are exactly Hugging Face's (model.embed_tokens.weight,
// model.layers.{i}.self_attn.{q,k,v,o}_proj.weight, model.layers.{i}.mlp.{gate,up,down}_proj.weight,
// model.layers.{i}.{input,post_attention}_layernorm.weight, model.norm.weight, lm_head.weight — the
// last absent when the embeddings are tied), so a Hugging Face checkpoint folder loads unchanged
// and folders written here load in transformers. docs/LLAMA.md lists what is and is not supported.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "hawq/model.h"

namespace hawq {

struct LlamaConfig {
  std::int64_t hidden_size = 0;              // model width d
  std::int64_t intermediate_size = 0;        // SwiGLU width
  std::int64_t num_hidden_layers = 0;        // decoder layers
  std::int64_t num_attention_heads = 0;      // query heads
  std::int64_t num_key_value_heads = 0;      // key/value heads (GQA); HF default = num_attention_heads
  std::int64_t head_dim = 0;                 // per-head width; HF default = hidden_size / num_attention_heads
  std::int64_t vocab_size = 0;
  std::int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  // rope_scaling: "" (none), "linear" (positions divided by factor) or "llama3" (Llama 3.1 frequency
  // remapping with factor, low_freq_factor, high_freq_factor, original_max_position_embeddings).
  std::string rope_scaling_type;
  double rope_factor = 1.0, rope_low_freq_factor = 1.0, rope_high_freq_factor = 4.0;
  std::int64_t rope_original_max_positions = 8192;
  bool tie_word_embeddings = false;
  std::int64_t bos_token_id = 1, eos_token_id = 2;
  double initializer_range = 0.02;           // std of the normal init (training from scratch)
  std::string torch_dtype = "float32";       // float32 | float16 | bfloat16: dtype written by save_llama

  // Parses Hugging Face config.json text. `where` names the file in errors. Missing required keys
  // (hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, vocab_size), values of
  // the wrong type and inconsistent shapes are FormatErrors naming the file and the key; optional
  // keys take transformers' LlamaConfig defaults.
  static LlamaConfig from_json(const std::string& text, const std::string& where);
  // config.json content (model_type llama, architectures [LlamaForCausalLM]).
  std::string to_json() const;
  // Throws `Error` (FormatError or ConfigError) with `where` if the shapes are inconsistent.
  void validate(const std::string& where, bool config_error) const;
};

// Builds a LLaMA model. `p` holds either `checkpoint:` (a Hugging Face folder with config.json and
// model.safetensors or sharded model-0000k-of-0000n.safetensors + model.safetensors.index.json)
// or the architecture inline (the LlamaConfig keys above, plus `init_seed`) for training from
// scratch; `dtype` (float32|float16|bfloat16) is the storage dtype used when saving (computation
// is float32 on CPU); `quantize_lm_head` (default false) adds lm_head to the quantizable weights.
std::unique_ptr<Model> make_llama(const Params& p);
// The config of a model built by make_llama (throws UserError for other families).
const LlamaConfig& llama_config(const Model& m);

// Writes a Hugging Face folder: config.json and model.safetensors, or, when max_shard_bytes > 0 and
// the weights are larger, model-0000k-of-0000n.safetensors + model.safetensors.index.json.
// `dtype`: "F32", "F16" or "BF16" ("" = the config's torch_dtype). Files are written atomically.
void save_llama(Model& m, const std::string& folder, const std::string& dtype = "", std::int64_t max_shard_bytes = 0);

}  // namespace hawq
