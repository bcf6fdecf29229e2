// GPTQ quantizer: layer reconstruction error below RTN's at the same widths (uniform, grouped,
// act-order, mixed per-block widths), values on each block's grid, sequential multi-layer models,
// ResNet convolutions and the LLaMA family.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>

#include "hawq/errors.h"
#include "hawq/llama.h"
#include "hawq/model.h"
#include "hawq/params.h"
#include "hawq/partition.h"
#include "hawq/quantizer.h"
#include "hawq/registry.h"

namespace {

using hawq::Batch;
using hawq::Params;

// A stack of bias-free linear layers (tanh between them), enough to drive the quantizer through
// the Model interface: inputs are captured with Model::captured like the real families do.
class LinearStack : public hawq::Model {
 public:
  LinearStack(const std::vector<std::int64_t>& dims, std::uint64_t seed) {
    auto gen = at::detail::createCPUGenerator(seed);
    for (std::size_t i = 0; i + 1 < dims.size(); ++i) {
      auto l = torch::nn::Linear(torch::nn::LinearOptions(dims[i], dims[i + 1]).bias(false));
      {
        torch::NoGradGuard ng;
        l->weight.normal_(0, 1.0 / std::sqrt(static_cast<double>(dims[i])), gen);
      }
      net_->register_module("l" + std::to_string(i), l);
      layers_.push_back(l);
      hawq::QuantWeight w;
      w.info.name = "l" + std::to_string(i) + ".weight";
      w.info.role = "linear";
      w.info.shape = l->weight.sizes().vec();
      w.weight = l->weight;
      weights_.push_back(w);
    }
  }
  std::string family() const override { return "stack"; }
  torch::nn::Module& module() override { return *net_; }
  std::vector<hawq::QuantWeight> quantizable() override { return weights_; }
  torch::Tensor logits(const Batch& b) override {
    auto x = b.input;
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      x = captured(i, x, layers_[i]->forward(x));
      if (i + 1 < layers_.size()) x = torch::tanh(x);
    }
    return x;
  }
  torch::Tensor labels(const Batch& b) const override { return b.target; }
  std::string config_json() const override { return "{}"; }
  std::string metric_name() const override { return "top1"; }

 private:
  std::shared_ptr<torch::nn::Module> net_ = std::make_shared<torch::nn::Module>();
  std::vector<torch::nn::Linear> layers_;
  std::vector<hawq::QuantWeight> weights_;
};

// Correlated inputs (as real activations are): X = Z·A with a random mixing matrix and
// unequal feature scales, so H is far from diagonal and error feedback matters.
std::vector<Batch> correlated_inputs(std::int64_t cols, std::int64_t rows, std::int64_t batches, std::uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  auto A = torch::randn({cols, cols}, gen) / std::sqrt(static_cast<double>(cols)) +
           torch::diag(torch::rand({cols}, gen) * 2);
  std::vector<Batch> out;
  for (std::int64_t b = 0; b < batches; ++b) {
    auto z = torch::randn({rows, cols}, gen);
    out.push_back({z.mm(A), torch::zeros({rows}, torch::kLong)});
  }
  return out;
}

std::unique_ptr<hawq::Quantizer> quantizer(const std::string& name, const std::string& yaml = "{}") {
  return hawq::Registry<hawq::Quantizer>::instance().create(name, Params::from_yaml(yaml));
}

// ‖(W'−W)X‖_F over all calibration rows, for layer 0 of the model.
double reconstruction_error(const torch::Tensor& w0, const torch::Tensor& w1, const std::vector<Batch>& xs) {
  double s = 0;
  for (const auto& b : xs) s += (b.input.mm((w1 - w0).t())).pow(2).sum().item<double>();
  return std::sqrt(s);
}

struct Run {
  double gptq, rtn;
  torch::Tensor w0, wq;
};

Run compare(std::int64_t rows, std::int64_t cols, const std::string& policy, const std::vector<int>& bits_or_one,
            const std::string& gptq_yaml, const std::string& rtn_yaml, std::uint64_t seed) {
  LinearStack m({cols, rows}, seed);
  auto xs = correlated_inputs(cols, 256, 4, seed + 100);
  auto part = hawq::make_partition(m.weight_infos(), policy);
  std::vector<int> bits = bits_or_one;
  if (bits.size() == 1) bits.assign(part.blocks.size(), bits_or_one[0]);
  EXPECT_EQ(bits.size(), part.blocks.size());
  hawq::QuantizeContext ctx;
  ctx.calibration = xs;
  auto w0 = m.quantizable()[0].weight.detach().clone();
  m.snapshot();
  quantizer("gptq", gptq_yaml)->quantize(m, part, bits, ctx);
  auto wq = m.quantizable()[0].weight.detach().clone();
  const double g = reconstruction_error(w0, wq, xs);
  m.restore();
  quantizer("rtn", rtn_yaml)->quantize(m, part, bits, ctx);
  const double r = reconstruction_error(w0, m.quantizable()[0].weight.detach(), xs);
  return {g, r, w0, wq};
}

