// LLaMA family: logits against an independent float64 reference written with HF's conventions,
// Hugging Face folder round trips (single file, sharded + index, bf16), config.json errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include <nlohmann/json.hpp>

#include "hawq/dataset.h"
#include "hawq/errors.h"
#include "hawq/fs.h"
#include "hawq/llama.h"
#include "hawq/model.h"
#include "hawq/params.h"
#include "hawq/registry.h"
#include "hawq/text_data.h"

namespace {

namespace fsys = std::filesystem;
using hawq::Batch;
using hawq::Model;
using hawq::Params;

std::string temp_dir(const std::string& tag) {
  static std::mt19937_64 rng(std::random_device{}());
  auto p = fsys::temp_directory_path() / ("hawq-" + tag + "-" + std::to_string(rng()));
  fsys::create_directories(p);
  return p.string();
}

struct TempDir {
  explicit TempDir(const std::string& tag) : path(temp_dir(tag)) {}
  ~TempDir() {
    std::error_code ec;
    fsys::remove_all(path, ec);
  }
  std::string path;
};

const char* kTinyArch = R"(
hidden_size: 64
intermediate_size: 96
num_hidden_layers: 2
num_attention_heads: 4
num_key_value_heads: 2
vocab_size: 97
rms_norm_eps: 1.0e-5
rope_theta: 10000.0
initializer_range: 0.15
init_seed: 3
)";

std::unique_ptr<Model> make(const std::string& yaml) {
  return hawq::Registry<Model>::instance().create("llama", Params::from_yaml(yaml));
}

// Random norm weights too, so RMSNorm scaling is exercised.
std::unique_ptr<Model> tiny_model(const std::string& extra = "") {
  auto m = make(std::string(kTinyArch) + extra);
  torch::NoGradGuard ng;
  auto gen = at::detail::createCPUGenerator(11);
  for (auto& p : m->module().named_parameters())
    if (p.key().find("norm") != std::string::npos) p.value().uniform_(0.5, 1.5, gen);
  return m;
}

Batch random_batch(std::int64_t B, std::int64_t T, std::int64_t V, std::uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  auto ids = torch::randint(0, V, {B, T}, gen, torch::kLong);
  auto tgt = torch::full_like(ids, -100);
  tgt.slice(1, 0, T - 1).copy_(ids.slice(1, 1));
  return {ids, tgt};
}

std::map<std::string, torch::Tensor> params_of(Model& m) {
  std::map<std::string, torch::Tensor> out;
  for (auto& p : m.module().named_parameters()) out[p.key()] = p.value().detach().to(torch::kDouble);
  return out;
}

