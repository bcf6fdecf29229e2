// Sub-command dispatch. Exit codes (DESIGN.md §5): 0 all points ok; 2 usage/config/input errors
// found before work starts (nothing written); 3 the sweep ran but some points failed; 1 anything else.
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "hawq/cli.h"
#include "hawq/config.h"
#include "hawq/errors.h"
#include "hawq/registry.h"
#include "hawq/report.h"
#include "hawq/results.h"
#include "hawq/runner.h"
#include "hawq/train.h"
#include "hawq/version.h"

namespace hawq {

namespace {

std::string joined_command(int argc, char** argv) {
  // The program's base name, so records read the same whatever folder the binary was run from.
  std::string s = std::string(argv[0]).substr(std::string(argv[0]).rfind('/') + 1);
  for (int i = 1; i < argc; ++i) s += " " + std::string(argv[i]);
  return s;
}

const char* kUsage =
    "hawq-bench " HAWQ_VERSION " - Hessian-aware mixed-precision quantization sweeps\n\n"
    "usage:\n"
    "  hawq-bench <experiment.yaml> [--out FILE.h5] [--set key=value]... [--force]   run a sweep (under mpirun for many ranks)\n"
    "  hawq-bench validate <experiment.yaml> [--set key=value]...                  resolve and check, run nothing\n"
    "  hawq-bench list                                                             registered plugins, one `<kind> <name>` per line\n"
    "  hawq-bench report <FILE.h5> [--table NAME] [--format markdown|csv|latex]     print result tables\n"
    "  hawq-bench train <config.yaml> [--set key=value]...                         train a model\n"
    "  hawq-bench import-kernels <kernels.json>... --into FILE.h5                   add kernels_bench results as /kernels/\n\n"
    "Each sub-command has --help. Exit codes: 0 ok, 2 configuration/input error (nothing written),\n"
    "3 some sweep points failed (each recorded with its reason), 1 anything else.\n";

int cmd_list() {
  for (const auto& kv : registry_kinds())
    for (const auto& n : kv.second()) std::printf("%s %s\n", kv.first.c_str(), n.c_str());
  return 0;
}

}  // namespace

int cli_main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string sub = argv[1];
  try {
    if (sub == "--version") {
      std::printf("hawq-bench %s (%s), LibTorch %s\n", HAWQ_VERSION, HAWQ_GIT_REVISION, TORCH_VERSION);
      return 0;
    }
    if (sub == "list") {
      CLI::App app{"List registered plugins, one `<kind> <name>` line each", "hawq-bench list"};
      CLI11_PARSE(app, argc - 1, argv + 1);
      return cmd_list();
    }
    if (sub == "train") {
      CLI::App app{"Train a model from a YAML config; writes model.safetensors, config.json, train_record.json",
                   "hawq-bench train"};
      std::string path;
      std::vector<std::string> sets;
      app.add_option("config", path, "training config YAML")->required();
      app.add_option("--set", sets, "override a key: key.path=value (repeatable)");
      CLI11_PARSE(app, argc - 1, argv + 1);
      auto cfg = load_config(path, sets);
      return run_training(cfg, joined_command(argc, argv));
    }
    if (sub == "report") {
      CLI::App app{"Print result tables from a results HDF5 file", "hawq-bench report"};
      ReportOptions o;
      app.add_option("file", o.path, "results file (.h5)")->required();
      app.add_option("--table", o.table, "table: auto, resnet, llama, methods, points, bits, estimators")->default_val("auto");
      app.add_option("--format", o.format, "markdown, csv or latex")->default_val("markdown")->check(CLI::IsMember({"markdown", "csv", "latex"}));
      CLI11_PARSE(app, argc - 1, argv + 1);
      return print_report(o, std::cout);
    }
    if (sub == "import-kernels") {
      CLI::App app{"Add kernels_bench JSON results to a results file as /kernels/<key> (through its journal)",
                   "hawq-bench import-kernels"};
      std::vector<std::string> files;
      std::string into;
      app.add_option("files", files, "kernels_bench JSON files (kernels/results/*.json)")->required();
      app.add_option("--into", into, "results file to add them to (created if missing)")->required();
      CLI11_PARSE(app, argc - 1, argv + 1);
      for (const auto& f : files)
        std::printf("%s -> %s:/kernels/%s\n", f.c_str(), into.c_str(), import_kernel_results(into, f).c_str());
      return 0;
    }
    if (sub == "validate") {
      CLI::App app{"Resolve and validate an experiment; runs nothing", "hawq-bench validate"};
      RunOptions o;
      app.add_option("experiment", o.experiment, "experiment YAML")->required();
      app.add_option("--set", o.overrides, "override a key: key.path=value (repeatable)");
      CLI11_PARSE(app, argc - 1, argv + 1);
      return validate_experiment(o, std::cout);
    }
    CLI::App app{"Run a sweep. Under `mpirun -n N` points are shared among ranks; rank 0 writes the results.",
                 "hawq-bench"};
    RunOptions o;
    app.add_option("experiment", o.experiment, "experiment YAML")->required();
    app.add_option("--out", o.out, "results file (default results/<experiment name>.h5)");
    app.add_option("--set", o.overrides, "override a key: key.path=value (repeatable)");
    app.add_flag("--force", o.force, "start a fresh results file even if the existing one belongs to a different experiment");
    app.add_flag("--quiet", o.quiet, "do not print the summary table at the end");
    CLI11_PARSE(app, argc, argv);
    o.command_line = joined_command(argc, argv);
    return run_experiment(o);
  } catch (const UserError& e) {
    std::fprintf(stderr, "hawq-bench: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hawq-bench: failed: %s\n", e.what());
    return 1;
  }
}

}  // namespace hawq
