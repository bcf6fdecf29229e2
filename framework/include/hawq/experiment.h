// Experiment resolution: YAML -> plain structs -> sweep points with canonical ids. Torch-free.
//
// A point is model × data × method × estimator × allocator × quantizer × budget × seed. Its id is
// a hash of everything that determines its numbers (the resolved point as canonical JSON), so the
// same point has the same id in every run, on any rank count, and a results file can tell which
// points it already holds.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hawq/config.h"
#include "hawq/latency.h"

namespace hawq {

// A plugin reference: registered name plus its own params block.
struct PluginSpec {
  std::string name;
  YAML::Node params;           // a map (possibly empty)
  std::string where;           // location of the name, for messages
  std::string params_path;     // key path of params, for Params' messages
  nlohmann::json to_json() const;
  std::string label() const;   // "name" or "name(k=v,...)" for tables
};

// A method preset (configs/methods/<name>.yaml) after merging with inline overrides.
struct MethodSpec {
  std::string name;                 // uniform, hawq_v1, hawq_v1_paper, hawq_v2, hawq_v3, or custom
  bool uniform = false;             // one width for every weight; no estimate, no allocation
  std::string partition = "layer";  // partition policy (partition.h)
  // Sensitivity signal per block: omega = (Tr/n)·‖W‖², trace = Tr, eigenvalue = λ_max·‖W‖²,
  // trace_per_param = Tr/n.
  std::string signal = "omega";
  // analytic: Ω·σ²(b); measured: (Tr/n)·‖Q_b(W)−W‖² with the RTN grid (HAWQ-V3).
  std::string distortion = "analytic";
  std::vector<int> candidate_bits{2, 3, 4, 5, 6, 7, 8};
  PluginSpec estimator;             // default estimator
  bool estimator_fixed = false;     // the sweep's estimator list does not apply
  PluginSpec allocator;             // default allocator
  std::map<std::string, int> pin;   // "first"/"last"/weight name -> width
  std::string hardware;             // hardware profile path (v3), may be empty
  // Latency resource (needs a hardware profile with a latency_table): the budget, and the batch
  // rows m whose measured latencies count. Without a budget the latency of each allocation is
  // still computed and recorded when the profile has a table.
  LatencyBudget latency_budget;
  std::int64_t latency_batch = 1;
  std::string latency_table;        // resolved from the profile ("" if none)
  nlohmann::json to_json() const;
};

struct Point {
  std::size_t index = 0;            // position in the expanded sweep
  std::string id;                   // canonical id (16 hex digits)
  MethodSpec method;
  PluginSpec estimator, allocator, quantizer;  // estimator/allocator names are "none" for uniform
  double budget = 0;                // average bits per quantised weight (DESIGN.md §10)
  std::uint64_t seed = 0;
  std::string estimate_key;         // cache key of the estimate stage ("" for uniform)
  nlohmann::json params;            // the resolved point (what id hashes)
};

struct Experiment {
  std::string name;
  std::string path;
  LoadedConfig config;
  PluginSpec model, data;
  std::int64_t calib_samples = 256, calib_batch = 128;
  std::int64_t eval_samples = 0, eval_batch = 500;        // 0 = the whole evaluation split
  std::string oracle = "full";
  std::int64_t max_hvps = 32;
  double rel_tol = 0.0;
  int threads_per_rank = 0;          // 0 = default (1 under MPI with >1 rank, else all cores)
  std::string device = "cpu";
  std::int64_t rebuild_every = 4;    // rebuild the HDF5 file after this many finished points
  std::string output;                // results file
  std::vector<Point> points;
  std::string base_fingerprint;      // everything shared by all points (ownership of a results file)
  nlohmann::json base;               // the shared settings as JSON
};

// Resolves and validates everything that needs no plugin construction: keys, types, names against
// the registries, method presets, budgets. Throws ConfigError with locations.
Experiment resolve_experiment(const LoadedConfig& cfg);

}  // namespace hawq
