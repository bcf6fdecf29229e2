// Configuration loading: YAML files with `include:` presets, deep merge, `--set` overrides.
//
// Loading order (later wins): each file's includes (recursively, paths relative to the including
// file, or to the project root for paths starting with configs/ or assets/), then the file's own
// keys, then CLI overrides. Every key path is mapped to "file:line:col" in a SourceMap so errors
// found during validation point at the line the user wrote. Torch-free.
#pragma once

#include <yaml-cpp/yaml.h>

#include <memory>
#include <string>
#include <vector>

#include "hawq/params.h"

namespace hawq {

struct LoadedConfig {
  YAML::Node root;                       // merged document
  std::shared_ptr<SourceMap> sources;    // key path -> "file:line:col"
  std::string path;                      // the top-level file
  std::vector<std::string> files;        // every file read, in order
  // The resolved document as YAML text (stored with results).
  std::string dump() const;
  // A Params view of the sub-tree at `path` ("" = root).
  Params params(const std::string& path = "") const;
};

// Loads `path`, resolving includes and applying `overrides` ("key.path=value", value parsed as YAML).
// Throws ConfigError with file:line:col for malformed YAML, missing files and include cycles.
LoadedConfig load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// The project root used to resolve configs/ and assets/ paths: $HAWQ_ROOT, else the source folder
// this binary was built from, else the current folder.
std::string project_root();
// Resolves a path from a config: absolute paths stay; paths that exist relative to the current
// folder stay; otherwise they are taken relative to the project root.
std::string resolve_path(const std::string& p);

}  // namespace hawq
