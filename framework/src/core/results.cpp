// Results journal and HDF5 writer/reader (HDF5 C API).
#include "hawq/results.h"

#include <hdf5.h>

#include <cstring>
#include <ctime>
#include <filesystem>

#include "hawq/errors.h"
#include "hawq/fs.h"
#include "hawq/version.h"

namespace hawq {

namespace fsys = std::filesystem;

std::string iso_time_now() {
  std::time_t t = std::time(nullptr);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

// ------------------------------------------------------------------ journal

namespace {

nlohmann::json read_journal_meta(const std::string& meta, const std::string& advice) {
  try {
    return nlohmann::json::parse(read_file(meta));
  } catch (const nlohmann::json::exception&) {
    throw FormatError("results journal " + meta + " is corrupt; " + advice);
  }
}

}  // namespace

ResultStore::ResultStore(std::string h5_path, const RunInfo& info, bool force)
    : h5_path_(std::move(h5_path)), journal_(h5_path_ + ".journal"), info_(info) {
  const std::string meta = journal_ + "/meta.json";
  if (file_exists(meta)) {
    const nlohmann::json m = read_journal_meta(meta, "move it aside or pass --force");
    if (m.value("base_fingerprint", "") != info.base_fingerprint) {
      if (!force)
        throw ConfigError("results file " + h5_path_ + " belongs to a different experiment (model, data, calibration, " +
                          "evaluation or estimation settings changed: existing points would no longer match). " +
                          "Use another --out, or --force to start it afresh (the old journal is kept beside it)");
      std::string aside = journal_ + ".replaced-" + iso_time_now();
      fsys::rename(journal_, aside);
      std::fprintf(stderr, "hawq-bench: --force: previous journal moved to %s\n", aside.c_str());
    }
  }
  make_dirs(journal_);
  if (!file_exists(meta)) {
    nlohmann::json m = {{"base_fingerprint", info.base_fingerprint}, {"experiment", info.experiment_name}, {"created", iso_time_now()}};
    write_file_atomic(meta, m.dump(2));
  }
  // Load every record; a record that fails to parse (torn by a crash before rename cannot happen,
  // but a disk error can) is reported and skipped, so its point is simply run again.
  for (const auto& e : fsys::directory_iterator(journal_)) {
    const std::string name = e.path().filename().string();
    if (name == "meta.json" || e.path().extension() != ".json") continue;
    auto dash = name.find('-');
    if (dash == std::string::npos) continue;
    std::string kind = name.substr(0, dash), key = name.substr(dash + 1, name.size() - dash - 6);
    try {
      records_[kind][key] = nlohmann::json::parse(read_file(e.path().string()));
    } catch (const std::exception& ex) {
      std::fprintf(stderr, "hawq-bench: skipping unreadable journal record %s: %s\n", name.c_str(), ex.what());
    }
  }
}

bool ResultStore::has(const std::string& kind, const std::string& key) const { return get(kind, key) != nullptr; }

const nlohmann::json* ResultStore::get(const std::string& kind, const std::string& key) const {
  auto k = records_.find(kind);
  if (k == records_.end()) return nullptr;
  auto r = k->second.find(key);
  return r == k->second.end() ? nullptr : &r->second;
}

void ResultStore::append(const std::string& kind, const std::string& key, const nlohmann::json& record) {
  write_file_atomic(journal_ + "/" + kind + "-" + key + ".json", record.dump());
  records_[kind][key] = record;
}

void ResultStore::rebuild(bool finished) {
  make_dirs(dir_name(h5_path_));
  const std::string tmp = h5_path_ + ".tmp";
  write_results_hdf5(tmp, info_, records_, finished);
  if (std::rename(tmp.c_str(), h5_path_.c_str()) != 0) throw UserError("cannot rename " + tmp + " to " + h5_path_);
}

// ------------------------------------------------------------------ HDF5 helpers

namespace {

struct H5Silence {
  H5Silence() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }
};

hid_t vlen_str() {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

void attr_str(hid_t obj, const char* name, const std::string& v) {
  hid_t t = vlen_str(), s = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
  const char* p = v.c_str();
  H5Awrite(a, t, &p);
  H5Aclose(a);
  H5Sclose(s);
  H5Tclose(t);
}

void attr_num(hid_t obj, const char* name, double v) {
  hid_t s = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(obj, name, H5T_NATIVE_DOUBLE, s, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_DOUBLE, &v);
  H5Aclose(a);
  H5Sclose(s);
}

void attr_int(hid_t obj, const char* name, long long v) {
  hid_t s = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(obj, name, H5T_NATIVE_LLONG, s, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_LLONG, &v);
  H5Aclose(a);
  H5Sclose(s);
}

void attr_json(hid_t obj, const std::string& name, const nlohmann::json& v) {
  if (v.is_string()) attr_str(obj, name.c_str(), v.get<std::string>());
  else if (v.is_number_integer()) attr_int(obj, name.c_str(), v.get<long long>());
  else if (v.is_number()) attr_num(obj, name.c_str(), v.get<double>());
  else if (v.is_boolean()) attr_int(obj, name.c_str(), v.get<bool>() ? 1 : 0);
  else if (!v.is_null()) attr_str(obj, name.c_str(), v.dump());
}

template <class T>
void dataset_1d(hid_t loc, const char* name, hid_t type, const std::vector<T>& v) {
  hsize_t n = v.size();
  hid_t s = H5Screate_simple(1, &n, nullptr);
  hid_t d = H5Dcreate2(loc, name, type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (n > 0) H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
  H5Dclose(d);
  H5Sclose(s);
}

void dataset_strings(hid_t loc, const char* name, const std::vector<std::string>& v) {
  std::vector<const char*> ptrs;
  for (const auto& s : v) ptrs.push_back(s.c_str());
  hid_t t = vlen_str();
  dataset_1d(loc, name, t, ptrs);
  H5Tclose(t);
}

template <class T>
std::vector<T> json_vec(const nlohmann::json& j, const char* key) {
  std::vector<T> out;
  if (j.contains(key) && j[key].is_array())
    for (const auto& e : j[key]) out.push_back(e.is_null() ? T{} : e.get<T>());
  return out;
}

hid_t group(hid_t loc, const std::string& name) { return H5Gcreate2(loc, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT); }

void write_estimate(hid_t g, const nlohmann::json& e) {
  for (const char* k : {"estimator", "quantity", "note", "partition"})
    if (e.contains(k)) attr_json(g, k, e[k]);
  for (const char* k : {"hvps", "seconds", "peak_bytes", "seed"})
    if (e.contains(k)) attr_json(g, k, e[k]);
  dataset_strings(g, "block", json_vec<std::string>(e, "blocks"));
  dataset_1d(g, "estimate", H5T_NATIVE_DOUBLE, json_vec<double>(e, "estimate"));
  dataset_1d(g, "std_error", H5T_NATIVE_DOUBLE, json_vec<double>(e, "std_error"));
  dataset_1d(g, "samples", H5T_NATIVE_LLONG, json_vec<long long>(e, "samples"));
  dataset_1d(g, "numel", H5T_NATIVE_LLONG, json_vec<long long>(e, "numel"));
  dataset_1d(g, "weight_norm2", H5T_NATIVE_DOUBLE, json_vec<double>(e, "weight_norm2"));
  dataset_1d(g, "raw_samples", H5T_NATIVE_DOUBLE, json_vec<double>(e, "raw_samples"));
}

// The /summary row as stored (vlen strings are char*).
struct RowH5 {
  const char *point_id, *model, *data, *method, *partition, *estimator, *allocator, *quantizer, *metric_name, *status, *message;
  double budget_bits, avg_bits, effective_bits, metric, baseline_metric, seconds;
  long long seed, calib_samples, eval_samples;
};

hid_t summary_type() {
  hid_t s = vlen_str();
  hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(RowH5));
  H5Tinsert(t, "point_id", HOFFSET(RowH5, point_id), s);
  H5Tinsert(t, "model", HOFFSET(RowH5, model), s);
  H5Tinsert(t, "data", HOFFSET(RowH5, data), s);
  H5Tinsert(t, "method", HOFFSET(RowH5, method), s);
  H5Tinsert(t, "partition", HOFFSET(RowH5, partition), s);
  H5Tinsert(t, "estimator", HOFFSET(RowH5, estimator), s);
  H5Tinsert(t, "allocator", HOFFSET(RowH5, allocator), s);
  H5Tinsert(t, "quantizer", HOFFSET(RowH5, quantizer), s);
  H5Tinsert(t, "budget_bits", HOFFSET(RowH5, budget_bits), H5T_NATIVE_DOUBLE);
  H5Tinsert(t, "seed", HOFFSET(RowH5, seed), H5T_NATIVE_LLONG);
  H5Tinsert(t, "avg_bits", HOFFSET(RowH5, avg_bits), H5T_NATIVE_DOUBLE);
  H5Tinsert(t, "effective_bits", HOFFSET(RowH5, effective_bits), H5T_NATIVE_DOUBLE);
  H5Tinsert(t, "metric_name", HOFFSET(RowH5, metric_name), s);
  H5Tinsert(t, "metric", HOFFSET(RowH5, metric), H5T_NATIVE_DOUBLE);
  H5Tinsert(t, "baseline_metric", HOFFSET(RowH5, baseline_metric), H5T_NATIVE_DOUBLE);
  H5Tinsert(t, "calib_samples", HOFFSET(RowH5, calib_samples), H5T_NATIVE_LLONG);
  H5Tinsert(t, "eval_samples", HOFFSET(RowH5, eval_samples), H5T_NATIVE_LLONG);
  H5Tinsert(t, "status", HOFFSET(RowH5, status), s);
  H5Tinsert(t, "message", HOFFSET(RowH5, message), s);
  H5Tinsert(t, "seconds", HOFFSET(RowH5, seconds), H5T_NATIVE_DOUBLE);
  H5Tclose(s);
  return t;
}

std::string lib_versions() {
  unsigned maj, min, rel;
  H5get_libversion(&maj, &min, &rel);
  return std::to_string(maj) + "." + std::to_string(min) + "." + std::to_string(rel);
}

}  // namespace

void write_results_hdf5(const std::string& path, const RunInfo& info,
                        const std::map<std::string, std::map<std::string, nlohmann::json>>& records, bool finished) {
  H5Silence silence;
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0)
    throw UserError("cannot create HDF5 file " + path +
                    " (on cluster file systems without locking, set HDF5_USE_FILE_LOCKING=FALSE)");
  attr_str(f, "tool_version", HAWQ_VERSION);
  attr_str(f, "git_revision", HAWQ_GIT_REVISION);
  attr_str(f, "experiment", info.experiment_name);
  attr_str(f, "resolved_yaml", info.resolved_yaml);
  attr_str(f, "base_fingerprint", info.base_fingerprint);
  attr_str(f, "command", info.command_line);
  attr_int(f, "mpi_size", info.mpi_size);
  attr_int(f, "threads_per_rank", info.threads_per_rank);
  attr_str(f, "host", info.host);
  attr_str(f, "started", info.started);
  attr_str(f, "finished", finished ? iso_time_now() : "running");
  attr_str(f, "hdf5_version", lib_versions());
  attr_str(f, "library_versions", info.library_versions_json);

  auto kind = [&](const char* k) -> const std::map<std::string, nlohmann::json>& {
    static const std::map<std::string, nlohmann::json> empty;
    auto it = records.find(k);
    return it == records.end() ? empty : it->second;
  };

  hid_t est = group(f, "estimates");
  for (const auto& [key, e] : kind("estimate")) {
    hid_t g = group(est, key);
    write_estimate(g, e);
    H5Gclose(g);
  }
  H5Gclose(est);

  std::map<std::string, double> baseline_by_key;
  hid_t base = group(f, "baseline");
  for (const auto& [key, b] : kind("baseline")) {
    hid_t g = group(base, key);
    for (auto it = b.begin(); it != b.end(); ++it) attr_json(g, it.key(), it.value());
    H5Gclose(g);
    baseline_by_key[key] = b.value("metric", 0.0);
  }
  H5Gclose(base);

  // Points in sweep order.
  std::vector<const nlohmann::json*> pts;
  for (const auto& [key, p] : kind("point")) pts.push_back(&p);
  std::sort(pts.begin(), pts.end(), [](auto* a, auto* b) { return a->value("index", 0) < b->value("index", 0); });

  hid_t pg = group(f, "points");
  std::vector<RowH5> rows;
  std::vector<std::string> keep;  // owns the strings the rows point at
  keep.reserve(pts.size() * 11);
  for (const auto* pp : pts) {
    const auto& p = *pp;
    const std::string id = p.value("id", "");
    hid_t g = group(pg, id);
    for (auto it = p.begin(); it != p.end(); ++it) {
      if (it.key() == "allocation" || it.key() == "timings" || it.key() == "params") continue;
      attr_json(g, it.key(), it.value());
    }
    if (p.contains("params")) attr_str(g, "params_json", p["params"].dump());
    if (p.contains("timings")) {
      hid_t t = group(g, "timings");
      for (auto it = p["timings"].begin(); it != p["timings"].end(); ++it) attr_json(t, it.key(), it.value());
      H5Gclose(t);
    }
    if (p.contains("allocation")) {
      const auto& a = p["allocation"];
      hid_t ag = group(g, "allocation");
      dataset_strings(ag, "block", json_vec<std::string>(a, "blocks"));
      dataset_strings(ag, "role", json_vec<std::string>(a, "roles"));
      dataset_1d(ag, "numel", H5T_NATIVE_LLONG, json_vec<long long>(a, "numel"));
      dataset_1d(ag, "bits", H5T_NATIVE_INT, json_vec<int>(a, "bits"));
      for (const char* k : {"objective", "gap_bound", "note", "solver_seconds", "cost_bits", "cost_latency_us",
                            "cost_latency_us_additive", "latency_budget_us", "latency_batch", "latency_table"})
        if (a.contains(k)) attr_json(ag, k, a[k]);
      H5Gclose(ag);
    }
    const std::string ek = p.value("estimate_key", "");
    if (!ek.empty() && records.count("estimate") && records.at("estimate").count(ek))
      H5Lcreate_soft(("/estimates/" + ek).c_str(), g, "sensitivity", H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(g);

    auto s = [&](const char* k) -> const char* {
      keep.push_back(p.contains(k) && p[k].is_string() ? p[k].get<std::string>() : "");
      return keep.back().c_str();
    };
    RowH5 r{};
    r.point_id = s("id");
    r.model = s("model");
    r.data = s("data");
    r.method = s("method");
    r.partition = s("partition");
    r.estimator = s("estimator");
    r.allocator = s("allocator");
    r.quantizer = s("quantizer");
    r.metric_name = s("metric_name");
    r.status = s("status");
    r.message = s("message");
    r.budget_bits = p.value("budget_bits", 0.0);
    r.avg_bits = p.value("avg_bits", std::nan(""));
    r.effective_bits = p.value("effective_bits", std::nan(""));
    r.metric = p.value("metric", std::nan(""));
    auto bk = baseline_by_key.find(p.value("baseline_key", ""));
    r.baseline_metric = bk == baseline_by_key.end() ? std::nan("") : bk->second;
    r.seconds = p.contains("timings") ? p["timings"].value("total", 0.0) : 0.0;
    r.seed = p.value("seed", 0LL);
    r.calib_samples = p.value("calib_samples", 0LL);
    r.eval_samples = p.value("eval_samples", 0LL);
    rows.push_back(r);
  }
  H5Gclose(pg);
  hid_t t = summary_type();
  dataset_1d(f, "summary", t, rows);
  H5Tclose(t);

  if (records.count("kernel")) {
    // /kernels/<key>/: the run's scalars as attributes; every list of rows ("rows", the decode
    // study, ...) as a subgroup of column datasets (numbers as float64, text as strings).
    hid_t kg = group(f, "kernels");
    for (const auto& [key, k] : records.at("kernel")) {
      hid_t g = group(kg, key);
      for (auto it = k.begin(); it != k.end(); ++it) {
        const auto& v = it.value();
        if (!(v.is_array() && !v.empty() && v.front().is_object())) {
          attr_json(g, it.key(), v);
          continue;
        }
        hid_t tg = group(g, it.key());
        std::vector<std::string> cols;
        for (auto c = v.front().begin(); c != v.front().end(); ++c) cols.push_back(c.key());
        for (const auto& c : cols) {
          const bool text = v.front()[c].is_string();
          std::vector<double> num;
          std::vector<std::string> str;
          for (const auto& row : v) {
            const auto cell = row.contains(c) ? row[c] : nlohmann::json();
            if (text) str.push_back(cell.is_string() ? cell.get<std::string>() : cell.dump());
            else num.push_back(cell.is_number() ? cell.get<double>() : std::nan(""));
          }
          if (text) dataset_strings(tg, c.c_str(), str);
          else dataset_1d(tg, c.c_str(), H5T_NATIVE_DOUBLE, num);
        }
        H5Gclose(tg);
      }
      H5Gclose(g);
    }
    H5Gclose(kg);
  }
  if (H5Fclose(f) < 0) throw UserError("cannot finish writing HDF5 file " + path);
}

// ------------------------------------------------------------------ reading

namespace {

hid_t open_results(const std::string& path) {
  H5Silence silence;
  if (!file_exists(path)) throw UserError("results file not found: " + path);
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) throw FormatError("cannot open results file " + path + " (not an HDF5 file, or truncated)");
  return f;
}

}  // namespace

std::vector<SummaryRow> read_summary(const std::string& path) {
  hid_t f = open_results(path);
  hid_t d = H5Dopen2(f, "summary", H5P_DEFAULT);
  if (d < 0) {
    H5Fclose(f);
    throw FormatError("results file " + path + " has no /summary table");
  }
  hid_t s = H5Dget_space(d);
  hsize_t n = 0;
  H5Sget_simple_extent_dims(s, &n, nullptr);
  std::vector<RowH5> raw(n);
  hid_t t = summary_type();
  if (n > 0 && H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data()) < 0) {
    H5Fclose(f);
    throw FormatError("results file " + path + ": cannot read /summary");
  }
  std::vector<SummaryRow> out;
  auto str = [](const char* c) { return c ? std::string(c) : std::string(); };
  for (const auto& r : raw) {
    SummaryRow o;
    o.point_id = str(r.point_id);
    o.model = str(r.model);
    o.data = str(r.data);
    o.method = str(r.method);
    o.partition = str(r.partition);
    o.estimator = str(r.estimator);
    o.allocator = str(r.allocator);
    o.quantizer = str(r.quantizer);
    o.metric_name = str(r.metric_name);
    o.status = str(r.status);
    o.message = str(r.message);
    o.budget_bits = r.budget_bits;
    o.avg_bits = r.avg_bits;
    o.effective_bits = r.effective_bits;
    o.metric = r.metric;
    o.baseline_metric = r.baseline_metric;
    o.seconds = r.seconds;
    o.seed = r.seed;
    o.calib_samples = r.calib_samples;
    o.eval_samples = r.eval_samples;
    out.push_back(o);
  }
  if (n > 0) H5Dvlen_reclaim(t, s, H5P_DEFAULT, raw.data());
  H5Tclose(t);
  H5Sclose(s);
  H5Dclose(d);
  H5Fclose(f);
  return out;
}

