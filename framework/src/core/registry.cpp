// Registry support: the table of plugin kinds and did-you-mean suggestions.
#include "hawq/registry.h"

#include <algorithm>

namespace hawq {

std::map<std::string, NamesFn>& registry_kinds() {
  static std::map<std::string, NamesFn> kinds;
  return kinds;
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string nearest_name(const std::string& name, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_d = std::string::npos;
  for (const auto& c : candidates) {
    std::size_t d = edit_distance(name, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  // A plausible typo: at most a third of the longer name differs (and at least one edit allowed).
  std::size_t limit = std::max<std::size_t>(2, std::max(name.size(), best.size()) / 3);
  return best_d <= limit ? best : "";
}

}  // namespace hawq
