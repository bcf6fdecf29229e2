// Curvature estimators against exact Hessians, Gauss-Newton matrices and hand computations on
// models small enough to form every matrix in double precision (tests/torch/tiny_models.h).
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <numeric>

#include "hawq/errors.h"
#include "hawq/estimator.h"
#include "hawq/oracle.h"
#include "hawq/registry.h"
#include "tiny_models.h"

namespace hawq {
namespace {

using test::TinyModel;
using test::TinySpec;

// The tiny models are far too small to profit from intra-op threads, and on a loaded machine
// OpenMP's spinning threads make them an order of magnitude slower: run each test single-threaded
// and restore the process setting afterwards.
template <class Base>
class SingleThreadedFixture : public Base {
 protected:
  void SetUp() override {
    saved_ = torch::get_num_threads();
    torch::set_num_threads(1);
  }
  void TearDown() override { torch::set_num_threads(saved_); }

 private:
  int saved_ = 1;
};
using SingleThreaded = SingleThreadedFixture<::testing::Test>;
using EstimatorRegistry = SingleThreaded;
using EstimatorHutchinson = SingleThreaded;
using EstimatorDiagonal = SingleThreaded;
using EstimatorHutchpp = SingleThreaded;
using EstimatorKfac = SingleThreaded;
using EstimatorFisher = SingleThreaded;
using EstimatorPowerIteration = SingleThreaded;

std::unique_ptr<Estimator> make(const std::string& name, const std::string& yaml = "{}") {
  return Registry<Estimator>::instance().create(name, Params::from_yaml(yaml));
}

EstimateRequest request(std::int64_t max_hvps, std::uint64_t seed = 0, double rel_tol = 0) {
  EstimateRequest r;
  r.max_hvps = max_hvps;
  r.seed = seed;
  r.rel_tol = rel_tol;
  return r;
}

// A 2-layer MLP (6 → 5 → 3, tanh): 45 weights, 8 examples.
struct Mlp {
  TinyModel model{TinySpec{6, {5}, 3, true}};
  std::vector<Batch> batches{test::tiny_batch(model, 8, 7)};
};

void expect_rel_near(double got, double want, double rel, const std::string& what) {
  EXPECT_NEAR(got, want, rel * std::max(1e-12, std::abs(want))) << what;
}

// ---------------------------------------------------------------- registry and every plugin

TEST_F(EstimatorRegistry, HasAllSix) {
  auto names = Registry<Estimator>::instance().names();
  for (const char* n : {"hutchinson", "hutchpp", "diagonal", "kfac", "fisher", "power_iteration"})
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
}

TEST_F(EstimatorRegistry, RejectsUnknownAndBadParams) {
  EXPECT_THROW(make("kfac", "{fisher_typ: mc}"), ConfigError);
  EXPECT_THROW(make("kfac", "{fisher_type: exact}"), ConfigError);
  EXPECT_THROW(make("kfac", "{fisher_type: type2, mc_samples: 4}"), ConfigError);
  EXPECT_THROW(make("power_iteration", "{per: head}"), ConfigError);
  EXPECT_THROW(make("hutchpp", "{sketch: -1}"), ConfigError);
  EXPECT_THROW(make("hutchinson", "{min_probes: 1}"), ConfigError);
}

class EstimatorEvery : public SingleThreadedFixture<::testing::TestWithParam<std::string>> {};

void expect_finite(const Sensitivity& s, const Partition& part, const std::string& what) {
  ASSERT_EQ(s.blocks.size(), part.blocks.size()) << what;
  EXPECT_FALSE(s.quantity.empty()) << what;
  EXPECT_GT(s.hvps, 0) << what;
  EXPECT_GE(s.seconds, 0.0) << what;
  for (std::size_t b = 0; b < s.blocks.size(); ++b) {
    EXPECT_TRUE(std::isfinite(s.blocks[b].estimate)) << what << " " << part.blocks[b].name;
    EXPECT_TRUE(std::isfinite(s.blocks[b].std_error)) << what << " " << part.blocks[b].name;
    EXPECT_GE(s.blocks[b].std_error, 0.0) << what;
    EXPECT_GT(s.blocks[b].samples, 0) << what;
  }
}

TEST_P(EstimatorEvery, FiniteOnTinyMlpEveryPartitionAndMode) {
  Mlp m;
  for (auto mode : {OracleMode::kFull, OracleMode::kLayerwise}) {
    CurvatureOracle oracle(m.model, m.batches, mode);
    for (const char* policy : {"layer", "tile:2x3", "channel:2"}) {
      auto part = make_partition(m.model.weight_infos(), policy);
      auto s = make(GetParam())->estimate(oracle, part, request(64, 3));
      EXPECT_EQ(s.estimator, GetParam());
      expect_finite(s, part, GetParam() + " " + policy);
    }
  }
}

TEST_P(EstimatorEvery, FiniteOnTinyResNet) {
  auto model = Registry<Model>::instance().create(
      "resnet", Params::from_yaml("{arch: resnet18, width: 4, stem: small, in_channels: 1, num_classes: 4}"));
  torch::manual_seed(5);
  std::vector<Batch> batches = {{torch::randn({4, 1, 8, 8}), torch::randint(0, 4, {4}, torch::kLong)}};
  CurvatureOracle oracle(*model, batches, OracleMode::kFull);
  for (const char* policy : {"layer", "tile:4x16"}) {
    auto part = make_partition(model->weight_infos(), policy);
    // power_iteration needs ≥2 HVPs per layer in full mode: 21 layers.
    auto s = make(GetParam())->estimate(oracle, part, request(GetParam() == "power_iteration" ? 64 : 12, 1));
    expect_finite(s, part, GetParam() + " resnet18 " + policy);
  }
}

INSTANTIATE_TEST_SUITE_P(Estimators, EstimatorEvery, ::testing::ValuesIn(Registry<Estimator>::instance().names()),
                         [](const auto& info) { return info.param; });

// ---------------------------------------------------------------- hutchinson

TEST_F(EstimatorHutchinson, BlockTracesWithinThreeStdErrorsOfExact) {
  Mlp m;
  CurvatureOracle oracle(m.model, m.batches, OracleMode::kFull);
  const auto H = test::exact_hessian(m.model, m.batches);
  const auto off = test::weight_offsets(m.model);
  for (const char* policy : {"layer", "tile:2x3"}) {
    auto part = make_partition(m.model.weight_infos(), policy);
    auto s = make("hutchinson")->estimate(oracle, part, request(400, 11));
    auto exact = test::block_traces(H, part, off);
    EXPECT_EQ(s.hvps, 400);
    ASSERT_EQ(s.raw_samples.size(), 400u);
    double total = 0, total_exact = 0;
    for (std::size_t b = 0; b < exact.size(); ++b) {
      EXPECT_GT(s.blocks[b].std_error, 0.0);
      EXPECT_LE(std::abs(s.blocks[b].estimate - exact[b]), 3 * s.blocks[b].std_error + 1e-12) << part.blocks[b].name;
      total += s.blocks[b].estimate;
      total_exact += exact[b];
    }
    const double mean_raw = std::accumulate(s.raw_samples.begin(), s.raw_samples.end(), 0.0) / 400;
    EXPECT_NEAR(mean_raw, total, 1e-9 * std::abs(total));
    expect_rel_near(H.trace().item<double>(), total_exact, 1e-12, "trace");
  }
}

TEST_F(EstimatorHutchinson, LayerwiseModeMatchesGram) {
  // layerwise: H_w = I_rows ⊗ 2XXᵀ/N, so Tr(H_b) = |rows_b| · Σ_{c∈cols_b} 2(XXᵀ)_cc / N.
  Mlp m;
  CurvatureOracle oracle(m.model, m.batches, OracleMode::kLayerwise);
  auto part = make_partition(m.model.weight_infos(), "tile:2x3");
  auto s = make("hutchinson")->estimate(oracle, part, request(300, 2));
  // Inputs of the two layers, computed here from the model's own modules.
  auto x0 = m.batches[0].input;
  auto w0 = m.model.quantizable()[0].weight;
  auto b0 = *m.model.module().named_parameters().find("fc0.bias");
  auto x1 = torch::tanh(x0.mm(w0.t()) + b0).detach();
  std::vector<torch::Tensor> xs = {x0, x1};
  for (std::size_t bi = 0; bi < part.blocks.size(); ++bi) {
    const auto& b = part.blocks[bi];
    const auto& X = xs[b.weight];
    const double exact = (b.row1 - b.row0) * 2.0 * X.slice(1, b.col0, b.col1).square().sum().item<double>() / X.size(0);
    EXPECT_LE(std::abs(s.blocks[bi].estimate - exact), 3 * s.blocks[bi].std_error + 1e-12) << b.name;
  }
}

TEST_F(EstimatorHutchinson, StopsAtRelativeTolerance) {
  Mlp m;
  CurvatureOracle oracle(m.model, m.batches, OracleMode::kFull);
  auto part = make_partition(m.model.weight_infos(), "layer");
  auto s = make("hutchinson")->estimate(oracle, part, request(5000, 4, 0.1));
  EXPECT_LT(s.hvps, 5000);
  for (const auto& b : s.blocks) EXPECT_LE(b.std_error, 0.1 * std::abs(b.estimate));
}

// ---------------------------------------------------------------- diagonal

TEST_F(EstimatorDiagonal, OneByOneBlocksAreTheExactDiagonal) {
  Mlp m;
  CurvatureOracle oracle(m.model, m.batches, OracleMode::kFull);
  auto part = make_partition(m.model.weight_infos(), "tile:1x1");
  const auto d = test::exact_hessian(m.model, m.batches).diagonal();
  ASSERT_EQ(static_cast<std::int64_t>(part.blocks.size()), d.numel());
  auto s = make("diagonal")->estimate(oracle, part, request(2000, 9));
  EXPECT_EQ(s.quantity, "diag_trace");
  double err2 = 0, ref2 = 0, worst_z = 0;
  for (std::size_t i = 0; i < part.blocks.size(); ++i) {
    const double e = d[static_cast<std::int64_t>(i)].item<double>();
    err2 += std::pow(s.blocks[i].estimate - e, 2);
    ref2 += e * e;
    if (s.blocks[i].std_error > 0) worst_z = std::max(worst_z, std::abs(s.blocks[i].estimate - e) / s.blocks[i].std_error);
    else EXPECT_NEAR(s.blocks[i].estimate, e, 1e-10);  // an element with no off-diagonal coupling is exact
  }
  // 45 elements: the largest of 45 |z| stays below 4 with probability > 99.7%.
  EXPECT_LT(worst_z, 4.0);
  EXPECT_LT(std::sqrt(err2 / ref2), 0.1);
}

TEST_F(EstimatorDiagonal, BlockSumsEqualHutchinsonWithTheSameSeed) {
  Mlp m;
  CurvatureOracle oracle(m.model, m.batches, OracleMode::kFull);
  auto part = make_partition(m.model.weight_infos(), "tile:2x3");
  auto a = make("diagonal")->estimate(oracle, part, request(20, 5));
  auto b = make("hutchinson")->estimate(oracle, part, request(20, 5));
  for (std::size_t i = 0; i < part.blocks.size(); ++i) {
    EXPECT_NEAR(a.blocks[i].estimate, b.blocks[i].estimate, 1e-10 * (1 + std::abs(b.blocks[i].estimate)));
    EXPECT_NEAR(a.blocks[i].std_error, b.blocks[i].std_error, 1e-10 * (1 + b.blocks[i].std_error));
  }
}

// ---------------------------------------------------------------- hutch++

TEST_F(EstimatorHutchpp, ExactWhenTheSketchSpansEveryDirection) {
  // With k = P sketch vectors Q spans the whole space, the residual Π H Π is zero and the
  // deterministic part alone must give every block trace exactly.
  Mlp m;
  CurvatureOracle oracle(m.model, m.batches, OracleMode::kFull);
  const auto H = test::exact_hessian(m.model, m.batches);
  const auto off = test::weight_offsets(m.model);
  const std::int64_t P = off.back();
  auto part = make_partition(m.model.weight_infos(), "tile:2x3");
  auto s = make("hutchpp", "{sketch: " + std::to_string(P) + "}")->estimate(oracle, part, request(2 * P + 4, 1));
  auto exact = test::block_traces(H, part, off);
  for (std::size_t b = 0; b < exact.size(); ++b) {
    EXPECT_NEAR(s.blocks[b].estimate, exact[b], 1e-8 * (1 + std::abs(exact[b]))) << part.blocks[b].name;
    EXPECT_LT(s.blocks[b].std_error, 1e-8 * (1 + std::abs(exact[b])));
  }
  EXPECT_EQ(s.hvps, 2 * P + 4);
}

TEST_F(EstimatorHutchpp, UnbiasedAndLowerVarianceThanHutchinsonAtEqualMatvecs) {
  // Hutch++ pays off when a few eigenvalues dominate, as in trained networks; at a random
  // initialisation this MLP's Hessian has a flat, indefinite spectrum and neither wins. Train first.
  Mlp m;
  test::train(m.model, m.batches, 200, 0.5);
  CurvatureOracle oracle(m.model, m.batches, OracleMode::kFull);
  const auto H = test::exact_hessian(m.model, m.batches);
  const auto off = test::weight_offsets(m.model);
  auto part = make_partition(m.model.weight_infos(), "tile:2x3");
  auto exact = test::block_traces(H, part, off);
  const std::size_t nb = part.blocks.size();
  const int seeds = 50;
  const std::int64_t budget = 24;
  auto hutch = make("hutchinson"), hpp = make("hutchpp");
  std::vector<double> mse_h(nb, 0), mse_p(nb, 0), mean_p(nb, 0), sq_p(nb, 0);
  double tot_h = 0, tot_p = 0, total_exact = std::accumulate(exact.begin(), exact.end(), 0.0);
  for (int seed = 0; seed < seeds; ++seed) {
    auto a = hutch->estimate(oracle, part, request(budget, 1000 + seed));
    auto b = hpp->estimate(oracle, part, request(budget, 1000 + seed));
    EXPECT_EQ(a.hvps, budget);
    EXPECT_EQ(b.hvps, budget);
    double ta = 0, tb = 0;
    for (std::size_t i = 0; i < nb; ++i) {
      mse_h[i] += std::pow(a.blocks[i].estimate - exact[i], 2) / seeds;
      mse_p[i] += std::pow(b.blocks[i].estimate - exact[i], 2) / seeds;
      mean_p[i] += b.blocks[i].estimate / seeds;
      sq_p[i] += b.blocks[i].estimate * b.blocks[i].estimate / seeds;
      ta += a.blocks[i].estimate;
      tb += b.blocks[i].estimate;
    }
    tot_h += std::pow(ta - total_exact, 2) / seeds;
    tot_p += std::pow(tb - total_exact, 2) / seeds;
  }
  // Whole-model and summed per-block squared errors are both smaller for Hutch++.
  std::cout << "[ hutch++  ] " << seeds << " seeds, " << budget << " HVPs: MSE ratio hutch++/hutchinson whole-model "
            << tot_p / tot_h << ", per-block sum " << std::accumulate(mse_p.begin(), mse_p.end(), 0.0) /
                                                       std::accumulate(mse_h.begin(), mse_h.end(), 0.0)
            << "\n";
  EXPECT_LT(tot_p, 0.75 * tot_h) << "whole-model MSE hutch++ " << tot_p << " vs hutchinson " << tot_h;
  const double sum_h = std::accumulate(mse_h.begin(), mse_h.end(), 0.0);
  const double sum_p = std::accumulate(mse_p.begin(), mse_p.end(), 0.0);
  EXPECT_LT(sum_p, 0.75 * sum_h) << "per-block MSE hutch++ " << sum_p << " vs hutchinson " << sum_h;
  // Unbiased: the 50-seed mean of every block is within 4 standard errors of the exact trace.
  for (std::size_t i = 0; i < nb; ++i) {
    const double var = std::max(0.0, sq_p[i] - mean_p[i] * mean_p[i]) * seeds / (seeds - 1);
    EXPECT_LE(std::abs(mean_p[i] - exact[i]), 4 * std::sqrt(var / seeds) + 1e-10) << part.blocks[i].name;
  }
}

// ---------------------------------------------------------------- kfac

std::vector<double> kfac_traces(CurvatureOracle& oracle, const Partition& part, const std::string& yaml, std::uint64_t seed = 0) {
  auto s = make("kfac", yaml)->estimate(oracle, part, request(64, seed));
  EXPECT_EQ(s.quantity, "ggn_trace");
  std::vector<double> out;
  for (const auto& b : s.blocks) out.push_back(b.estimate);
  return out;
}

TEST_F(EstimatorKfac, Type2IsTheExactHessianForOneLinearLayerAndOneSample) {
  // logits = W x + b with one example: H_W = x xᵀ ⊗ (diag p − p pᵀ) = A ⊗ G exactly.
  TinyModel model(TinySpec{7, {}, 4, true, 0, 0, 0, 0, 3});
  std::vector<Batch> batches = {test::tiny_batch(model, 1, 21)};
  CurvatureOracle oracle(model, batches, OracleMode::kFull);
  const auto H = test::exact_hessian(model, batches);
  const auto off = test::weight_offsets(model);
  for (const char* policy : {"layer", "tile:2x3", "tile:1x1"}) {
    auto part = make_partition(model.weight_infos(), policy);
    auto got = kfac_traces(oracle, part, "{fisher_type: type2}");
    auto exact = test::block_traces(H, part, off);
    for (std::size_t b = 0; b < exact.size(); ++b) expect_rel_near(got[b], exact[b], 1e-5, part.blocks[b].name);
  }
}

TEST_F(EstimatorKfac, Type2IsTheExactGgnBlockOfEveryLayerForOneSample) {
  // With one example, A = x xᵀ and G = Jᵀ Λ J for every layer, so A ⊗ G is that layer's exact
  // GGN diagonal block; for the last layer (logits linear in W) the GGN block is the Hessian block.
  TinyModel model(TinySpec{5, {4, 3}, 3, true, 0, 0, 0, 0, 4});
  std::vector<Batch> batches = {test::tiny_batch(model, 1, 22)};
  CurvatureOracle oracle(model, batches, OracleMode::kFull);
  const auto G = test::exact_ggn(model, batches);
  const auto H = test::exact_hessian(model, batches);
  const auto off = test::weight_offsets(model);
  auto part = make_partition(model.weight_infos(), "tile:2x2");
  auto got = kfac_traces(oracle, part, "{fisher_type: type2}");
  auto ggn = test::block_traces(G, part, off);
  auto hess = test::block_traces(H, part, off);
  bool some_differ = false;
  for (std::size_t b = 0; b < ggn.size(); ++b) {
    expect_rel_near(got[b], ggn[b], 1e-5, part.blocks[b].name);
    if (part.blocks[b].weight == 2) expect_rel_near(got[b], hess[b], 1e-5, part.blocks[b].name + " (Hessian)");
    else some_differ |= std::abs(hess[b] - ggn[b]) > 1e-3 * std::abs(ggn[b]);
  }
  EXPECT_TRUE(some_differ) << "hidden layers should carry non-GGN curvature (the test would be vacuous)";
}

TEST_F(EstimatorKfac, Type2ExactForManySamplesWhenInputNormsAreConstant) {
  // Exact: Tr = (1/N) Σ_n ‖x_n,C‖² Tr(B_n,RR); K-FAC: (1/N Σ ‖x_n,C‖²)(1/N Σ Tr B_n,RR). With ±1
  // inputs ‖x_n,C‖² = |C| for every n, so the two agree for every block of the layer reading the
  // input: the Hessian for a single linear layer, the GGN for the first layer of an MLP.
  TinyModel lin(TinySpec{6, {}, 3, true, 0, 0, 0, 0, 5});
  std::vector<Batch> b1 = {test::tiny_batch(lin, 16, 23, true)};
  CurvatureOracle o1(lin, b1, OracleMode::kFull);
  auto part1 = make_partition(lin.weight_infos(), "tile:2x4");
  auto got1 = kfac_traces(o1, part1, "{fisher_type: type2}");
  auto exact1 = test::block_traces(test::exact_hessian(lin, b1), part1, test::weight_offsets(lin));
  for (std::size_t b = 0; b < exact1.size(); ++b) expect_rel_near(got1[b], exact1[b], 1e-5, part1.blocks[b].name);

  TinyModel mlp(TinySpec{6, {4}, 3, true, 0, 0, 0, 0, 6});
  std::vector<Batch> b2 = {test::tiny_batch(mlp, 16, 24, true)};
  CurvatureOracle o2(mlp, b2, OracleMode::kFull);
  auto part2 = make_partition(mlp.weight_infos(), "tile:2x4");
  auto got2 = kfac_traces(o2, part2, "{fisher_type: type2}");
  auto ggn2 = test::block_traces(test::exact_ggn(mlp, b2), part2, test::weight_offsets(mlp));
  for (std::size_t b = 0; b < ggn2.size(); ++b)
    if (part2.blocks[b].weight == 0) expect_rel_near(got2[b], ggn2[b], 1e-5, part2.blocks[b].name);
}

TEST_F(EstimatorKfac, ConvolutionPatchesFollowTheLayerGeometry) {
  // A convolution whose kernel covers the padded image has one output position per example: it
  // is a linear map of the (padded) patch, so with one example K-FAC type2 is its exact GGN block.
  TinySpec spec{2, {}, 3, true, 3, 3, 5, 1, 7};  // 2 channels 3×3 image, 5×5 kernel, padding 1
  TinyModel model(spec);
  std::vector<Batch> batches = {test::tiny_batch(model, 1, 25)};
  CurvatureOracle oracle(model, batches, OracleMode::kFull);
  auto part = make_partition(model.weight_infos(), "channel:1");
  auto got = kfac_traces(oracle, part, "{fisher_type: type2}");
  auto ggn = test::block_traces(test::exact_ggn(model, batches), part, test::weight_offsets(model));
  for (std::size_t b = 0; b < ggn.size(); ++b) expect_rel_near(got[b], ggn[b], 1e-5, part.blocks[b].name);
}

TEST_F(EstimatorKfac, EmpiricalMatchesHandComputationAndMcAveragesToType2) {
  // Single linear layer: output gradient of row n's CE is p_n − e_{y_n}, so empirical K-FAC gives
  // (Σ_R (1/N) Σ_n (p_n − e_yn)_r²)(Σ_C (1/N) Σ_n x_nc²).
  TinyModel model(TinySpec{5, {}, 4, true, 0, 0, 0, 0, 8});
  std::vector<Batch> batches = {test::tiny_batch(model, 12, 26)};
  CurvatureOracle oracle(model, batches, OracleMode::kFull);
  auto part = make_partition(model.weight_infos(), "tile:2x2");
  auto emp = kfac_traces(oracle, part, "{fisher_type: empirical}");
  auto x = batches[0].input;
  auto p = torch::softmax(model.logits(batches[0]), 1).detach();
  auto g = p - torch::one_hot(batches[0].target, 4).to(torch::kDouble);
  const double N = 12;
  for (std::size_t bi = 0; bi < part.blocks.size(); ++bi) {
    const auto& b = part.blocks[bi];
    const double G = g.slice(1, b.row0, b.row1).square().sum().item<double>() / N;
    const double A = x.slice(1, b.col0, b.col1).square().sum().item<double>() / N;
    expect_rel_near(emp[bi], G * A, 1e-10, b.name);
  }
  // mc: E over sampled labels of g gᵀ is diag(p) − p pᵀ, so averaged draws approach type2.
  auto t2 = kfac_traces(oracle, part, "{fisher_type: type2}");
  auto mc = make("kfac", "{fisher_type: mc, mc_samples: 400}")->estimate(oracle, part, request(64, 3));
  for (std::size_t b = 0; b < t2.size(); ++b) {
    EXPECT_EQ(mc.blocks[b].samples, 400);
    EXPECT_GT(mc.blocks[b].std_error, 0.0);
    EXPECT_LE(std::abs(mc.blocks[b].estimate - t2[b]), 4 * mc.blocks[b].std_error) << part.blocks[b].name;
  }
}

// ---------------------------------------------------------------- fisher

TEST_F(EstimatorFisher, EqualsTheExplicitPerExampleMean) {
  Mlp m;
  CurvatureOracle oracle(m.model, m.batches, OracleMode::kFull);
  auto part = make_partition(m.model.weight_infos(), "tile:2x3");
  auto s = make("fisher")->estimate(oracle, part, request(64));
  EXPECT_EQ(s.quantity, "fisher_trace");
  EXPECT_EQ(s.hvps, 8);
  // Per-example gradients computed here, one example at a time.
  const auto& b = m.batches[0];
  std::vector<torch::Tensor> ws;
  for (const auto& q : m.model.quantizable()) ws.push_back(q.weight);
  std::vector<double> want(part.blocks.size(), 0.0), sq(part.blocks.size(), 0.0);
  for (std::int64_t e = 0; e < b.size(); ++e) {
    auto z = m.model.logits({b.input.slice(0, e, e + 1), b.target.slice(0, e, e + 1)});
    auto l = torch::nn::functional::cross_entropy(z, b.target.slice(0, e, e + 1));
    auto g = torch::autograd::grad({l}, ws);
    for (std::size_t bi = 0; bi < part.blocks.size(); ++bi) {
      const auto& blk = part.blocks[bi];
      auto gb = g[blk.weight].reshape({g[blk.weight].size(0), -1}).slice(0, blk.row0, blk.row1).slice(1, blk.col0, blk.col1);
      const double v = gb.square().sum().item<double>();
      want[bi] += v / b.size();
      sq[bi] += v * v;
    }
  }
  for (std::size_t bi = 0; bi < part.blocks.size(); ++bi) {
    expect_rel_near(s.blocks[bi].estimate, want[bi], 1e-10, part.blocks[bi].name);
    const double n = b.size(), var = (sq[bi] - n * want[bi] * want[bi]) / (n - 1);
    expect_rel_near(s.blocks[bi].std_error, std::sqrt(var / n), 1e-8, part.blocks[bi].name + " std_error");
  }
  // Not the squared mean gradient: that is a different, smaller quantity.
  auto grad = oracle.gradient();
  EXPECT_GT(s.blocks[0].estimate, 1.01 * grad[0].reshape({5, -1}).slice(0, 0, 2).slice(1, 0, 3).square().sum().item<double>());
}

// ---------------------------------------------------------------- power iteration

double largest_magnitude_eigenvalue(const torch::Tensor& M) {
  auto ev = torch::linalg::eigvalsh(M, "L");
  const double lo = ev.min().item<double>(), hi = ev.max().item<double>();
  return std::abs(lo) > std::abs(hi) ? lo : hi;
}

TEST_F(EstimatorPowerIteration, MatchesEigvalshOfEveryExactBlock) {
  // Power iteration returns the eigenvalue of largest magnitude (sign kept) of each block's
  // Hessian; compared with torch::linalg::eigvalsh of the exact block matrix.
  Mlp m;
  CurvatureOracle oracle(m.model, m.batches, OracleMode::kFull);
  const auto H = test::exact_hessian(m.model, m.batches);
  const auto off = test::weight_offsets(m.model);
  for (const char* per : {"layer", "block"}) {
    auto part = make_partition(m.model.weight_infos(), "channel:2");
    auto s = make("power_iteration", std::string("{per: ") + per + ", tol: 1.0e-10, max_iter: 3000}")
                 ->estimate(oracle, part, request(100000, 2));
    EXPECT_EQ(s.quantity, "top_eigenvalue");
    for (std::size_t b = 0; b < part.blocks.size(); ++b) {
      torch::Tensor M;
      if (std::string(per) == "layer") {
        auto whole = make_partition(m.model.weight_infos(), "layer");
        M = test::block_matrix(H, whole, off, part.blocks[b].weight);
      } else {
        M = test::block_matrix(H, part, off, b);
      }
      expect_rel_near(s.blocks[b].estimate, largest_magnitude_eigenvalue(M), 1e-3, std::string(per) + " " + part.blocks[b].name);
    }
  }
}

TEST_F(EstimatorPowerIteration, LayerwiseModeSharesHvpsAcrossIndependentBlocks) {
  // layerwise H_w = I ⊗ 2XXᵀ/N: blocks of different weights or row bands are independent, so all
  // row bands iterate in one HVP. tile:2x3 has 2 column tiles per band in both weights → 2 groups.
  Mlp m;
  CurvatureOracle oracle(m.model, m.batches, OracleMode::kLayerwise);
  auto part = make_partition(m.model.weight_infos(), "tile:2x3");
  auto s = make("power_iteration", "{per: block, tol: 1.0e-12, max_iter: 500}")->estimate(oracle, part, request(1000, 3));
  std::int64_t max_iters = 0;
  for (const auto& b : s.blocks) max_iters = std::max(max_iters, b.samples);
  EXPECT_LE(s.hvps, 2 * max_iters);
  auto x0 = m.batches[0].input;
  auto b0 = *m.model.module().named_parameters().find("fc0.bias");
  auto x1 = torch::tanh(x0.mm(m.model.quantizable()[0].weight.t()) + b0).detach();
  std::vector<torch::Tensor> xs = {x0, x1};
  for (std::size_t bi = 0; bi < part.blocks.size(); ++bi) {
    const auto& b = part.blocks[bi];
    auto X = xs[b.weight].slice(1, b.col0, b.col1);
    auto K = 2.0 * X.t().mm(X) / X.size(0);
    expect_rel_near(s.blocks[bi].estimate, largest_magnitude_eigenvalue(K), 1e-3, b.name);
  }
}

TEST_F(EstimatorPowerIteration, TooSmallBudgetIsAnError) {
  Mlp m;
  CurvatureOracle oracle(m.model, m.batches, OracleMode::kFull);
  auto part = make_partition(m.model.weight_infos(), "tile:1x1");
  EXPECT_THROW(make("power_iteration", "{per: block}")->estimate(oracle, part, request(64)), ConfigError);
}

// ---------------------------------------------------------------- oracle HVP paths

using EstimatorOracle = SingleThreaded;

TEST_F(EstimatorOracle, HvpMatchesExactHessianAndFollowsWeightChanges) {
  // One batch: the oracle keeps the gradient graph between HVPs; several batches: recomputed.
  // Both must equal H v, and the kept graph must be rebuilt after the weights change in place.
  Mlp m;
  auto split = std::vector<Batch>{{m.batches[0].input.slice(0, 0, 3), m.batches[0].target.slice(0, 0, 3)},
                                  {m.batches[0].input.slice(0, 3, 8), m.batches[0].target.slice(0, 3, 8)}};
  CurvatureOracle one(m.model, m.batches, OracleMode::kFull), two(m.model, split, OracleMode::kFull);
  auto gen = at::detail::createCPUGenerator(3);
  auto check = [&](const std::string& when) {
    const auto H = test::exact_hessian(m.model, m.batches);
    auto v = CurvatureOracle::rademacher_like(one.zeros_like_weights(), gen);
    std::vector<torch::Tensor> vf;
    for (auto& t : v) vf.push_back(t.reshape(-1));
    auto want = H.mv(torch::cat(vf));
    for (auto* o : {&one, &two}) {
      auto hv = o->hvp(v);
      std::vector<torch::Tensor> hf;
      for (auto& t : hv) hf.push_back(t.reshape(-1));
      EXPECT_LT((torch::cat(hf) - want).norm().item<double>(), 1e-10 * want.norm().item<double>()) << when;
    }
    // Undefined entries are zeros.
    WeightVec half = {v[0], torch::Tensor()};
    auto hv = one.hvp(half);
    auto v0 = torch::cat({v[0].reshape(-1), torch::zeros({v[1].numel()}, torch::kDouble)});
    auto w0 = H.mv(v0);
    EXPECT_LT((torch::cat({hv[0].reshape(-1), hv[1].reshape(-1)}) - w0).norm().item<double>(), 1e-10 * w0.norm().item<double>()) << when;
  };
  check("initial weights");
  {
    torch::NoGradGuard ng;
    m.model.quantizable()[0].weight.mul_(1.5);
  }
  check("after an in-place weight change");
}

}  // namespace
}  // namespace hawq