namespace {

// A numeric attribute as double (integers convert), NaN when absent.
double read_num_attr(hid_t obj, const char* name) {
  double v = std::nan("");
  if (H5Aexists(obj, name) <= 0) return v;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  H5Aread(a, H5T_NATIVE_DOUBLE, &v);
  H5Aclose(a);
  return v;
}

std::string read_str_attr(hid_t obj, const char* name) {
  if (H5Aexists(obj, name) <= 0) return "";
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  hid_t ft = H5Aget_type(a);
  std::string out;
  if (H5Tget_class(ft) == H5T_STRING) {
    hid_t t = vlen_str();
    char* p = nullptr;
    if (H5Aread(a, t, &p) >= 0 && p) {
      out = p;
      H5free_memory(p);
    }
    H5Tclose(t);
  } else {
    double v = 0;
    H5Aread(a, H5T_NATIVE_DOUBLE, &v);
    out = std::to_string(v);
  }
  H5Tclose(ft);
  H5Aclose(a);
  return out;
}

template <class T>
std::vector<T> read_vec(hid_t g, const char* name, hid_t type) {
  std::vector<T> out;
  hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
  if (d < 0) return out;
  hid_t s = H5Dget_space(d);
  hsize_t n = 0;
  H5Sget_simple_extent_dims(s, &n, nullptr);
  out.resize(n);
  if (n) H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data());
  H5Sclose(s);
  H5Dclose(d);
  return out;
}