TEST(Gptq, BeatsRtnOnRandomLayers) {
  for (std::uint64_t seed : {1, 2, 3})
    for (int b : {2, 3, 4, 8}) {
      auto r = compare(48, 96, "layer", {b}, "{}", "{}", seed);
      EXPECT_LT(r.gptq, r.rtn) << "seed " << seed << " bits " << b;
      EXPECT_GT(r.gptq, 0);
    }
}

TEST(Gptq, BeatsRtnWithGroupsAndActOrder) {
  for (std::uint64_t seed : {4, 5}) {
    for (const char* order : {"natural", "act_order"}) {
      auto r = compare(40, 160, "layer", {3}, std::string("{group_size: 32, order: ") + order + ", block_size: 48}",
                       "{group_size: 32}", seed);
      EXPECT_LT(r.gptq, r.rtn) << "seed " << seed << " order " << order;
    }
    auto asym = compare(40, 96, "layer", {3}, "{symmetric: false}", "{symmetric: false}", seed);
    EXPECT_LT(asym.gptq, asym.rtn) << "asymmetric, seed " << seed;
  }
}

TEST(Gptq, LazyBatchSizeDoesNotChangeTheResult) {
  // Lazy batches only defer the same updates, so every block size gives the same weights; with
  // dynamic groups this also checks the pending-feedback view of groups that cross a batch edge.
  for (const std::string opts : {"", "group_size: 32, ", "group_size: 32, order: act_order, ", "symmetric: false, "}) {
    torch::Tensor first;
    for (int bs : {1, 7, 50, 128}) {
      auto r = compare(24, 100, "tile:8x40", {3}, "{" + opts + "block_size: " + std::to_string(bs) + "}", "{}", 31);
      if (!first.defined()) first = r.wq;
      else EXPECT_LT((r.wq - first).abs().max().item<double>(), 1e-5) << opts << "block_size " << bs;
    }
  }
}

TEST(Gptq, DiagonalHessianReducesToRtn) {
  // Uncorrelated inputs give a diagonal H: no error feedback, so GPTQ must equal RTN (same grid).
  for (const std::string opts : {"{}", "{group_size: 16}", "{symmetric: false}", "{order: act_order}"}) {
    LinearStack m({48, 20}, 17);
    hawq::QuantizeContext ctx;
    ctx.calibration.push_back({torch::diag(torch::linspace(0.5, 3.0, 48)), torch::zeros({48}, torch::kLong)});
    auto part = hawq::make_partition(m.weight_infos(), "tile:8x24");
    std::vector<int> bits(part.blocks.size());
    for (std::size_t i = 0; i < bits.size(); ++i) bits[i] = 2 + static_cast<int>(i % 4);
    m.snapshot();
    quantizer("gptq", opts)->quantize(m, part, bits, ctx);
    auto g = m.quantizable()[0].weight.detach().clone();
    m.restore();
    const std::string rtn_opts = opts.find("act_order") != std::string::npos ? "{}" : opts;
    quantizer("rtn", rtn_opts)->quantize(m, part, bits, ctx);
    EXPECT_LT((g - m.quantizable()[0].weight).abs().max().item<double>(), 1e-5) << opts;
  }
}

// Every element of a block lies on that block's symmetric per-row grid built from the ORIGINAL
// weights (per-channel GPTQ keeps the reference's static scales).
void expect_on_block_grids(const torch::Tensor& w0, const torch::Tensor& wq, const hawq::Partition& part,
                           const std::vector<int>& bits) {
  for (std::size_t i = 0; i < part.blocks.size(); ++i) {
    const auto& b = part.blocks[i];
    auto o = w0.slice(0, b.row0, b.row1).slice(1, b.col0, b.col1).to(torch::kDouble);
    auto q = wq.slice(0, b.row0, b.row1).slice(1, b.col0, b.col1).to(torch::kDouble);
    if (bits[i] == 0) continue;
    const double qmax = bits[i] == 1 ? 1 : std::pow(2.0, bits[i] - 1) - 1;
    auto s = o.abs().amax(1, true) / qmax;
    auto k = q / s;
    EXPECT_LT((k - k.round()).abs().max().item<double>(), 1e-3) << b.name << " bits " << bits[i];
    EXPECT_LE(k.abs().max().item<double>(), qmax + 1e-3) << b.name;
  }
}

