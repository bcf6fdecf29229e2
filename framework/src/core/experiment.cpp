// Experiment resolution and sweep expansion.
#include "hawq/experiment.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include "hawq/errors.h"
#include "hawq/fs.h"
#include "hawq/registry.h"

namespace hawq {

namespace {

// Converts YAML to JSON with keys sorted, so equal configurations hash equally.
nlohmann::json to_json(const YAML::Node& n) {
  if (!n || n.IsNull()) return nullptr;
  if (n.IsScalar()) {
    const std::string& s = n.Scalar();
    if (n.Tag() == "!") return s;  // quoted string
    try {
      std::size_t pos = 0;
      long long i = std::stoll(s, &pos);
      if (pos == s.size()) return i;
    } catch (...) {
    }
    try {
      std::size_t pos = 0;
      double d = std::stod(s, &pos);
      if (pos == s.size()) return d;
    } catch (...) {
    }
    if (s == "true" || s == "false") return s == "true";
    return s;
  }
  if (n.IsSequence()) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& e : n) a.push_back(to_json(e));
    return a;
  }
  nlohmann::json o = nlohmann::json::object();  // nlohmann sorts object keys
  for (const auto& kv : n) o[kv.first.Scalar()] = to_json(kv.second);
  return o;
}

bool kind_has(const std::string& kind, const std::string& name) {
  auto it = registry_kinds().find(kind);
  if (it == registry_kinds().end()) return false;
  for (const auto& n : it->second())
    if (n == name) return true;
  return false;
}

void check_registered(const std::string& kind, const std::string& name, const std::string& where) {
  if (kind_has(kind, name)) return;
  std::vector<std::string> names;
  auto it = registry_kinds().find(kind);
  if (it != registry_kinds().end()) names = it->second();
  std::string msg = "unknown " + kind + " '" + name + "' at " + where;
  std::string near = nearest_name(name, names);
  if (!near.empty()) {
    msg += "; did you mean '" + near + "'?";
  } else {
    msg += "; registered " + kind + "s:";
    for (const auto& n : names) msg += " " + n;
  }
  throw ConfigError(msg);
}

// Rejects keys of a mapping that are not in `known`, with a suggestion.
void check_keys(const Params& p, const std::vector<std::string>& known) {
  if (!p.node().IsMap()) return;
  for (const auto& kv : p.node()) {
    std::string k = kv.first.Scalar();
    bool ok = false;
    for (const auto& c : known) ok |= c == k;
    if (ok) continue;
    std::string msg = p.where(k) + ": unknown key '" + k + "'";
    std::string near = nearest_name(k, known);
    if (!near.empty()) msg += "; did you mean '" + near + "'?";
    msg += " (expected one of:";
    for (const auto& c : known) msg += " " + c;
    throw ConfigError(msg + ")");
  }
}

// A plugin reference is either a name or {name: ..., params: {...}}. `path` is its key path.
PluginSpec plugin_spec(const YAML::Node& n, const std::string& path, const std::shared_ptr<const SourceMap>& sm,
                       const std::string& kind) {
  PluginSpec s;
  Params holder(YAML::Node(YAML::NodeType::Map), path, sm);
  s.where = holder.where();
  s.params_path = path + ".params";
  if (n.IsScalar()) {
    s.name = n.Scalar();
    s.params = YAML::Node(YAML::NodeType::Map);
  } else if (n.IsMap()) {
    Params p(n, path, sm);
    check_keys(p, {"name", "params"});
    s.name = p.get_string("name", "");
    if (s.name.empty()) throw ConfigError(p.where() + ": expected `name:` of the " + kind);
    s.where = p.where("name");
    s.params = n["params"] ? YAML::Clone(n["params"]) : YAML::Node(YAML::NodeType::Map);
    if (!s.params.IsMap()) throw ConfigError(p.where("params") + ": expected a mapping of parameters");
  } else {
    throw ConfigError(s.where + ": expected a " + kind + " name or {name, params}");
  }
  check_registered(kind, s.name, s.where);
  return s;
}

PluginSpec plugin_spec(const Params& parent, const std::string& key, const std::string& kind,
                       const std::shared_ptr<const SourceMap>& sm) {
  parent.mark_used(key);
  return plugin_spec(parent.node()[key], parent.path().empty() ? key : parent.path() + "." + key, sm, kind);
}

PluginSpec none_spec() {
  PluginSpec s;
  s.name = "none";
  s.params = YAML::Node(YAML::NodeType::Map);
  return s;
}

