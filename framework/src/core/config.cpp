// YAML loading with includes, deep merge, overrides and a source map for located errors.
#include "hawq/config.h"

#include <cstdlib>
#include <filesystem>
#include <set>
#include <sstream>

#include "hawq/errors.h"
#include "hawq/fs.h"
#include "hawq/version.h"

namespace hawq {

namespace fsys = std::filesystem;

std::string project_root() {
  if (const char* r = std::getenv("HAWQ_ROOT")) return r;
  if (fsys::exists(fsys::path(HAWQ_SOURCE_DIR) / "configs")) return HAWQ_SOURCE_DIR;
  return ".";
}

std::string resolve_path(const std::string& p) {
  if (p.empty() || fsys::path(p).is_absolute() || fsys::exists(p)) return p;
  auto r = fsys::path(project_root()) / p;
  return fsys::exists(r) ? r.string() : p;
}

namespace {

std::string loc(const std::string& file, const YAML::Node& n) {
  const auto m = n.Mark();
  if (m.line < 0) return file;
  return file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
}

void record(SourceMap& sm, const std::string& file, const YAML::Node& n, const std::string& path) {
  sm.set(path, loc(file, n));
  if (n.IsMap()) {
    for (const auto& kv : n) {
      const std::string k = kv.first.Scalar();
      record(sm, file, kv.second, path.empty() ? k : path + "." + k);
      // Keys point at the key itself, which is where a user looks for a typo.
      sm.set(path.empty() ? k : path + "." + k, loc(file, kv.first));
    }
  } else if (n.IsSequence()) {
    for (std::size_t i = 0; i < n.size(); ++i) record(sm, file, n[i], path + "." + std::to_string(i));
  }
}

// Deep merge: maps merge key by key, everything else (scalars, lists) replaces.
YAML::Node merge(const YAML::Node& base, const YAML::Node& over) {
  if (!base || !base.IsMap() || !over.IsMap()) return YAML::Clone(over);
  YAML::Node out = YAML::Clone(base);
  for (const auto& kv : over) {
    const std::string k = kv.first.Scalar();
    out[k] = out[k] ? merge(out[k], kv.second) : YAML::Clone(kv.second);
  }
  return out;
}

YAML::Node load_one(const std::string& path, std::set<std::string>& stack, LoadedConfig& cfg, SourceMap& sm) {
  std::string canon = fsys::weakly_canonical(path).string();
  if (stack.count(canon)) throw ConfigError("include cycle: " + path + " includes itself");
  if (!fsys::exists(path)) throw ConfigError("configuration file not found: " + path);
  YAML::Node doc;
  try {
    doc = YAML::LoadFile(path);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(path + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                      ": malformed YAML: " + e.msg);
  } catch (const YAML::BadFile&) {
    throw ConfigError("cannot read configuration file " + path);
  }
  if (doc.IsNull()) doc = YAML::Node(YAML::NodeType::Map);
  if (!doc.IsMap()) throw ConfigError(loc(path, doc) + ": expected a mapping at the top level of " + path);
  stack.insert(canon);
  cfg.files.push_back(path);
  YAML::Node merged(YAML::NodeType::Map);
  if (doc["include"]) {
    YAML::Node inc = doc["include"];
    std::vector<std::pair<std::string, YAML::Node>> items;
    if (inc.IsScalar()) {
      items.push_back({inc.Scalar(), inc});
    } else if (inc.IsSequence()) {
      for (const auto& i : inc) {
        if (!i.IsScalar()) throw ConfigError(loc(path, i) + " include: expected a file name");
        items.push_back({i.Scalar(), i});
      }
    } else {
      throw ConfigError(loc(path, inc) + " include: expected a file name or a list of file names");
    }
    for (const auto& [name, node] : items) {
      std::string p = name;
      if (!fsys::path(p).is_absolute()) {
        auto rel = fsys::path(path).parent_path() / p;
        p = fsys::exists(rel) ? rel.string() : (fsys::path(project_root()) / p).string();
      }
      if (!fsys::exists(p)) throw ConfigError(loc(path, node) + " include: file not found: " + name);
      merged = merge(merged, load_one(p, stack, cfg, sm));
    }
    doc.remove("include");
  }
  record(sm, path, doc, "");
  stack.erase(canon);
  return merge(merged, doc);
}

}  // namespace

LoadedConfig load_config(const std::string& path, const std::vector<std::string>& overrides) {
  LoadedConfig cfg;
  cfg.path = path;
  auto sm = std::make_shared<SourceMap>();
  std::set<std::string> stack;
  cfg.root = load_one(path, stack, cfg, *sm);
  for (const auto& o : overrides) {
    auto eq = o.find('=');
    if (eq == std::string::npos || eq == 0)
      throw ConfigError("--set " + o + ": expected key.path=value");
    std::string key = o.substr(0, eq), value = o.substr(eq + 1);
    YAML::Node v;
    try {
      v = YAML::Load(value);
    } catch (const YAML::Exception& e) {
      throw ConfigError("--set " + o + ": value is not valid YAML: " + e.msg);
    }
    // Walk/create the path; numeric components index into lists.
    std::vector<std::string> parts;
    std::stringstream ss(key);
    std::string part;
    while (std::getline(ss, part, '.')) parts.push_back(part);
    std::vector<YAML::Node> chain{cfg.root};
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
      YAML::Node cur = chain.back();
      YAML::Node next;
      if (cur.IsSequence()) {
        std::size_t idx = std::stoul(parts[i]);
        if (idx >= cur.size()) throw ConfigError("--set " + key + ": index " + parts[i] + " out of range");
        next = cur[idx];
      } else {
        if (!cur[parts[i]]) cur[parts[i]] = YAML::Node(YAML::NodeType::Map);
        next = cur[parts[i]];
      }
      chain.push_back(next);
    }
    YAML::Node last = chain.back();
    if (last.IsSequence()) {
      std::size_t idx = std::stoul(parts.back());
      if (idx >= last.size()) throw ConfigError("--set " + key + ": index out of range");
      last[idx] = v;
    } else {
      last[parts.back()] = v;
    }
    sm->set(key, "--set " + key);
  }
  cfg.sources = sm;
  return cfg;
}

std::string LoadedConfig::dump() const {
  YAML::Emitter e;
  e << root;
  return e.c_str();
}

Params LoadedConfig::params(const std::string& path) const {
  // reset(), not operator=: assigning a yaml-cpp node overwrites the node it refers to.
  YAML::Node n;
  n.reset(root);
  if (!path.empty()) {
    std::stringstream ss(path);
    std::string part;
    while (std::getline(ss, part, '.')) {
      const YAML::Node& cn = n;
      YAML::Node c = cn.IsMap() ? cn[part] : YAML::Node();
      n.reset(c);
    }
  }
  return Params(n, path, sources);
}

}  // namespace hawq
