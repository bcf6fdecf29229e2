// Self-registration of plugins (estimators, allocators, quantizers, models, datasets).
//
// Each plugin registers itself from its own translation unit with one macro; there is no central
// list. Plugin folders are built as CMake OBJECT libraries so the linker keeps those static
// registration objects. `hawq-bench list` walks every registry through registry_kinds().
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "hawq/errors.h"
#include "hawq/params.h"

namespace hawq {

// Levenshtein distance, used for "did you mean" suggestions.
std::size_t edit_distance(const std::string& a, const std::string& b);
// The closest candidate to `name` if it is close enough to be a plausible typo, else "".
std::string nearest_name(const std::string& name, const std::vector<std::string>& candidates);

// Every registry announces itself here so that `hawq-bench list` can print all plugins.
using NamesFn = std::function<std::vector<std::string>()>;
std::map<std::string, NamesFn>& registry_kinds();

template <class Base>
class Registry {
 public:
  using Factory = std::function<std::unique_ptr<Base>(const Params&)>;

  static Registry& instance() {
    static Registry r;
    return r;
  }

  bool add(const std::string& name, Factory f) {
    HAWQ_CHECK(factories_.count(name) == 0, "duplicate registration of " + std::string(Base::kKind) + " " + name);
    factories_[name] = std::move(f);
    return true;
  }

  bool contains(const std::string& name) const { return factories_.count(name) != 0; }

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& kv : factories_) out.push_back(kv.first);
    return out;
  }

  // Builds the plugin `name`, handing it its own `params:` block. Unknown names are user errors
  // that suggest the nearest registered name; `where` is the location of the name in the config.
  std::unique_ptr<Base> create(const std::string& name, const Params& params, const std::string& where = "") const {
    auto it = factories_.find(name);
    if (it == factories_.end()) throw ConfigError(unknown_message(name, where));
    auto obj = it->second(params);
    params.check_all_used();
    return obj;
  }

  std::string unknown_message(const std::string& name, const std::string& where) const {
    std::string msg = "unknown " + std::string(Base::kKind) + " '" + name + "'";
    if (!where.empty()) msg += " at " + where;
    std::string near = nearest_name(name, names());
    if (!near.empty()) {
      msg += "; did you mean '" + near + "'?";
    } else {
      msg += "; registered: ";
      auto n = names();
      for (std::size_t i = 0; i < n.size(); ++i) msg += (i ? ", " : "") + n[i];
    }
    return msg;
  }

 private:
  Registry() {
    registry_kinds()[Base::kKind] = [this] { return names(); };
  }
  std::map<std::string, Factory> factories_;
};

}  // namespace hawq

#define HAWQ_REGISTRY_CONCAT_(a, b) a##b
#define HAWQ_REGISTRY_CONCAT(a, b) HAWQ_REGISTRY_CONCAT_(a, b)

// Registers `Type` (constructible from `const hawq::Params&`) under `name` in Registry<Base>.
#define HAWQ_REGISTER_PLUGIN(Base, name, Type)                                                     \
  namespace {                                                                                      \
  [[maybe_unused]] const bool HAWQ_REGISTRY_CONCAT(hawq_registered_, __COUNTER__) =                \
      ::hawq::Registry<Base>::instance().add(                                                      \
          name, [](const ::hawq::Params& p) -> std::unique_ptr<Base> { return std::make_unique<Type>(p); }); \
  }