TEST(Gptq, MixedWidthsPerBlockBeatRtnAndStayOnGrids) {
  for (std::uint64_t seed : {7, 8, 9}) {
    LinearStack probe({64, 32}, seed);
    auto part = hawq::make_partition(probe.weight_infos(), "tile:8x16");
    std::mt19937 rng(static_cast<unsigned>(seed));
    std::vector<int> bits(part.blocks.size());
    const int choices[] = {2, 3, 4, 8};
    for (auto& b : bits) b = choices[rng() % 4];
    auto r = compare(32, 64, "tile:8x16", bits, "{block_size: 24}", "{}", seed);
    EXPECT_LT(r.gptq, r.rtn) << "seed " << seed;
    expect_on_block_grids(r.w0, r.wq, part, bits);
    // A different width in every column of the first block row: the column really is mixed.
    std::set<int> widths_in_col0;
    for (std::size_t i = 0; i < part.blocks.size(); ++i)
      if (part.blocks[i].col0 == 0) widths_in_col0.insert(bits[i]);
    EXPECT_GE(widths_in_col0.size(), 2u);
  }
}

TEST(Gptq, ZeroBitBlocksAreNotRounded) {
  LinearStack m({32, 16}, 3);
  auto part = hawq::make_partition(m.weight_infos(), "channel:8");
  ASSERT_EQ(part.blocks.size(), 2u);
  hawq::QuantizeContext ctx;
  ctx.calibration = correlated_inputs(32, 128, 2, 1);
  auto w0 = m.quantizable()[0].weight.detach().clone();
  // All zero: untouched.
  quantizer("gptq")->quantize(m, part, {0, 0}, ctx);
  EXPECT_TRUE(torch::equal(w0, m.quantizable()[0].weight));
  // Rows 0-7 at 0 bits keep full precision (row-wise GPTQ gives no feedback across rows).
  quantizer("gptq")->quantize(m, part, {0, 3}, ctx);
  auto wq = m.quantizable()[0].weight.detach();
  EXPECT_TRUE(torch::equal(w0.slice(0, 0, 8), wq.slice(0, 0, 8)));
  expect_on_block_grids(w0, wq, part, {0, 3});
}

TEST(Gptq, SensitivityOrderUsesBlockSensitivities) {
  LinearStack m({64, 16}, 12);
  auto part = hawq::make_partition(m.weight_infos(), "tile:16x16");
  hawq::QuantizeContext ctx;
  ctx.calibration = correlated_inputs(64, 256, 2, 3);
  ctx.block_sensitivity = {0.1, 5.0, 0.2, 1.0};
  auto w0 = m.quantizable()[0].weight.detach().clone();
  m.snapshot();
  quantizer("gptq", "{order: sensitivity}")->quantize(m, part, {3, 3, 3, 3}, ctx);
  auto ws = m.quantizable()[0].weight.detach().clone();
  m.restore();
  quantizer("gptq", "{order: act_order}")->quantize(m, part, {3, 3, 3, 3}, ctx);
  auto wa = m.quantizable()[0].weight.detach().clone();
  EXPECT_FALSE(torch::equal(ws, wa)) << "sensitivity order should differ from act_order here";
  expect_on_block_grids(w0, ws, part, {3, 3, 3, 3});
  // Without sensitivities (uniform points) it is act_order.
  m.restore();
  ctx.block_sensitivity.clear();
  quantizer("gptq", "{order: sensitivity}")->quantize(m, part, {3, 3, 3, 3}, ctx);
  EXPECT_TRUE(torch::equal(m.quantizable()[0].weight, wa));
  // Wrong count is an error.
  ctx.block_sensitivity = {1.0};
  EXPECT_THROW(quantizer("gptq", "{order: sensitivity}")->quantize(m, part, {3, 3, 3, 3}, ctx), hawq::UserError);
}

TEST(Gptq, SequentialUsesQuantizedInputs) {
  // Two layers: in sequential mode the second layer's Hessian comes from the quantised first layer.
  LinearStack a({24, 32, 8}, 21), b({24, 32, 8}, 21);
  auto part = hawq::make_partition(a.weight_infos(), "layer");
  hawq::QuantizeContext ctx;
  ctx.calibration = correlated_inputs(24, 128, 2, 4);
  quantizer("gptq", "{sequential: true}")->quantize(a, part, {2, 2}, ctx);
  quantizer("gptq", "{sequential: false}")->quantize(b, part, {2, 2}, ctx);
  EXPECT_TRUE(torch::equal(a.quantizable()[0].weight, b.quantizable()[0].weight));
  EXPECT_FALSE(torch::equal(a.quantizable()[1].weight, b.quantizable()[1].weight));
}

