// Durable results: an append-only journal of JSON records, from which the HDF5 file is rebuilt.
// Torch-free.
//
// Every finished point, stage output (sensitivity) and baseline is first written to the journal
// folder `<results>.journal/` as one small file (temporary name, fsync, rename). The HDF5 file is
// rebuilt from the whole journal into a temporary file and renamed into place, so a reader always
// sees a complete file and a SIGKILL loses at most the points in flight. Resuming a sweep reads the
// journal. Only MPI rank 0 writes.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <cmath>
#include <string>
#include <vector>

namespace hawq {

struct RunInfo {
  std::string experiment_name;
  std::string resolved_yaml;
  std::string base_fingerprint;   // ownership: the results file belongs to one experiment base
  std::string command_line;
  int mpi_size = 1;
  int threads_per_rank = 1;
  std::string host, started, library_versions_json;
};

class ResultStore {
 public:
  // Opens (or creates) the journal for `h5_path`. If the journal belongs to a different experiment
  // base, throws ConfigError unless `force` (then the old journal is moved aside, nothing deleted).
  ResultStore(std::string h5_path, const RunInfo& info, bool force);

  const std::string& path() const { return h5_path_; }
  const std::string& journal_dir() const { return journal_; }

  // Records already in the journal, by kind ("point", "estimate", "baseline") and key.
  bool has(const std::string& kind, const std::string& key) const;
  const nlohmann::json* get(const std::string& kind, const std::string& key) const;

  // Appends a record durably (and keeps it in memory).
  void append(const std::string& kind, const std::string& key, const nlohmann::json& record);

  // Rebuilds the HDF5 file from every record (atomic replace). `finished` stamps the end time.
  void rebuild(bool finished);

 private:
  std::string h5_path_, journal_;
  RunInfo info_;
  std::map<std::string, std::map<std::string, nlohmann::json>> records_;
};

// Writes the HDF5 file for the given records (used by ResultStore::rebuild and tests).
void write_results_hdf5(const std::string& path, const RunInfo& info,
                        const std::map<std::string, std::map<std::string, nlohmann::json>>& records, bool finished);

// One row of /summary, as the report reads it back.
struct SummaryRow {
  std::string point_id, model, data, method, partition, estimator, allocator, quantizer, metric_name, status, message;
  double budget_bits = 0, avg_bits = 0, effective_bits = 0, metric = 0, baseline_metric = 0, seconds = 0;
  long long seed = 0;
  std::int64_t calib_samples = 0, eval_samples = 0;
};

std::vector<SummaryRow> read_summary(const std::string& h5_path);
// Root attributes of a results file (strings).
std::map<std::string, std::string> read_root_attributes(const std::string& h5_path);
// /points/<id>/allocation: block names, roles, numel and bits, for bit-map tables.
struct PointBits {
  std::string point_id;
  std::vector<std::string> blocks, roles;
  std::vector<long long> numel;
  std::vector<int> bits;
  double latency_us = std::nan("");         // estimated weight-GEMM latency (hardware latency table)
  double latency_budget_us = std::nan("");  // its budget, when the method set one
  double latency_additive_us = std::nan("");  // the sum the allocator bounded (no mixed-width factor)
};
std::vector<PointBits> read_point_bits(const std::string& h5_path);

// One /estimates/<key> group: a stage's per-block curvature estimates.
struct EstimateRecord {
  std::string key, estimator, partition, quantity;
  double hvps = 0, seconds = 0, peak_bytes = 0;
  long long seed = 0;
  std::vector<std::string> blocks;
  std::vector<double> estimate, std_error;
};
std::vector<EstimateRecord> read_estimates(const std::string& h5_path);

// Adds a kernels_bench JSON file (kernels/results/*.json) to a results file as /kernels/<key>
// through its journal, so it survives rebuilds; creates a kernels-only file if none exists.
// Returns the key. Throws FormatError for a malformed file (the results file is left untouched).
std::string import_kernel_results(const std::string& h5_path, const std::string& json_path);

std::string iso_time_now();

}  // namespace hawq