// Loads a method: a preset name (configs/methods/<name>.yaml) or an inline mapping that may
// `preset:` one and override keys.
MethodSpec load_method(const Params& list, std::size_t i, const LoadedConfig& cfg) {
  const std::string idx = std::to_string(i);
  YAML::Node n = list.node()[i];
  const std::string where = list.where(idx);
  YAML::Node merged(YAML::NodeType::Map);
  std::string preset;
  if (n.IsScalar()) {
    preset = n.Scalar();
  } else if (n.IsMap()) {
    preset = n["preset"] ? n["preset"].Scalar() : "";
  } else {
    throw ConfigError(where + ": expected a method name or a mapping");
  }
  std::shared_ptr<const SourceMap> sm = cfg.sources;
  std::string path_prefix = list.path() + "." + idx;
  if (!preset.empty()) {
    std::string file = project_root() + "/configs/methods/" + preset + ".yaml";
    if (!file_exists(file)) {
      std::vector<std::string> names;
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator(project_root() + "/configs/methods", ec))
        names.push_back(e.path().stem().string());
      std::string msg = "unknown method '" + preset + "' at " + where;
      std::string near = nearest_name(preset, names);
      if (!near.empty()) msg += "; did you mean '" + near + "'?";
      msg += " (presets live in configs/methods/)";
      throw ConfigError(msg);
    }
    LoadedConfig pc = load_config(file);
    merged = pc.root["method"] ? YAML::Clone(pc.root["method"]) : YAML::Node(YAML::NodeType::Map);
    if (!n.IsMap()) {
      sm = pc.sources;
      path_prefix = "method";
    }
  }
  if (n.IsMap())
    for (const auto& kv : n)
      if (kv.first.Scalar() != "preset") merged[kv.first.Scalar()] = YAML::Clone(kv.second);
  Params mp(merged, path_prefix, sm);
  MethodSpec m;
  m.name = mp.get_string("name", preset);
  if (m.name.empty()) throw ConfigError(where + ": a custom method needs `name:`");
  m.uniform = mp.get_bool("uniform", false);
  m.partition = mp.get_string("partition", "layer");
  m.signal = mp.get_choice("signal", "omega", {"omega", "trace", "eigenvalue", "trace_per_param"});
  m.distortion = mp.get_choice("distortion", "analytic", {"analytic", "measured"});
  m.candidate_bits.clear();
  for (auto b : mp.get_int_list("candidate_bits", {2, 3, 4, 5, 6, 7, 8})) {
    if (b < 1 || b > 16) throw ConfigError(mp.where("candidate_bits") + ": widths must be between 1 and 16 bits");
    m.candidate_bits.push_back(static_cast<int>(b));
  }
  std::sort(m.candidate_bits.begin(), m.candidate_bits.end());
  m.candidate_bits.erase(std::unique(m.candidate_bits.begin(), m.candidate_bits.end()), m.candidate_bits.end());
  m.estimator = mp.has("estimator") ? plugin_spec(mp, "estimator", "estimator", sm) : none_spec();
  m.estimator_fixed = mp.get_bool("estimator_fixed", false);
  m.allocator = mp.has("allocator") ? plugin_spec(mp, "allocator", "allocator", sm) : none_spec();
  if (mp.has("pin")) {
    Params pin = mp.child("pin");
    for (const auto& kv : pin.node()) m.pin[kv.first.Scalar()] = static_cast<int>(pin.get_int(kv.first.Scalar(), 8));
  }
  m.hardware = mp.get_string("hardware", "");
  if (mp.has("latency_budget"))
    m.latency_budget = parse_latency_budget(mp.get_string("latency_budget", ""), mp.where("latency_budget"));
  m.latency_batch = mp.get_int("latency_batch", 1);
  if (m.latency_batch < 1) throw ConfigError(mp.where("latency_batch") + ": expected a positive batch size (rows m)");
  if (!m.hardware.empty()) {
    const HardwareProfile hw = load_hardware_profile(m.hardware);
    m.latency_table = hw.latency_table;
  }
  if (m.latency_budget.set()) {
    if (m.hardware.empty())
      throw ConfigError(mp.where("latency_budget") + ": a latency budget needs `hardware:` (a profile with a latency_table)");
    if (m.latency_table.empty())
      throw ConfigError(mp.where("latency_budget") + ": hardware profile " + m.hardware + " has no latency_table");
    const LatencyTable table = LatencyTable::load(m.latency_table);
    const auto have = table.widths(m.latency_batch);
    std::vector<int> need = m.candidate_bits;
    need.push_back(m.latency_budget.uniform_bits > 0 ? m.latency_budget.uniform_bits : 16);
    for (int b : need)
      if (std::find(have.begin(), have.end(), b >= 16 ? 16 : b) == have.end())
        throw ConfigError(mp.where("latency_budget") + ": latency table " + m.latency_table + " has no entry for " +
                          std::to_string(b) + " bits at batch m=" + std::to_string(m.latency_batch) +
                          " (candidate widths and the budget's reference must be measured)");
  }
  mp.get_string("description", "");
  mp.check_all_used();
  if (!m.uniform && m.estimator.name == "none") throw ConfigError(mp.where() + ": method '" + m.name + "' needs a default `estimator:`");
  if (!m.uniform && m.allocator.name == "none") throw ConfigError(mp.where() + ": method '" + m.name + "' needs a default `allocator:`");
  return m;
}

