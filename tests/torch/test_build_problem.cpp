// build_problem: the allocation problem a point hands to its allocator, in particular the latency
// resource built from a measured latency table.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "hawq/errors.h"
#include "hawq/experiment.h"
#include "hawq/latency.h"
#include "hawq/partition.h"
#include "hawq/sensitivity.h"
#include "hawq/sweep_exec.h"

namespace {

struct Fixture {
  std::vector<hawq::WeightInfo> weights;
  hawq::Partition part;
  hawq::Sensitivity sens;
  std::vector<hawq::BlockStats> stats;
  hawq::LatencyTable table;
  std::map<std::pair<std::int64_t, int>, double> us;  // (rows, bits) -> measured us

  Fixture() {
    weights = {{"a.weight", "linear", {256, 128}, 0}, {"b.weight", "linear", {512, 256}, 0}};
    part = hawq::make_partition(weights, "tile:128x128");
    sens.estimator = "test";
    sens.quantity = "trace";
    for (std::size_t i = 0; i < part.blocks.size(); ++i) {
      sens.blocks.push_back({1.0 + static_cast<double>(i), 0.0, 1});
      stats.push_back({part.blocks[i].numel(), 2.0});
    }
    // Distinct, non-proportional latencies so a wrong share or width shows.
    std::vector<hawq::LatencyEntry> e;
    const std::map<int, double> a_us = {{2, 3.0}, {3, 5.5}, {4, 4.0}, {8, 6.0}, {16, 9.0}};
    const std::map<int, double> b_us = {{2, 7.0}, {3, 12.0}, {4, 9.5}, {8, 15.0}, {16, 30.0}};
    for (const auto& [bits, t] : a_us) {
      e.push_back({256, 128, 1, bits, bits == 16 ? "dense" : "aligned", t});
      us[{256, bits}] = t;
    }
    for (const auto& [bits, t] : b_us) {
      e.push_back({512, 256, 1, bits, bits == 16 ? "dense" : "aligned", t});
      us[{512, bits}] = t;
    }
    table = hawq::LatencyTable(e, "fixture");
  }

  hawq::MethodSpec method(const std::string& latency_budget) const {
    hawq::MethodSpec m;
    m.name = "t";
    m.partition = "tile:128x128";
    m.candidate_bits = {2, 3, 4, 8};
    if (!latency_budget.empty()) m.latency_budget = hawq::parse_latency_budget(latency_budget, "test");
    return m;
  }
};

TEST(BuildProblem, LatencyResourceCarriesEachBlocksShareOfItsWeight) {
  Fixture f;
  const auto m = f.method("uniform:4");
  const auto p = hawq::build_problem(m, f.part, f.sens, f.stats, 4.0, {}, &f.table);
  ASSERT_EQ(p.resources.size(), 2u);
  EXPECT_EQ(p.resources[0].name, "bits");
  EXPECT_EQ(p.resources[1].name, "latency_us");
  ASSERT_EQ(f.part.blocks.size(), 2u + 8u);  // 256x128: 2 tiles; 512x256: 8 tiles
  for (std::size_t i = 0; i < f.part.blocks.size(); ++i) {
    const auto& w = f.part.weights[f.part.blocks[i].weight];
    const double share = static_cast<double>(f.part.blocks[i].numel()) / static_cast<double>(w.numel());
    for (std::size_t j = 0; j < m.candidate_bits.size(); ++j)
      EXPECT_DOUBLE_EQ(p.resources[1].cost[i][j], share * f.us.at({w.rows(), m.candidate_bits[j]}))
          << f.part.blocks[i].name << " at " << m.candidate_bits[j] << " bits";
  }
  // "uniform:4": the all-4-bit model's latency; every block at 4 bits meets it exactly.
  EXPECT_NEAR(p.resources[1].budget, 4.0 + 9.5, 1e-9);
  const auto all4 = hawq::evaluate_allocation(p, std::vector<int>(f.part.blocks.size(), 4));
  EXPECT_NEAR(all4.cost[1], 13.5, 1e-9);
  EXPECT_NEAR(all4.cost[0], 4.0 * (256 * 128 + 512 * 256), 1e-6);
}

TEST(BuildProblem, MixedWidthWeightsCostTheTablesMixedFactor) {
  // A mixed entry measured 1.2x its widths' additive cost: the latency resource groups each
  // weight's blocks and carries that factor, so a weight split over two widths costs what
  // LatencyTable::weight_us estimates, and a weight at one width its plain cost.
  Fixture f;
  std::vector<hawq::LatencyEntry> e = f.table.entries();
  hawq::LatencyEntry mix;
  mix.n = 512, mix.k = 256, mix.m = 1, mix.layout = "aligned", mix.mixed = true, mix.avg_bits = 5;
  mix.mix_shares = {{2, 0.5}, {8, 0.5}};
  mix.us = 1.2 * (0.5 * 7.0 + 0.5 * 15.0);
  e.push_back(mix);
  const hawq::LatencyTable table(e, "fixture+mix");
  ASSERT_NEAR(table.mixed_factor(1), 1.2, 1e-12);
  const auto p = hawq::build_problem(f.method("uniform:4"), f.part, f.sens, f.stats, 4.0, {}, &table);
  const hawq::Resource& lat = p.resources.at(1);
  EXPECT_NEAR(lat.mix_factor, 1.2, 1e-12);
  ASSERT_EQ(lat.mix_group.size(), f.part.blocks.size());
  for (std::size_t i = 0; i < f.part.blocks.size(); ++i)
    EXPECT_EQ(lat.mix_group[i], static_cast<int>(f.part.blocks[i].weight));
  // weight a (blocks 0-1) at 4 bits; weight b's eight tiles half at 2 and half at 8 bits
  std::vector<int> bits(f.part.blocks.size(), 4);
  for (std::size_t i = 2; i < bits.size(); ++i) bits[i] = i < 6 ? 2 : 8;
  const double want = table.weight_us(256, 128, 1, {{4, 1.0}}) + table.weight_us(512, 256, 1, {{2, 0.5}, {8, 0.5}});
  EXPECT_NEAR(hawq::evaluate_allocation(p, bits).cost[1], want, 1e-9);
  EXPECT_NEAR(want, 4.0 + 1.2 * 11.0, 1e-9);
}

TEST(BuildProblem, LatencyBudgetAsFractionOfFp16) {
  Fixture f;
  const auto p = hawq::build_problem(f.method("0.5"), f.part, f.sens, f.stats, 4.0, {}, &f.table);
  ASSERT_EQ(p.resources.size(), 2u);
  EXPECT_NEAR(p.resources[1].budget, 0.5 * (9.0 + 30.0), 1e-9);
}

TEST(BuildProblem, TableWithoutBudgetOnlyRecordsLatency) {
  Fixture f;
  const auto p = hawq::build_problem(f.method(""), f.part, f.sens, f.stats, 4.0, {}, &f.table);
  ASSERT_EQ(p.resources.size(), 2u);
  EXPECT_TRUE(std::isinf(p.resources[1].budget));
  const auto none = hawq::build_problem(f.method(""), f.part, f.sens, f.stats, 4.0, {}, nullptr);
  EXPECT_EQ(none.resources.size(), 1u);
}

TEST(BuildProblem, MissingWidthInTableIsAClearError) {
  Fixture f;
  auto m = f.method("uniform:4");
  m.candidate_bits = {2, 4, 6};
  try {
    hawq::build_problem(m, f.part, f.sens, f.stats, 4.0, {}, &f.table);
    FAIL() << "6-bit latency invented";
  } catch (const hawq::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("6 bits"), std::string::npos) << e.what();
  }
}

}  // namespace
