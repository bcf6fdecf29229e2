// `hawq-bench report`: tables from a results file. Torch-free.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace hawq {

struct ReportOptions {
  std::string path;
  std::string table = "auto";      // auto | resnet | llama | points | bits | estimators
  std::string format = "markdown"; // markdown | csv | latex
};

int print_report(const ReportOptions& options, std::ostream& out);

// Spearman's rank correlation (ties get average ranks); NaN for fewer than 2 values or a constant input.
double spearman(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace hawq