std::vector<PluginSpec> plugin_list(const Params& sweep, const std::string& key, const std::string& kind,
                                    const std::shared_ptr<const SourceMap>& sm) {
  std::vector<PluginSpec> out;
  if (!sweep.has(key)) return out;
  YAML::Node n = sweep.node()[key];
  const std::string path = sweep.path() + "." + key;
  if (n.IsScalar() || n.IsMap()) {
    out.push_back(plugin_spec(n, path, sm, kind));
    return out;
  }
  if (!n.IsSequence()) throw ConfigError(sweep.where(key) + ": expected a list of " + kind + "s");
  for (std::size_t i = 0; i < n.size(); ++i) out.push_back(plugin_spec(n[i], path + "." + std::to_string(i), sm, kind));
  return out;
}

}  // namespace

nlohmann::json PluginSpec::to_json() const { return {{"name", name}, {"params", hawq::to_json(params)}}; }

std::string PluginSpec::label() const {
  if (!params || params.size() == 0) return name;
  std::string s = name + "(";
  bool first = true;
  for (const auto& kv : params) {
    s += (first ? "" : ",") + kv.first.Scalar() + "=" + (kv.second.IsScalar() ? kv.second.Scalar() : "...");
    first = false;
  }
  return s + ")";
}

nlohmann::json MethodSpec::to_json() const {
  nlohmann::json pins = nlohmann::json::object();
  for (const auto& kv : pin) pins[kv.first] = kv.second;
  nlohmann::json j = {{"name", name},           {"uniform", uniform},       {"partition", partition},
          {"signal", signal},       {"distortion", distortion}, {"candidate_bits", candidate_bits},
          {"pin", pins},            {"hardware", hardware}};
  // Only when used, so that points without a latency budget keep their ids.
  if (latency_budget.set()) {
    j["latency_budget"] = latency_budget.text();
    j["latency_batch"] = latency_batch;
  }
  return j;
}

