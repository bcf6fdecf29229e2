// Helpers shared by the torch-free tests.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

#include "hawq/fs.h"

namespace hawq::test {

// Writes `text` to a file named `name` in this test process's temporary folder; returns its path.
inline std::string write_temp_file(const std::string& name, const std::string& text) {
  auto dir = std::filesystem::temp_directory_path() / ("hawq_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto p = (dir / name).string();
  write_file_atomic(p, text);
  return p;
}

}  // namespace hawq::test
