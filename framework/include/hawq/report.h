// `hawq-bench report`: tables from a results file. Torch-free.
#pragma once

#include <ostream>
#include <string>

namespace hawq {

struct ReportOptions {
  std::string path;
  std::string table = "auto";      // auto | resnet | llama | points | bits | estimators
  std::string format = "markdown"; // markdown | csv | latex
};

int print_report(const ReportOptions& options, std::ostream& out);

}  // namespace hawq
