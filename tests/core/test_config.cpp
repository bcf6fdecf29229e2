// Configuration errors: each names the file, line, column and key and says what was expected.
#include <gtest/gtest.h>

#include <filesystem>

#include "hawq/allocation.h"
#include "hawq/config.h"
#include "hawq/registry.h"
#include "hawq/errors.h"
#include "hawq/experiment.h"
#include "hawq/fs.h"
#include "test_util.h"

using namespace hawq;

namespace {

std::string write_yaml(const std::string& name, const std::string& text) { return test::write_temp_file(name, text); }

// Expects resolve_experiment(load_config(path)) to throw ConfigError containing every fragment.
void expect_config_error(const std::string& path, const std::vector<std::string>& fragments,
                         const std::vector<std::string>& overrides = {}) {
  try {
    auto cfg = load_config(path, overrides);
    resolve_experiment(cfg);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    for (const auto& f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << "missing '" << f << "' in: " << e.what();
  }
}

// This torch-free binary has no model or dataset plugins: announce stand-in names so experiment
// resolution (which only checks names) can be exercised here.
const bool kStandIns = [] {
  registry_kinds()["model"] = [] { return std::vector<std::string>{"resnet"}; };
  registry_kinds()["dataset"] = [] { return std::vector<std::string>{"fashion_mnist"}; };
  return true;
}();

const char* kBase = R"(name: t
model: {name: resnet}
data: {name: fashion_mnist}
sweep:
  methods: [uniform]
  budgets: [4]
)";

}  // namespace

TEST(Config, UnknownTopLevelKeyNamesFileLineAndSuggests) {
  auto p = write_yaml("unknown_key.yaml", std::string(kBase) + "calibraton: {samples: 3}\n");
  expect_config_error(p, {"unknown_key.yaml:7:1", "unknown key 'calibraton'", "did you mean 'calibration'"});
}

TEST(Config, WrongTypeNamesKeyAndExpectedType) {
  auto p = write_yaml("wrong_type.yaml", std::string(kBase) + "calibration: {samples: many}\n");
  expect_config_error(p, {"wrong_type.yaml:7:", "calibration.samples", "expected an integer", "'many'"});
}

TEST(Config, UnknownPluginNameSuggestsNearest) {
  // An unknown plugin name in a config names the location, the kind and the nearest name.
  auto p = write_yaml("plugin.yaml", "model: {name: resnett}\ndata: {name: fashion_mnist}\nsweep: {methods: [uniform]}\n");
  expect_config_error(p, {"plugin.yaml:1:", "unknown model 'resnett'", "did you mean 'resnet'?"});
  // The registry suggests the nearest registered name.
  try {
    Registry<Allocator>::instance().create("dpp", Params(), "x.yaml:3:5 sweep.allocators.0");
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown allocator 'dpp' at x.yaml:3:5"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("did you mean 'dp'?"), std::string::npos) << e.what();
  }
  EXPECT_EQ(nearest_name("hutchinsn", {"hutchinson", "hutchpp", "kfac"}), "hutchinson");
  EXPECT_EQ(nearest_name("zzzzzz", {"dp", "greedy"}), "");
}

TEST(Config, MissingFileAndMissingInclude) {
  expect_config_error("/nonexistent/dir/x.yaml", {"configuration file not found", "/nonexistent/dir/x.yaml"});
  auto p = write_yaml("inc.yaml", "include: [does_not_exist.yaml]\n");
  expect_config_error(p, {"inc.yaml:1:", "include: file not found: does_not_exist.yaml"});
}

TEST(Config, MalformedYamlReportsLineAndColumn) {
  auto p = write_yaml("bad.yaml", "name: t\nsweep: {methods: [uniform\n");
  expect_config_error(p, {"bad.yaml:", "malformed YAML"});
}

TEST(Config, IncludeMergesDeeplyAndLaterKeysWin) {
  write_yaml("base_inc.yaml", "calibration: {samples: 10, batch_size: 5}\nthreads_per_rank: 3\n");
  auto p = write_yaml("top_inc.yaml", "include: [base_inc.yaml]\ncalibration: {samples: 20}\n");
  auto cfg = load_config(p, {"threads_per_rank=4"});
  EXPECT_EQ(cfg.root["calibration"]["samples"].as<int>(), 20);
  EXPECT_EQ(cfg.root["calibration"]["batch_size"].as<int>(), 5);  // kept from the include
  EXPECT_EQ(cfg.root["threads_per_rank"].as<int>(), 4);           // --set wins
  EXPECT_NE(cfg.sources->find("calibration.batch_size").find("base_inc.yaml:1:"), std::string::npos)
      << cfg.sources->find("calibration.batch_size");
  EXPECT_EQ(cfg.files.size(), 2u);
}

TEST(Config, IncludeCycleIsAnError) {
  write_yaml("cyc_a.yaml", "include: [cyc_b.yaml]\n");
  auto b = write_yaml("cyc_b.yaml", "include: [cyc_a.yaml]\n");
  expect_config_error(b, {"include cycle"});
}

TEST(Config, SetOverrideMustBeKeyValue) {
  auto p = write_yaml("ovr.yaml", kBase);
  expect_config_error(p, {"--set nonsense", "expected key.path=value"}, {"nonsense"});
}

TEST(Params, TypedGettersAndUnknownKeys) {
  auto p = Params::from_yaml("{probes: 8, tol: 0.5, name: x, flag: true, list: [1, 2], typo_key: 1}");
  EXPECT_EQ(p.get_int("probes", 0), 8);
  EXPECT_DOUBLE_EQ(p.get_double("tol", 0), 0.5);
  EXPECT_EQ(p.get_string("name", ""), "x");
  EXPECT_TRUE(p.get_bool("flag", false));
  EXPECT_EQ(p.get_int_list("list", {}), (std::vector<long long>{1, 2}));
  EXPECT_EQ(p.get_int("absent", 7), 7);
  try {
    p.check_all_used();
    FAIL() << "typo_key should be rejected";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown key 'typo_key'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Params::from_yaml("{probes: lots}").get_int("probes", 0), ConfigError);
  EXPECT_THROW(Params::from_yaml("{mode: fulll}").get_choice("mode", "full", {"full", "layerwise"}), ConfigError);
}