std::vector<std::string> read_strings(hid_t g, const char* name) {
  std::vector<std::string> out;
  hid_t t = vlen_str();
  auto raw = read_vec<char*>(g, name, t);
  for (auto* p : raw) {
    out.push_back(p ? p : "");
    if (p) H5free_memory(p);
  }
  H5Tclose(t);
  return out;
}

}  // namespace

std::map<std::string, std::string> read_root_attributes(const std::string& path) {
  hid_t f = open_results(path);
  std::map<std::string, std::string> out;
  for (const char* k : {"tool_version", "git_revision", "experiment", "resolved_yaml", "command", "host", "started", "finished",
                        "hdf5_version", "library_versions", "mpi_size", "threads_per_rank"})
    out[k] = read_str_attr(f, k);
  H5Fclose(f);
  return out;
}

std::vector<PointBits> read_point_bits(const std::string& path) {
  hid_t f = open_results(path);
  std::vector<PointBits> out;
  for (const auto& r : read_summary(path)) {
    std::string gp = "/points/" + r.point_id + "/allocation";
    if (H5Lexists(f, ("/points/" + r.point_id).c_str(), H5P_DEFAULT) <= 0 || H5Lexists(f, gp.c_str(), H5P_DEFAULT) <= 0) continue;
    hid_t g = H5Gopen2(f, gp.c_str(), H5P_DEFAULT);
    PointBits pb;
    pb.point_id = r.point_id;
    pb.blocks = read_strings(g, "block");
    pb.roles = read_strings(g, "role");
    pb.numel = read_vec<long long>(g, "numel", H5T_NATIVE_LLONG);
    pb.bits = read_vec<int>(g, "bits", H5T_NATIVE_INT);
    pb.latency_us = read_num_attr(g, "cost_latency_us");
    pb.latency_budget_us = read_num_attr(g, "latency_budget_us");
    pb.latency_additive_us = read_num_attr(g, "cost_latency_us_additive");
    H5Gclose(g);
    out.push_back(std::move(pb));
  }
  H5Fclose(f);
  return out;
}

