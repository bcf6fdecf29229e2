// Running an experiment: resolve, plan, distribute over MPI ranks, record results.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace hawq {

struct RunOptions {
  std::string experiment;                // YAML path
  std::string out;                       // results .h5 (default results/<name>.h5)
  std::vector<std::string> overrides;    // --set key=value
  bool force = false;                    // replace a results file of a different experiment
  bool quiet = false;                    // no table at the end
  std::string command_line;
};

// Runs the sweep (MPI initialised inside). Returns the exit code (0, 2, 3 or 1).
int run_experiment(const RunOptions& options);
// Resolves and checks the experiment, prints the planned points; returns 0 or throws ConfigError.
int validate_experiment(const RunOptions& options, std::ostream& out);

}  // namespace hawq
