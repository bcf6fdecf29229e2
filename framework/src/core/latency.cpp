// Measured kernel latency tables and hardware profiles (latency.h).
#include "hawq/latency.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <regex>
#include <set>
#include <sstream>

#include "hawq/config.h"
#include "hawq/errors.h"
#include "hawq/fs.h"

namespace hawq {

namespace fsys = std::filesystem;

namespace {

std::string at(const std::string& file, const YAML::Node& n) {
  const auto m = n.Mark();
  return m.line < 0 ? file : file + ":" + std::to_string(m.line + 1);
}

template <typename T>
T field(const YAML::Node& e, const char* key, const std::string& where, const char* expected) {
  if (!e[key]) throw FormatError(where + ": latency entry lacks `" + key + "` (expected " + expected + ")");
  try {
    return e[key].as<T>();
  } catch (const YAML::Exception&) {
    throw FormatError(where + ": latency entry key `" + key + "` is not " + expected);
  }
}

// Parses a YAML file; a syntax error becomes Err naming the file.
template <class Err>
YAML::Node load_yaml(const std::string& path) {
  try {
    return YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    throw Err(path + ": not valid YAML (" + e.what() + ")");
  }
}

}  // namespace

LatencyTable::LatencyTable(std::vector<LatencyEntry> entries, std::string source)
    : entries_(std::move(entries)), source_(std::move(source)) {}

LatencyTable LatencyTable::load(const std::string& path) {
  if (!file_exists(path)) throw ConfigError("latency table " + path + " does not exist");
  const YAML::Node root = load_yaml<FormatError>(path);
  if (!root.IsSequence() || root.size() == 0)
    throw FormatError(path + ": expected a non-empty list of {n, k, m, bits, layout, us} entries");
  std::vector<LatencyEntry> out;
  for (std::size_t i = 0; i < root.size(); ++i) {
    const YAML::Node& e = root[i];
    const std::string where = at(path, e) + " (entry " + std::to_string(i) + ")";
    if (!e.IsMap()) throw FormatError(where + ": expected a map {n, k, m, bits, layout, us}");
    LatencyEntry x;
    x.n = field<std::int64_t>(e, "n", where, "a positive integer");
    x.k = field<std::int64_t>(e, "k", where, "a positive integer");
    x.m = field<std::int64_t>(e, "m", where, "a positive integer");
    x.avg_bits = field<double>(e, "bits", where, "a width in bits");
    x.layout = field<std::string>(e, "layout", where, "dense, aligned or unaligned");
    x.us = field<double>(e, "us", where, "microseconds");
    if (e["mix"]) {
      x.mixed = true;
      x.mix = field<std::string>(e, "mix", where, "a string");
      static const std::regex shares(R"(\d+:[0-9]*\.?[0-9]+(,\d+:[0-9]*\.?[0-9]+)*)"), pair(R"((\d+):([0-9.]+))");
      if (!std::regex_match(x.mix, shares))
        throw FormatError(where + ": `mix` must list width:share pairs, e.g. \"2:0.333,4:0.5,8:0.167\"");
      for (auto it = std::sregex_iterator(x.mix.begin(), x.mix.end(), pair); it != std::sregex_iterator(); ++it)
        x.mix_shares.push_back({std::stoi((*it)[1]), std::stod((*it)[2])});
    } else {
      x.bits = static_cast<int>(std::lround(x.avg_bits));
      if (std::abs(x.avg_bits - x.bits) > 1e-9 || x.bits < 1 || x.bits > 16)
        throw FormatError(where + ": `bits` must be an integer width in [1, 16] for an entry without `mix`");
    }
    if (x.n <= 0 || x.k <= 0 || x.m <= 0) throw FormatError(where + ": n, k and m must be positive");
    if (!(x.us > 0) || !std::isfinite(x.us)) throw FormatError(where + ": `us` must be a positive finite number");
    if (x.layout != "dense" && x.layout != "aligned" && x.layout != "unaligned")
      throw FormatError(where + ": layout '" + x.layout + "' (expected dense, aligned or unaligned)");
    out.push_back(x);
  }
  return LatencyTable(std::move(out), path);
}

double LatencyTable::layer_us(std::int64_t n, std::int64_t k, std::int64_t m, int bits, const std::string& layout_in) const {
  const std::string layout = !layout_in.empty() ? layout_in : (bits >= 16 ? "dense" : "aligned");
  const int b = bits >= 16 ? 16 : bits;
  std::vector<const LatencyEntry*> same;
  for (const auto& e : entries_) {
    if (e.mixed || e.m != m || e.bits != b || e.layout != layout) continue;
    if (e.n == n && e.k == k) return e.us;
    same.push_back(&e);
  }
  if (same.empty()) {
    std::ostringstream msg;
    msg << "latency table " << source_ << " has no " << layout << " entry for " << b << " bits at batch m=" << m
        << "; widths measured at that batch: ";
    const auto w = widths(m);
    if (w.empty()) msg << "none";
    for (std::size_t i = 0; i < w.size(); ++i) msg << (i ? ", " : "") << w[i];
    throw UserError(msg.str());
  }
  if (same.size() == 1) return same[0]->us * static_cast<double>(n * k) / static_cast<double>(same[0]->n * same[0]->k);
  // Least squares us = a + c·x over the measured shapes, x = n·k (in millions, for conditioning).
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  const double cnt = static_cast<double>(same.size());
  for (const auto* e : same) {
    const double x = static_cast<double>(e->n * e->k) * 1e-6;
    sx += x, sy += e->us, sxx += x * x, sxy += x * e->us;
  }
  const double den = cnt * sxx - sx * sx;
  double a = 0, c = 0;
  if (den > 1e-12 * cnt * sxx) {
    c = (cnt * sxy - sx * sy) / den;
    a = (sy - c * sx) / cnt;
  }
  if (!(den > 1e-12 * cnt * sxx) || a < 0 || c < 0) {  // one shape repeated, or a non-physical line: proportional fit
    a = 0;
    c = sxy / sxx;
  }
  return a + c * static_cast<double>(n * k) * 1e-6;
}

double LatencyTable::additive_us(std::int64_t n, std::int64_t k, std::int64_t m,
                                 const std::vector<std::pair<int, double>>& width_shares) const {
  double us = 0;
  for (const auto& [b, f] : width_shares)
    if (f > 0) us += f * layer_us(n, k, m, b);
  return us;
}

double LatencyTable::mixed_factor(std::int64_t m) const {
  std::vector<double> ratios;
  for (const auto& e : entries_) {
    if (!e.mixed || e.m != m || e.layout != "aligned") continue;
    const double add = additive_us(e.n, e.k, m, e.mix_shares);
    if (add > 0) ratios.push_back(e.us / add);
  }
  if (ratios.empty()) return 1.0;
  std::sort(ratios.begin(), ratios.end());
  const std::size_t h = ratios.size() / 2;
  return ratios.size() % 2 ? ratios[h] : 0.5 * (ratios[h - 1] + ratios[h]);
}

double LatencyTable::weight_us(std::int64_t n, std::int64_t k, std::int64_t m,
                               const std::vector<std::pair<int, double>>& width_shares) const {
  std::set<int> used;  // distinct widths (a caller may list one width several times, e.g. per block)
  for (const auto& ws : width_shares)
    if (ws.second > 0) used.insert(ws.first);
  const double add = additive_us(n, k, m, width_shares);
  return used.size() > 1 ? add * mixed_penalty(m) : add;
}

double LatencyTable::mixed_penalty(std::int64_t m) const { return std::max(1.0, mixed_factor(m)); }

std::vector<int> LatencyTable::widths(std::int64_t m) const {
  std::set<int> w;
  for (const auto& e : entries_)
    if (!e.mixed && e.m == m && (e.layout == "aligned" || e.layout == "dense")) w.insert(e.bits);
  return {w.begin(), w.end()};
}

HardwareProfile load_hardware_profile(const std::string& path_in) {
  const std::string path = resolve_path(path_in);
  if (!file_exists(path)) throw ConfigError("hardware profile " + path_in + " does not exist");
  const YAML::Node root = load_yaml<ConfigError>(path);
  if (!root.IsMap()) throw ConfigError(path + ": expected a map (name, supported_bits, latency_table, ...)");
  HardwareProfile h;
  h.path = path;
  try {
    h.name = root["name"] ? root["name"].as<std::string>() : fsys::path(path).stem().string();
    if (root["supported_bits"])
      for (const auto& b : root["supported_bits"]) h.supported_bits.push_back(b.as<int>());
    if (root["latency_table"]) h.latency_table = root["latency_table"].as<std::string>();
  } catch (const YAML::Exception&) {
    throw ConfigError(path + ": `name` must be a string, `supported_bits` a list of integers, `latency_table` a path");
  }
  if (!h.latency_table.empty()) {
    // Relative to the profile's folder first, then to the project root.
    const auto beside = fsys::path(path).parent_path() / h.latency_table;
    h.latency_table = fsys::exists(beside) ? beside.string() : resolve_path(h.latency_table);
    if (!file_exists(h.latency_table))
      throw ConfigError(at(path, root["latency_table"]) + ": latency_table '" + root["latency_table"].as<std::string>() +
                        "' does not exist (next to the profile or under the project root)");
  }
  return h;
}

std::string LatencyBudget::text() const {
  if (uniform_bits > 0) return "uniform:" + std::to_string(uniform_bits);
  std::ostringstream s;
  s << fraction_of_fp16;
  return s.str();
}

LatencyBudget parse_latency_budget(const std::string& text, const std::string& where) {
  static const std::regex uni(R"(uniform:(\d+))"), num(R"([0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?)");
  std::smatch m;
  LatencyBudget b;
  if (std::regex_match(text, m, uni)) {
    b.uniform_bits = std::stoi(m[1]);
    if (b.uniform_bits < 1 || b.uniform_bits > 16) throw ConfigError(where + ": uniform width must be in [1, 16]");
  } else if (std::regex_match(text, num)) {
    b.fraction_of_fp16 = std::stod(text);
    if (!(b.fraction_of_fp16 > 0)) throw ConfigError(where + ": a latency budget fraction must be positive");
  } else {
    throw ConfigError(where + ": latency_budget '" + text +
                      "' (expected a fraction of the fp16 model's latency, e.g. 0.35, or uniform:B, e.g. uniform:4)");
  }
  return b;
}

}  // namespace hawq