std::vector<EstimateRecord> read_estimates(const std::string& path) {
  hid_t f = open_results(path);
  std::vector<EstimateRecord> out;
  hid_t est = H5Gopen2(f, "/estimates", H5P_DEFAULT);
  if (est >= 0) {
    H5G_info_t info;
    H5Gget_info(est, &info);
    for (hsize_t i = 0; i < info.nlinks; ++i) {
      char name[256] = {0};
      H5Lget_name_by_idx(est, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT);
      hid_t g = H5Gopen2(est, name, H5P_DEFAULT);
      EstimateRecord e;
      e.key = name;
      e.estimator = read_str_attr(g, "estimator");
      e.partition = read_str_attr(g, "partition");
      e.quantity = read_str_attr(g, "quantity");
      e.hvps = read_num_attr(g, "hvps");
      e.seconds = read_num_attr(g, "seconds");
      e.peak_bytes = read_num_attr(g, "peak_bytes");
      e.seed = static_cast<long long>(read_num_attr(g, "seed"));
      e.blocks = read_strings(g, "block");
      e.estimate = read_vec<double>(g, "estimate", H5T_NATIVE_DOUBLE);
      e.std_error = read_vec<double>(g, "std_error", H5T_NATIVE_DOUBLE);
      H5Gclose(g);
      out.push_back(std::move(e));
    }
    H5Gclose(est);
  }
  H5Fclose(f);
  return out;
}

