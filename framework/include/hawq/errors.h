// Error types shared by the whole project.
//
// User errors (configuration, files, data) are exceptions whose message names the file or key and
// what was expected; the CLI maps them to exit code 2 before any work starts. Invariant violations
// abort through HAWQ_CHECK, which stays on in Release builds because a silently wrong sensitivity
// or allocation is worse than a crash.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace hawq {

// A problem in what the user gave us: YAML, CLI flags, a checkpoint or dataset file.
class UserError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Configuration errors carry the location ("file:line:col key.path") in their message.
class ConfigError : public UserError {
 public:
  using UserError::UserError;
};

// A file that is missing, truncated, corrupt or otherwise not what its format promises.
class FormatError : public UserError {
 public:
  using UserError::UserError;
};

// A budget no assignment of the candidate bit widths can meet.
class InfeasibleError : public UserError {
 public:
  using UserError::UserError;
};

[[noreturn]] inline void check_failed(const char* expr, const char* file, int line, const std::string& msg) {
  std::fprintf(stderr, "hawq-bench: internal invariant violated: %s at %s:%d: %s\n", expr, file, line,
               msg.c_str());
  std::abort();
}

}  // namespace hawq

#define HAWQ_CHECK(cond, msg)                                            \
  do {                                                                   \
    if (!(cond)) ::hawq::check_failed(#cond, __FILE__, __LINE__, (msg)); \
  } while (0)
