// SweepExecutor: everything one rank needs to run sweep points (model, data, plugins, caches).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hawq/allocation.h"
#include "hawq/dataset.h"
#include "hawq/estimator.h"
#include "hawq/experiment.h"
#include "hawq/latency.h"
#include "hawq/model.h"
#include "hawq/quantizer.h"
#include "hawq/sensitivity.h"

namespace hawq {

// How a method turns a block's estimate into the allocation problem's distortion.
struct BlockStats {
  std::int64_t numel = 0;
  double weight_norm2 = 0;  // ‖W_b‖²_F
};

// Builds the allocation problem of a point (exposed for tests). resources[0] is "bits" (the
// average-bits budget); with a latency table a "latency_us" resource follows (latency.h), bounded
// by the method's latency_budget or unbounded (recorded only) without one.
AllocationProblem build_problem(const MethodSpec& method, const Partition& partition, const Sensitivity& sens,
                                const std::vector<BlockStats>& stats, double budget_bits,
                                const std::vector<std::vector<double>>& measured_err2,
                                const LatencyTable* latency = nullptr);

class SweepExecutor {
 public:
  // Constructs the model, dataset and every plugin the experiment names (all parameter checks).
  explicit SweepExecutor(const Experiment& e);

  std::size_t num_quantized_weights() const { return weights_.size(); }
  std::string baseline_key() const;
  nlohmann::json baseline();

  // Runs the points of one group in order; emits {"kind","key","record"} messages for the
  // estimate (if computed here) and every point. A point that throws is recorded as failed.
  void run_group(const std::vector<std::size_t>& points, const nlohmann::json* cached_estimate,
                 const std::atomic<bool>& stop, const std::function<void(const nlohmann::json&)>& emit);

 private:
  const Partition& partition(const std::string& policy);
  const std::vector<Batch>& calibration(std::uint64_t seed);
  Sensitivity estimate(const Point& p, double& seconds);
  nlohmann::json run_point(const Point& p, const Sensitivity* sens);

  const Experiment& e_;
  torch::Device device_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Dataset> data_;
  std::vector<WeightInfo> weights_;
  std::vector<Batch> eval_;
  std::int64_t eval_count_ = 0;
  std::map<std::string, Partition> partitions_;
  std::map<std::uint64_t, std::vector<Batch>> calib_;
  std::map<std::string, std::unique_ptr<Estimator>> estimators_;
  std::map<std::string, std::unique_ptr<Allocator>> allocators_;
  std::map<std::string, std::unique_ptr<Quantizer>> quantizers_;
  std::map<std::string, Sensitivity> sens_cache_;
  std::map<std::string, LatencyTable> latency_tables_;  // by path
};

// Conversions between Sensitivity and its journal record.
nlohmann::json sensitivity_to_json(const Sensitivity& s, const Partition& p, const std::vector<BlockStats>& stats);
Sensitivity sensitivity_from_json(const nlohmann::json& j);

}  // namespace hawq