std::string import_kernel_results(const std::string& h5_path, const std::string& json_path) {
  nlohmann::json k;
  try {
    k = nlohmann::json::parse(read_file(json_path));
  } catch (const nlohmann::json::exception& e) {
    throw FormatError(json_path + ": not valid JSON (" + e.what() + ")");
  }
  if (!k.is_object() || !k.contains("rows") || !k["rows"].is_array() || k["rows"].empty() || !k.contains("card"))
    throw FormatError(json_path + ": expected kernels_bench output (an object with `card` and a non-empty `rows` list)");
  for (const auto& r : k["rows"])
    for (const char* c : {"n", "k", "m", "variant", "us"})
      if (!r.is_object() || !r.contains(c))
        throw FormatError(json_path + ": a row lacks `" + std::string(c) + "` (kernels_bench rows have n, k, m, variant, us, ...)");
  const std::string key = fingerprint(k.dump());  // the content's: the same file under any path, one group
  k["source_file"] = json_path;
  // Reuse the journal's owner (an experiment's results file gains a /kernels group), or start a
  // kernels-only file.
  RunInfo info;
  const std::string meta = h5_path + ".journal/meta.json";
  if (file_exists(meta)) {
    const nlohmann::json m = read_journal_meta(meta, "nothing imported");
    info.base_fingerprint = m.value("base_fingerprint", "");
    info.experiment_name = m.value("experiment", "");
    if (file_exists(h5_path)) {
      auto a = read_root_attributes(h5_path);
      info.resolved_yaml = a["resolved_yaml"];
      info.command_line = a["command"];
      info.host = a["host"];
      info.started = a["started"];
      info.library_versions_json = a["library_versions"];
      if (!a["mpi_size"].empty()) info.mpi_size = static_cast<int>(std::stod(a["mpi_size"]));
      if (!a["threads_per_rank"].empty()) info.threads_per_rank = static_cast<int>(std::stod(a["threads_per_rank"]));
    }
  } else {
    info.base_fingerprint = "kernels";
    info.experiment_name = "kernels";
    info.started = iso_time_now();
  }
  ResultStore store(h5_path, info, false);
  store.append("kernel", key, k);
  store.rebuild(true);
  return key;
}

}  // namespace hawq
