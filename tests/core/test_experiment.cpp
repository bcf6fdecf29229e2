// Sweep expansion: cartesian product, canonical ids, shared estimate keys, uniform budgets.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "hawq/config.h"
#include "hawq/errors.h"
#include "hawq/experiment.h"
#include "hawq/fs.h"
#include "test_util.h"
#include "hawq/registry.h"

using namespace hawq;

namespace {

const bool kStandIns = [] {
  registry_kinds()["model"] = [] { return std::vector<std::string>{"resnet"}; };
  registry_kinds()["dataset"] = [] { return std::vector<std::string>{"fashion_mnist"}; };
  registry_kinds()["estimator"] = [] { return std::vector<std::string>{"hutchinson", "fisher"}; };
  registry_kinds()["quantizer"] = [] { return std::vector<std::string>{"rtn"}; };
  return true;
}();

std::string write_yaml(const std::string& name, const std::string& text) { return test::write_temp_file(name, text); }

const char* kSweep = R"(name: t
model: {name: resnet}
data: {name: fashion_mnist}
sweep:
  methods: [uniform, hawq_v1]
  estimators: [hutchinson, fisher]
  budgets: [3, 3.5, 4]
  seeds: [0, 1]
)";

}  // namespace

TEST(Experiment, ExpandsCartesianProductWithStableIds) {
  auto p = write_yaml("sweep.yaml", kSweep);
  auto e = resolve_experiment(load_config(p));
  // uniform: 2 integer budgets × 2 seeds; hawq_v1: 2 estimators × 3 budgets × 2 seeds.
  ASSERT_EQ(e.points.size(), 4u + 12u);
  std::set<std::string> ids, keys;
  for (const auto& pt : e.points) {
    EXPECT_EQ(pt.id.size(), 16u);
    ids.insert(pt.id);
    if (pt.method.uniform) {
      EXPECT_EQ(pt.estimator.name, "none");
      EXPECT_EQ(pt.allocator.name, "none");
      EXPECT_TRUE(pt.estimate_key.empty());
      EXPECT_DOUBLE_EQ(pt.budget, std::round(pt.budget));
    } else {
      keys.insert(pt.estimate_key);
      EXPECT_EQ(pt.allocator.name, "dp");  // hawq_v1's default allocator
    }
  }
  EXPECT_EQ(ids.size(), e.points.size());
  // One estimate per (estimator, seed), shared by all budgets.
  EXPECT_EQ(keys.size(), 4u);
  // Ids are a function of the resolved point: resolving again gives the same ids.
  auto e2 = resolve_experiment(load_config(p));
  for (std::size_t i = 0; i < e.points.size(); ++i) EXPECT_EQ(e.points[i].id, e2.points[i].id);
  // Extending a list keeps existing ids; changing a shared setting changes all of them.
  auto e3 = resolve_experiment(load_config(p, {"sweep.seeds=[0,1,2]"}));
  std::set<std::string> ids3;
  for (const auto& pt : e3.points) ids3.insert(pt.id);
  for (const auto& id : ids) EXPECT_TRUE(ids3.count(id)) << id;
  EXPECT_EQ(e3.base_fingerprint, e.base_fingerprint);
  auto e4 = resolve_experiment(load_config(p, {"calibration.samples=7"}));
  EXPECT_NE(e4.base_fingerprint, e.base_fingerprint);
  EXPECT_FALSE(ids.count(e4.points.front().id));
}

TEST(Experiment, RejectsBadBudgetsAndUnknownMethods) {
  auto p = write_yaml("bad.yaml", kSweep);
  EXPECT_THROW(resolve_experiment(load_config(p, {"sweep.budgets=[0]"})), ConfigError);
  try {
    resolve_experiment(load_config(p, {"sweep.methods=[hawq_v11]"}));
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'hawq_v1'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(resolve_experiment(load_config(p, {"sweep.methods=[uniform]", "sweep.budgets=[3.5]"})), ConfigError);
}
