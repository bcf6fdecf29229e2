// Params getters: typed access to a plugin's YAML block with located error messages.
#include "hawq/params.h"

#include "hawq/registry.h"

namespace hawq {

std::string SourceMap::find(const std::string& path) const {
  std::string p = path;
  while (true) {
    auto it = where_.find(p);
    if (it != where_.end()) return it->second;
    auto dot = p.rfind('.');
    if (dot == std::string::npos) return "";
    p = p.substr(0, dot);
  }
}

Params::Params(YAML::Node node, std::string path, std::shared_ptr<const SourceMap> sources)
    : node_(node ? node : YAML::Node(YAML::NodeType::Map)),
      path_(std::move(path)),
      sources_(std::move(sources)),
      used_(std::make_shared<std::set<std::string>>()) {
  if (node_.IsNull()) node_ = YAML::Node(YAML::NodeType::Map);
  // Lists are allowed (for where()); getters need a mapping.
  if (node_.IsScalar()) throw ConfigError(where() + ": expected a mapping of parameters, got '" + node_.Scalar() + "'");
}

Params Params::from_yaml(const std::string& text, const std::string& path) {
  return Params(YAML::Load(text), path, nullptr);
}

std::string Params::where(const std::string& key) const {
  std::string full = path_.empty() ? key : (key.empty() ? path_ : path_ + "." + key);
  std::string loc = sources_ ? sources_->find(full) : "";
  if (!key.empty() && node_[key] && node_[key].Mark().line >= 0 && loc.empty()) {
    loc = "line " + std::to_string(node_[key].Mark().line + 1);
  }
  return loc.empty() ? full : loc + " " + full;
}

bool Params::has(const std::string& key) const { return node_.IsMap() && node_[key]; }

YAML::Node Params::get_node(const std::string& key) const {
  used_->insert(key);
  if (!node_.IsMap()) return YAML::Node();
  return node_[key];
}

void Params::type_error(const std::string& key, const std::string& expected) const {
  YAML::Node n = node_[key];
  std::string got = n.IsScalar() ? "'" + n.Scalar() + "'" : (n.IsSequence() ? "a list" : "a mapping");
  throw ConfigError(where(key) + ": expected " + expected + ", got " + got);
}

double Params::get_double(const std::string& key, double def) const {
  YAML::Node n = get_node(key);
  if (!n) return def;
  try {
    if (!n.IsScalar()) type_error(key, "a number");
    return n.as<double>();
  } catch (const YAML::Exception&) {
    type_error(key, "a number");
  }
}

long long Params::get_int(const std::string& key, long long def) const {
  YAML::Node n = get_node(key);
  if (!n) return def;
  try {
    if (!n.IsScalar()) type_error(key, "an integer");
    return n.as<long long>();
  } catch (const YAML::Exception&) {
    type_error(key, "an integer");
  }
}

bool Params::get_bool(const std::string& key, bool def) const {
  YAML::Node n = get_node(key);
  if (!n) return def;
  try {
    if (!n.IsScalar()) type_error(key, "true or false");
    return n.as<bool>();
  } catch (const YAML::Exception&) {
    type_error(key, "true or false");
  }
}

std::string Params::get_string(const std::string& key, const std::string& def) const {
  YAML::Node n = get_node(key);
  if (!n) return def;
  if (!n.IsScalar()) type_error(key, "a string");
  return n.Scalar();
}

std::string Params::get_choice(const std::string& key, const std::string& def,
                               const std::vector<std::string>& choices) const {
  std::string v = get_string(key, def);
  for (const auto& c : choices)
    if (c == v) return v;
  std::string msg = where(key) + ": unknown value '" + v + "'";
  std::string near = nearest_name(v, choices);
  if (!near.empty()) msg += "; did you mean '" + near + "'?";
  msg += " (expected one of:";
  for (const auto& c : choices) msg += " " + c;
  throw ConfigError(msg + ")");
}

template <class T>
static std::vector<T> list_of(const Params& p, const YAML::Node& n, const std::string& key,
                              const std::string& what) {
  std::vector<T> out;
  try {
    if (n.IsScalar()) return {n.as<T>()};
    if (!n.IsSequence()) throw ConfigError(p.where(key) + ": expected a list of " + what);
    for (const auto& e : n) out.push_back(e.as<T>());
  } catch (const YAML::Exception&) {
    throw ConfigError(p.where(key) + ": expected a list of " + what);
  }
  return out;
}

std::vector<double> Params::get_double_list(const std::string& key, const std::vector<double>& def) const {
  YAML::Node n = get_node(key);
  return n ? list_of<double>(*this, n, key, "numbers") : def;
}
std::vector<long long> Params::get_int_list(const std::string& key, const std::vector<long long>& def) const {
  YAML::Node n = get_node(key);
  return n ? list_of<long long>(*this, n, key, "integers") : def;
}
std::vector<std::string> Params::get_string_list(const std::string& key,
                                                 const std::vector<std::string>& def) const {
  YAML::Node n = get_node(key);
  return n ? list_of<std::string>(*this, n, key, "strings") : def;
}

Params Params::child(const std::string& key) const {
  YAML::Node n = get_node(key);
  Params c(n ? n : YAML::Node(YAML::NodeType::Map), path_.empty() ? key : path_ + "." + key, sources_);
  return c;
}

void Params::check_all_used() const {
  if (!node_.IsMap()) return;
  std::vector<std::string> known(used_->begin(), used_->end());
  for (const auto& kv : node_) {
    std::string k = kv.first.Scalar();
    if (used_->count(k)) continue;
    std::string msg = where(k) + ": unknown key '" + k + "'";
    std::string near = nearest_name(k, known);
    if (!near.empty()) msg += "; did you mean '" + near + "'?";
    if (!known.empty()) {
      msg += " (known keys:";
      for (const auto& c : known) msg += " " + c;
      msg += ")";
    }
    throw ConfigError(msg);
  }
}

}  // namespace hawq