// Independent reference of HF LlamaForCausalLM in float64, written from the HF definitions:
// RMSNorm x·rsqrt(mean(x²)+eps)·w; RoPE with inv_freq = θ^(−2i/d) on (x1, x2) halves,
// x·cos + (−x2, x1)·sin; kv head j shared by query heads j·g..j·g+g−1 (repeat_interleave);
// causal softmax(qkᵀ/√d)v; SwiGLU down(silu(gate x) ⊙ up x); head = lm_head or tied embedding.
torch::Tensor reference_logits(const std::map<std::string, torch::Tensor>& P, const torch::Tensor& ids, std::int64_t d,
                               std::int64_t nh, std::int64_t nkv, std::int64_t layers, double eps, double theta,
                               bool tied) {
  const std::int64_t B = ids.size(0), T = ids.size(1), hd = d / nh;
  auto rms = [&](const torch::Tensor& x, const torch::Tensor& w) {
    return w * (x / torch::sqrt(x.pow(2).mean(-1, true) + eps));
  };
  auto at = [&](const std::string& k) { return P.at(k); };
  auto x = at("model.embed_tokens.weight").index_select(0, ids.reshape({-1})).reshape({B, T, d});
  auto inv = torch::empty({hd / 2}, torch::kDouble);
  for (std::int64_t i = 0; i < hd / 2; ++i) inv[i] = 1.0 / std::pow(theta, 2.0 * i / hd);
  auto ang = torch::arange(T, torch::kDouble).unsqueeze(1) * inv.unsqueeze(0);
  auto cos = torch::cat({ang.cos(), ang.cos()}, 1), sin = torch::cat({ang.sin(), ang.sin()}, 1);
  auto rope = [&](const torch::Tensor& t) {
    auto x1 = t.slice(-1, 0, hd / 2), x2 = t.slice(-1, hd / 2);
    return t * cos + torch::cat({-x2, x1}, -1) * sin;
  };
  auto causal = torch::full({T, T}, -INFINITY, torch::kDouble).triu(1);
  for (std::int64_t l = 0; l < layers; ++l) {
    const std::string pre = "model.layers." + std::to_string(l) + ".";
    auto h = rms(x, at(pre + "input_layernorm.weight"));
    auto q = h.matmul(at(pre + "self_attn.q_proj.weight").t()).reshape({B, T, nh, hd}).permute({0, 2, 1, 3});
    auto k = h.matmul(at(pre + "self_attn.k_proj.weight").t()).reshape({B, T, nkv, hd}).permute({0, 2, 1, 3});
    auto v = h.matmul(at(pre + "self_attn.v_proj.weight").t()).reshape({B, T, nkv, hd}).permute({0, 2, 1, 3});
    q = rope(q);
    k = rope(k);
    k = k.repeat_interleave(nh / nkv, 1);
    v = v.repeat_interleave(nh / nkv, 1);
    auto s = q.matmul(k.transpose(-1, -2)) / std::sqrt(static_cast<double>(hd)) + causal;
    auto o = torch::softmax(s, -1).matmul(v).permute({0, 2, 1, 3}).reshape({B, T, nh * hd});
    x = x + o.matmul(at(pre + "self_attn.o_proj.weight").t());
    auto h2 = rms(x, at(pre + "post_attention_layernorm.weight"));
    auto g = h2.matmul(at(pre + "mlp.gate_proj.weight").t());
    auto u = h2.matmul(at(pre + "mlp.up_proj.weight").t());
    x = x + (g * torch::sigmoid(g) * u).matmul(at(pre + "mlp.down_proj.weight").t());
  }
  x = rms(x, at("model.norm.weight"));
  auto head = tied ? at("model.embed_tokens.weight") : at("lm_head.weight");
  return x.matmul(head.t()).reshape({B * T, -1});
}

TEST(Llama, LogitsMatchIndependentReference) {
  for (bool tied : {false, true}) {
    auto m = tiny_model(tied ? "tie_word_embeddings: true\n" : "");
    auto batch = random_batch(3, 17, 97, 5);
    torch::NoGradGuard ng;
    auto got = m->logits(batch);
    ASSERT_EQ(got.sizes(), (std::vector<std::int64_t>{3 * 17, 97}));
    auto want = reference_logits(params_of(*m), batch.input, 64, 4, 2, 2, 1e-5, 10000.0, tied);
    const double scale = want.abs().max().item<double>();
    EXPECT_GT(scale, 0.5) << "weights too small for a meaningful comparison";
    EXPECT_LT((got.to(torch::kDouble) - want).abs().max().item<double>(), 1e-5 * std::max(1.0, scale)) << "tied=" << tied;
    EXPECT_EQ(m->module().named_parameters().contains("lm_head.weight"), !tied);
  }
}

TEST(Llama, CausalAndBatchIndependent) {
  auto m = tiny_model();
  torch::NoGradGuard ng;
  auto b = random_batch(2, 12, 97, 9);
  auto full = m->logits(b).view({2, 12, 97});
  // Position t must not see later tokens: logits of a prefix equal the prefix of the logits.
  Batch prefix{b.input.slice(1, 0, 7), b.target.slice(1, 0, 7)};
  auto part = m->logits(prefix).view({2, 7, 97});
  EXPECT_TRUE(torch::allclose(part, full.slice(1, 0, 7), 1e-5, 1e-5));
  Batch one{b.input.slice(0, 1, 2), b.target.slice(0, 1, 2)};
  EXPECT_TRUE(torch::allclose(m->logits(one).view({1, 12, 97}), full.slice(0, 1, 2), 1e-5, 1e-5));
}

