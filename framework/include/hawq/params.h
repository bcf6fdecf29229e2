// Params: a plugin's own `params:` block, with typed getters that report precise locations.
//
// Every plugin reads its settings through this class. Getters remember which keys were read so
// that, after construction, check_all_used() can reject keys the plugin does not know (with a
// did-you-mean suggestion) instead of silently ignoring a typo in an ablation study.
#pragma once

#include <yaml-cpp/yaml.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "hawq/errors.h"

namespace hawq {

// Maps a dotted key path ("sweep.estimators.0.params.probes") to "file:line:col", filled while
// YAML files are loaded and merged, so errors found later still point at the right file.
class SourceMap {
 public:
  void set(const std::string& path, const std::string& location) { where_[path] = location; }
  // Location of `path`, or of its closest recorded ancestor; "" if nothing is known.
  std::string find(const std::string& path) const;

 private:
  std::map<std::string, std::string> where_;
};

class Params {
 public:
  Params() : node_(YAML::NodeType::Map), used_(std::make_shared<std::set<std::string>>()) {}
  Params(YAML::Node node, std::string path, std::shared_ptr<const SourceMap> sources);

  // Typed getters. `key` must be a direct child. A missing key returns `def`; a value of the wrong
  // type throws ConfigError naming the location, the key and the expected type.
  double get_double(const std::string& key, double def) const;
  long long get_int(const std::string& key, long long def) const;
  bool get_bool(const std::string& key, bool def) const;
  std::string get_string(const std::string& key, const std::string& def) const;
  std::vector<double> get_double_list(const std::string& key, const std::vector<double>& def) const;
  std::vector<long long> get_int_list(const std::string& key, const std::vector<long long>& def) const;
  std::vector<std::string> get_string_list(const std::string& key, const std::vector<std::string>& def) const;
  // A string that must be one of `choices`.
  std::string get_choice(const std::string& key, const std::string& def, const std::vector<std::string>& choices) const;
  // A nested block, for plugins with structured settings.
  Params child(const std::string& key) const;

  bool has(const std::string& key) const;
  // Marks `key` as read (for values parsed by other code, e.g. plugin references).
  void mark_used(const std::string& key) const { used_->insert(key); }
  // Throws ConfigError for any key no getter asked for.
  void check_all_used() const;

  // "file:line:col key.path" for messages.
  std::string where(const std::string& key = "") const;
  const std::string& path() const { return path_; }
  const YAML::Node& node() const { return node_; }

  // Builds a Params from inline YAML text (tests, defaults).
  static Params from_yaml(const std::string& text, const std::string& path = "params");

 private:
  YAML::Node get_node(const std::string& key) const;
  [[noreturn]] void type_error(const std::string& key, const std::string& expected) const;

  YAML::Node node_;
  std::string path_;
  std::shared_ptr<const SourceMap> sources_;
  std::shared_ptr<std::set<std::string>> used_;
};

}  // namespace hawq
