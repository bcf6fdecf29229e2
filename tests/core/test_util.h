// Helpers shared by the torch-free tests.
#pragma once

#include <gtest/gtest.h>
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

// Writes `text` to the temporary file `name`, passes its path to `load`, and expects `load` to throw
// Error with a message that names the file and contains `needle`.
template <class Error, class Load>
void expect_refused(const std::string& name, const std::string& text, const std::string& needle, Load load) {
  const auto p = write_temp_file(name, text);
  try {
    load(p);
    ADD_FAILURE() << "accepted: " << text;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace hawq::test