TEST(Llama, QuantizableWeightsInForwardOrderWithHeadDims) {
  auto m = tiny_model();
  auto ws = m->quantizable();
  ASSERT_EQ(ws.size(), 14u);
  const std::vector<std::string> roles = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  for (std::size_t i = 0; i < ws.size(); ++i) {
    EXPECT_EQ(ws[i].info.role, roles[i % 7]);
    const bool attn = i % 7 < 4;
    EXPECT_EQ(ws[i].info.head_dim, attn ? 16 : 0) << ws[i].info.name;
    EXPECT_TRUE(ws[i].weight.is_same(m->module().named_parameters()[ws[i].info.name])) << ws[i].info.name;
  }
  EXPECT_EQ(ws[1].info.name, "model.layers.0.self_attn.k_proj.weight");
  EXPECT_EQ(ws[1].info.shape, (std::vector<std::int64_t>{32, 64}));
  EXPECT_EQ(ws[13].info.name, "model.layers.1.mlp.down_proj.weight");
  // The head partition cuts q/k/v by head rows and o_proj by head columns.
  auto part = hawq::make_partition(m->weight_infos(), "head");
  std::size_t heads = 0;
  for (const auto& b : part.blocks)
    if (b.name.find("#head") != std::string::npos) ++heads;
  EXPECT_EQ(heads, 2u * (4 + 2 + 2 + 4));
  // lm_head only on request.
  auto mh = tiny_model("quantize_lm_head: true\n");
  ASSERT_EQ(mh->quantizable().size(), 15u);
  EXPECT_EQ(mh->quantizable().back().info.role, "lm_head");
}

// Every quantizable layer reports its input, and that input times Wᵀ is its output.
class CheckCapture : public hawq::LayerCapture {
 public:
  explicit CheckCapture(std::vector<hawq::QuantWeight> ws) : ws_(std::move(ws)) {}
  torch::Tensor on_layer(std::size_t index, const torch::Tensor& input, const torch::Tensor& output) override {
    order.push_back(index);
    auto expect = torch::matmul(input, ws_[index].weight.t());
    const double e = (expect - output).abs().max().item<double>();
    if (e > max_err) worst = index;
    max_err = std::max(max_err, e);
    return output;
  }
  std::vector<std::size_t> order;
  double max_err = 0;
  std::size_t worst = 0;

 private:
  std::vector<hawq::QuantWeight> ws_;
};

TEST(Llama, CapturesEveryQuantizableLayerInOrder) {
  auto m = tiny_model("quantize_lm_head: true\n");
  CheckCapture cap(m->quantizable());
  m->set_capture(&cap);
  torch::NoGradGuard ng;
  m->logits(random_batch(2, 5, 97, 1));
  m->set_capture(nullptr);
  ASSERT_EQ(cap.order.size(), 15u);
  for (std::size_t i = 0; i < cap.order.size(); ++i) EXPECT_EQ(cap.order[i], i);
  EXPECT_LT(cap.max_err, 1e-5) << "layer " << cap.worst;
}

TEST(Llama, SaveAndReloadSingleFileFloat32) {
  TempDir dir("llama-f32");
  auto m = tiny_model();
  hawq::save_llama(*m, dir.path, "F32");
  EXPECT_TRUE(hawq::file_exists(dir.path + "/model.safetensors"));
  auto cfg = nlohmann::json::parse(hawq::read_file(dir.path + "/config.json"));
  EXPECT_EQ(cfg["model_type"], "llama");
  EXPECT_EQ(cfg["architectures"][0], "LlamaForCausalLM");
  EXPECT_EQ(cfg["num_key_value_heads"], 2);
  EXPECT_EQ(cfg["torch_dtype"], "float32");
  auto r = make("checkpoint: " + dir.path + "\n");
  EXPECT_EQ(r->checkpoint_path, dir.path);
  auto b = random_batch(2, 9, 97, 2);
  torch::NoGradGuard ng;
  EXPECT_TRUE(torch::equal(m->logits(b), r->logits(b)));
  // config_json() is the same HF config (the lead's train command writes it beside the weights).
  auto cj = nlohmann::json::parse(r->config_json());
  EXPECT_EQ(cj["hidden_size"], 64);
  EXPECT_EQ(cj["rms_norm_eps"], 1e-5);
}