Experiment resolve_experiment(const LoadedConfig& cfg) {
  Experiment e;
  e.config = cfg;
  e.path = cfg.path;
  Params root = cfg.params();
  check_keys(root, {"name", "description", "model", "data", "calibration", "evaluation", "estimation", "threads_per_rank",
                    "device", "output", "rebuild_every", "sweep"});
  e.name = root.get_string("name", std::filesystem::path(cfg.path).stem().string());
  root.get_string("description", "");
  if (!root.has("model")) throw ConfigError(cfg.path + ": missing `model:` (a model name or {name, params})");
  if (!root.has("data")) throw ConfigError(cfg.path + ": missing `data:` (a dataset name or {name, params})");
  e.model = plugin_spec(root, "model", "model", cfg.sources);
  e.data = plugin_spec(root, "data", "dataset", cfg.sources);
  Params cal = root.child("calibration");
  check_keys(cal, {"samples", "batch_size"});
  e.calib_samples = cal.get_int("samples", 256);
  e.calib_batch = cal.get_int("batch_size", 128);
  Params ev = root.child("evaluation");
  check_keys(ev, {"samples", "batch_size"});
  e.eval_samples = ev.get_int("samples", 0);
  e.eval_batch = ev.get_int("batch_size", 500);
  Params es = root.child("estimation");
  check_keys(es, {"oracle", "max_hvps", "rel_tol"});
  e.oracle = es.get_choice("oracle", "full", {"full", "layerwise"});
  e.max_hvps = es.get_int("max_hvps", 32);
  e.rel_tol = es.get_double("rel_tol", 0.0);
  e.threads_per_rank = static_cast<int>(root.get_int("threads_per_rank", 0));
  e.device = root.get_choice("device", "cpu", {"cpu", "cuda"});
  e.rebuild_every = root.get_int("rebuild_every", 4);
  e.output = root.get_string("output", "results/" + e.name + ".h5");
  if (e.calib_samples <= 0 || e.calib_batch <= 0 || e.eval_batch <= 0 || e.max_hvps <= 0)
    throw ConfigError(cfg.path + ": calibration samples/batch_size, evaluation batch_size and estimation max_hvps must be positive");

  if (!root.has("sweep")) throw ConfigError(cfg.path + ": missing `sweep:` (lists of methods, budgets, seeds, ...)");
  Params sw = root.child("sweep");
  check_keys(sw, {"methods", "estimators", "allocators", "quantizers", "budgets", "seeds"});
  if (!sw.has("methods")) throw ConfigError(sw.where() + ": missing `methods:` list");
  Params ml = sw.child("methods");
  if (!ml.node().IsSequence()) throw ConfigError(ml.where() + ": expected a list of methods");
  std::vector<MethodSpec> methods;
  for (std::size_t i = 0; i < ml.node().size(); ++i) methods.push_back(load_method(ml, i, cfg));
  auto estimators = plugin_list(sw, "estimators", "estimator", cfg.sources);
  auto allocators = plugin_list(sw, "allocators", "allocator", cfg.sources);
  auto quantizers = plugin_list(sw, "quantizers", "quantizer", cfg.sources);
  if (quantizers.empty()) {
    PluginSpec r;
    r.name = "rtn";
    r.params = YAML::Node(YAML::NodeType::Map);
    check_registered("quantizer", "rtn", sw.where());
    quantizers.push_back(r);
  }
  auto budgets = sw.get_double_list("budgets", {4});
  auto seeds = sw.get_int_list("seeds", {0});
  for (double b : budgets)
    if (!(b > 0 && b <= 16)) throw ConfigError(sw.where("budgets") + ": budgets are average bits per weight in (0, 16]");
  for (auto s : seeds)
    if (s < 0) throw ConfigError(sw.where("seeds") + ": seeds must be non-negative integers");

  e.base = {{"model", e.model.to_json()},
            {"data", e.data.to_json()},
            {"calibration", {{"samples", e.calib_samples}, {"batch_size", e.calib_batch}}},
            {"evaluation", {{"samples", e.eval_samples}, {"batch_size", e.eval_batch}}},
            {"estimation", {{"oracle", e.oracle}, {"max_hvps", e.max_hvps}, {"rel_tol", e.rel_tol}}},
            {"threads_per_rank", e.threads_per_rank},
            {"device", e.device}};
  e.base_fingerprint = fingerprint(e.base.dump());

  std::set<std::string> ids;
  for (const auto& m : methods) {
    std::vector<PluginSpec> ests{none_spec()}, allocs{none_spec()};
    if (!m.uniform) {
      ests = (m.estimator_fixed || estimators.empty()) ? std::vector<PluginSpec>{m.estimator} : estimators;
      allocs = allocators.empty() ? std::vector<PluginSpec>{m.allocator} : allocators;
    }
    for (const auto& est : ests)
      for (const auto& al : allocs)
        for (const auto& q : quantizers)
          for (double b : budgets) {
            // Uniform precision has integer widths only (DESIGN.md §10); other budgets are skipped.
            if (m.uniform && std::abs(b - std::round(b)) > 1e-9) continue;
            for (auto s : seeds) {
              Point p;
              p.method = m;
              p.estimator = est;
              p.allocator = al;
              p.quantizer = q;
              p.budget = b;
              p.seed = static_cast<std::uint64_t>(s);
              p.params = e.base;
              p.params["method"] = m.to_json();
              p.params["estimator"] = est.to_json();
              p.params["allocator"] = al.to_json();
              p.params["quantizer"] = q.to_json();
              p.params["budget_bits"] = b;
              p.params["seed"] = s;
              p.id = fingerprint(p.params.dump());
              if (!m.uniform) {
                nlohmann::json k = {{"base", e.base}, {"partition", m.partition}, {"estimator", est.to_json()}, {"seed", s}};
                p.estimate_key = fingerprint(k.dump());
              }
              if (!ids.insert(p.id).second) continue;  // duplicate list entries collapse to one point
              p.index = e.points.size();
              e.points.push_back(std::move(p));
            }
          }
  }
  if (e.points.empty()) throw ConfigError(sw.where() + ": the sweep expands to no points (uniform needs integer budgets)");
  return e;
}

}  // namespace hawq