TEST(Gptq, RejectsBadSettingsAndMissingCalibration) {
  EXPECT_THROW(quantizer("gptq", "{order: random}"), hawq::ConfigError);
  EXPECT_THROW(quantizer("gptq", "{group_size: -1}"), hawq::ConfigError);
  EXPECT_THROW(quantizer("gptq", "{blocksize: 64}"), hawq::ConfigError);
  LinearStack m({8, 8}, 1);
  auto part = hawq::make_partition(m.weight_infos(), "layer");
  EXPECT_THROW(quantizer("gptq")->quantize(m, part, {4}, {}), hawq::UserError);
}

TEST(Gptq, QuantizesResNetConvolutions) {
  auto model = hawq::Registry<hawq::Model>::instance().create(
      "resnet", Params::from_yaml("{arch: resnet18, width: 4, stem: small, in_channels: 1, num_classes: 10}"));
  auto gen = at::detail::createCPUGenerator(5);
  hawq::QuantizeContext ctx;
  for (int i = 0; i < 2; ++i) ctx.calibration.push_back({torch::randn({8, 1, 12, 12}, gen), torch::zeros({8}, torch::kLong)});
  auto part = hawq::make_partition(model->weight_infos(), "channel:4");
  std::vector<int> bits(part.blocks.size(), 4);
  std::vector<torch::Tensor> before;
  for (const auto& w : model->quantizable()) before.push_back(w.weight.detach().clone());
  quantizer("gptq")->quantize(*model, part, bits, ctx);
  auto ws = model->quantizable();
  for (std::size_t i = 0; i < ws.size(); ++i) {
    auto q = ws[i].weight.detach().reshape({ws[i].info.rows(), -1});
    EXPECT_TRUE(torch::isfinite(q).all().item<bool>()) << ws[i].info.name;
    EXPECT_FALSE(torch::equal(q, before[i].reshape(q.sizes()))) << ws[i].info.name;
    std::vector<int> wb;
    hawq::Partition one;
    for (std::size_t bi : part.blocks_of(i)) {
      auto blk = part.blocks[bi];
      one.blocks.push_back(blk);
      wb.push_back(4);
    }
    expect_on_block_grids(before[i].reshape(q.sizes()), q, one, wb);
  }
  torch::NoGradGuard ng;
  EXPECT_TRUE(torch::isfinite(model->logits(ctx.calibration[0])).all().item<bool>());
}

TEST(Gptq, QuantizesLlamaWithHeadPartitionBetterThanRtn) {
  const std::string arch =
      "{hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, "
      "vocab_size: 61, initializer_range: 0.1, init_seed: 2}";
  auto model = hawq::Registry<hawq::Model>::instance().create("llama", Params::from_yaml(arch));
  auto gen = at::detail::createCPUGenerator(9);
  hawq::QuantizeContext ctx;
  for (int i = 0; i < 2; ++i) {
    auto ids = torch::randint(0, 61, {4, 24}, gen, torch::kLong);
    auto tgt = torch::full_like(ids, -100);
    tgt.slice(1, 0, 23).copy_(ids.slice(1, 1));
    ctx.calibration.push_back({ids, tgt});
  }
  auto part = hawq::make_partition(model->weight_infos(), "head");
  std::vector<int> bits(part.blocks.size());
  for (std::size_t i = 0; i < bits.size(); ++i) bits[i] = 2 + static_cast<int>(i % 3);
  ctx.block_sensitivity.assign(part.blocks.size(), 1.0);
  torch::NoGradGuard ng;
  auto ref = model->logits(ctx.calibration[0]);
  model->snapshot();
  quantizer("gptq", "{order: sensitivity}")->quantize(*model, part, bits, ctx);
  const double gptq_err = (model->logits(ctx.calibration[0]) - ref).pow(2).mean().item<double>();
  model->restore();
  quantizer("rtn")->quantize(*model, part, bits, ctx);
  const double rtn_err = (model->logits(ctx.calibration[0]) - ref).pow(2).mean().item<double>();
  EXPECT_TRUE(std::isfinite(gptq_err));
  EXPECT_LT(gptq_err, rtn_err);
}

}  // namespace