TEST(Llama, SaveAndReloadShardedBf16WithIndex) {
  TempDir dir("llama-bf16");
  auto m = tiny_model("tie_word_embeddings: true\n");
  hawq::save_llama(*m, dir.path, "BF16", /*max_shard_bytes=*/40000);
  ASSERT_TRUE(hawq::file_exists(dir.path + "/model.safetensors.index.json"));
  EXPECT_FALSE(hawq::file_exists(dir.path + "/model.safetensors"));
  auto index = nlohmann::json::parse(hawq::read_file(dir.path + "/model.safetensors.index.json"));
  std::set<std::string> files;
  for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) files.insert(it.value().get<std::string>());
  ASSERT_GE(files.size(), 2u);
  for (const auto& f : files) {
    EXPECT_TRUE(hawq::file_exists(dir.path + "/" + f));
    EXPECT_EQ(f.rfind("model-0000", 0), 0u) << f;
    EXPECT_NE(f.find("-of-0000" + std::to_string(files.size())), std::string::npos) << f;
  }
  EXPECT_TRUE(index["weight_map"].contains("model.layers.1.mlp.down_proj.weight"));
  EXPECT_FALSE(index["weight_map"].contains("lm_head.weight"));  // tied: HF stores no head
  auto r = make("checkpoint: " + dir.path + "\n");
  EXPECT_EQ(nlohmann::json::parse(r->config_json())["torch_dtype"], "bfloat16");
  // Loaded weights are the bf16 roundings of the originals, computed in float32.
  {
    torch::NoGradGuard ng;
    for (auto& p : m->module().named_parameters()) p.value().copy_(p.value().to(torch::kBFloat16).to(torch::kFloat));
  }
  auto b = random_batch(2, 9, 97, 4);
  torch::NoGradGuard ng;
  EXPECT_TRUE(torch::allclose(m->logits(b), r->logits(b), 0, 1e-6));
  // Re-saving as one file removes the shards so the folder is unambiguous.
  hawq::save_llama(*r, dir.path, "F16");
  EXPECT_TRUE(hawq::file_exists(dir.path + "/model.safetensors"));
  EXPECT_FALSE(hawq::file_exists(dir.path + "/model.safetensors.index.json"));
  auto r2 = make("checkpoint: " + dir.path + "\n");
  EXPECT_LT((r2->logits(b) - r->logits(b)).abs().max().item<double>(), 0.05);
}

// Writes a valid tiny folder, then lets the test corrupt config.json.
std::string tiny_folder(const TempDir& dir) {
  auto m = tiny_model();
  hawq::save_llama(*m, dir.path, "F32");
  return dir.path;
}

void write_config(const std::string& folder, const nlohmann::json& j) {
  std::ofstream(folder + "/config.json") << j.dump();
}

std::string load_error(const std::string& folder) {
  try {
    make("checkpoint: " + folder + "\n");
  } catch (const hawq::UserError& e) {
    return e.what();
  }
  return "";
}

TEST(Llama, ConfigErrorsNameFileAndKey) {
  TempDir dir("llama-cfg");
  const std::string folder = tiny_folder(dir);
  const auto good = nlohmann::json::parse(hawq::read_file(folder + "/config.json"));

  auto j = good;
  j.erase("hidden_size");
  write_config(folder, j);
  auto msg = load_error(folder);
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'hidden_size'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing"), std::string::npos) << msg;

  j = good;
  j["num_attention_heads"] = "four";
  write_config(folder, j);
  msg = load_error(folder);
  EXPECT_NE(msg.find("'num_attention_heads'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("integer"), std::string::npos) << msg;

  j = good;
  j["num_key_value_heads"] = 3;
  write_config(folder, j);
  msg = load_error(folder);
  EXPECT_NE(msg.find("'num_key_value_heads'"), std::string::npos) << msg;

  j = good;
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  write_config(folder, j);
  msg = load_error(folder);
  EXPECT_NE(msg.find("rope_scaling"), std::string::npos) << msg;

  j = good;
  j["vocab_size"] = 98;  // config and weights disagree
  write_config(folder, j);
  msg = load_error(folder);
  EXPECT_NE(msg.find("expects [98,64,]"), std::string::npos) << msg;

  std::ofstream(folder + "/config.json") << "{\"hidden_size\": 64,";
  msg = load_error(folder);
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("JSON"), std::string::npos) << msg;

  fsys::remove(folder + "/config.json");
  msg = load_error(folder);
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;

  // Both checkpoint and inline architecture is ambiguous.
  write_config(folder, good);
  EXPECT_THROW(make("checkpoint: " + folder + "\nhidden_size: 64\n"), hawq::ConfigError);
  // Unknown keys are rejected.
  EXPECT_THROW(make("checkpoint: " + folder + "\nquantise_lm_head: true\n"), hawq::ConfigError);
  // No checkpoint and no architecture.
  EXPECT_THROW(make("dtype: bfloat16\n"), hawq::ConfigError);
}

TEST(Llama, MissingTensorsAndShardsAreNamed) {
  TempDir dir("llama-missing");
  auto m = tiny_model();
  hawq::save_llama(*m, dir.path, "F32", 40000);
  auto index = nlohmann::json::parse(hawq::read_file(dir.path + "/model.safetensors.index.json"));
  const std::string shard = index["weight_map"]["model.norm.weight"];
  fsys::remove(dir.path + "/" + shard);
  auto msg = load_error(dir.path);
  EXPECT_NE(msg.find(shard), std::string::npos) << msg;
}

TEST(Llama, RejectsTokensOutsideVocabulary) {
  auto m = tiny_model();
  Batch b{torch::full({1, 4}, 97, torch::kLong), torch::full({1, 4}, -100, torch::kLong)};
  torch::NoGradGuard ng;
  EXPECT_THROW(m->logits(b), hawq::UserError);
}

TEST(Llama, ZeroWeightsGiveUniformPerplexity) {
  // All-zero weights: every logit is 0, so each prediction has probability 1/V and PPL = V exactly.
  auto m = tiny_model();
  {
    torch::NoGradGuard ng;
    for (auto& p : m->module().parameters()) p.zero_();
  }
  auto b = random_batch(2, 8, 97, 3);
  EXPECT_NEAR(m->evaluate({b, b}), 97.0, 1e-4);  // float32 log-softmax
  EXPECT_EQ(m->metric_name(), "ppl");
}

TEST(Llama, LossHasDoubleBackward) {
  // The full-Hessian oracle differentiates twice through attention and RMSNorm.
  auto m = tiny_model();
  auto b = random_batch(1, 6, 97, 8);
  auto w = m->quantizable()[0].weight;
  auto g = torch::autograd::grad({m->loss(b)}, {w}, {}, true, true)[0];
  auto v = torch::randn_like(w);
  auto hv = torch::autograd::grad({(g * v).sum()}, {w})[0];
  EXPECT_EQ(hv.sizes(), w.sizes());
  EXPECT_TRUE(torch::isfinite(hv).all().item<bool>());
  EXPECT_GT(hv.abs().sum().item<double>(), 0);
}

TEST(Llama, ShippedKjvModelLoadsAndPredicts) {
  const std::string root = HAWQ_SOURCE_DIR;
  const std::string folder = root + "/assets/models/llama-kjv-tiny";
  if (!hawq::file_exists(folder + "/model.safetensors"))
    GTEST_SKIP() << "no trained model in " << folder << " (hawq-bench train configs/train/llama_kjv_tiny.yaml)";
  auto m = make("checkpoint: " + folder + "\n");
  const auto& c = hawq::llama_config(*m);
  EXPECT_EQ(c.vocab_size, 4000);
  EXPECT_EQ(m->quantizable().size(), static_cast<std::size_t>(7 * c.num_hidden_layers));
  const std::string test = root + "/data/kjv/test.txt", tok = folder + "/tokenizer.model";
  if (!hawq::file_exists(test)) GTEST_SKIP() << "no " << test << " (run scripts/prepare_kjv.sh)";
  try {
    hawq::find_tokenize_binary("");
  } catch (const hawq::UserError& e) {
    GTEST_SKIP() << e.what();
  }
  EXPECT_EQ(hawq::tokenizer_info(tok).vocab_size, c.vocab_size);
  auto ds = hawq::Registry<hawq::Dataset>::instance().create(
      "text", Params::from_yaml("{test: " + test + ", tokenizer: " + tok + ", seqlen: 256}"));
  // The full test set gives 25.34 (docs/LLAMA.md); a few windows must be far below the uniform 4000.
  const double ppl = m->evaluate(ds->evaluation(4, 4));
  EXPECT_GT(ppl, 5.0);
  EXPECT_LT(ppl, 60.0);
}

}  // namespace
