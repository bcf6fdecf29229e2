// Result tables from a results file, in the shape of the seed chapter's tables.
#include "hawq/report.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "hawq/errors.h"
#include "hawq/results.h"

namespace hawq {

namespace {

struct Table {
  std::string title;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> notes;
};

std::string fmt(double v, int prec) {
  if (!std::isfinite(v)) return "-";
  std::ostringstream s;
  s << std::fixed << std::setprecision(prec) << v;
  return s.str();
}

std::string latex_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '_' || c == '%' || c == '&' || c == '#') o += '\\';
    o += c;
  }
  return o;
}

void render(const Table& t, const std::string& format, std::ostream& out) {
  if (format == "csv") {
    auto q = [](const std::string& s) {
      if (s.find_first_of(",\"\n") == std::string::npos) return s;
      std::string o = "\"";
      for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
      return o + "\"";
    };
    for (std::size_t i = 0; i < t.header.size(); ++i) out << (i ? "," : "") << q(t.header[i]);
    out << "\n";
    for (const auto& r : t.rows) {
      for (std::size_t i = 0; i < r.size(); ++i) out << (i ? "," : "") << q(r[i]);
      out << "\n";
    }
    return;
  }
  if (format == "latex") {
    out << "% " << t.title << "\n\\begin{tabular}{" << std::string(t.header.size(), 'l') << "}\n\\hline\n";
    for (std::size_t i = 0; i < t.header.size(); ++i) out << (i ? " & " : "") << latex_escape(t.header[i]);
    out << " \\\\\n\\hline\n";
    for (const auto& r : t.rows) {
      for (std::size_t i = 0; i < r.size(); ++i) out << (i ? " & " : "") << latex_escape(r[i]);
      out << " \\\\\n";
    }
    out << "\\hline\n\\end{tabular}\n";
    for (const auto& n : t.notes) out << "% " << n << "\n";
    return;
  }
  std::vector<std::size_t> w(t.header.size(), 3);
  for (std::size_t i = 0; i < t.header.size(); ++i) w[i] = std::max(w[i], t.header[i].size());
  for (const auto& r : t.rows)
    for (std::size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], r[i].size());
  out << "### " << t.title << "\n\n";
  auto line = [&](const std::vector<std::string>& r) {
    out << "|";
    for (std::size_t i = 0; i < w.size(); ++i) out << " " << std::left << std::setw(static_cast<int>(w[i])) << (i < r.size() ? r[i] : "") << " |";
    out << "\n";
  };
  line(t.header);
  out << "|";
  for (auto x : w) out << std::string(x + 2, '-') << "|";
  out << "\n";
  for (const auto& r : t.rows) line(r);
  if (!t.notes.empty()) out << "\n";
  for (const auto& n : t.notes) out << n << "\n";
  out << "\n";
}

struct Agg {
  std::vector<double> metric, avg_bits, eff_bits;
  int failed = 0;
  std::string first_error;
};

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? std::nan("") : s / static_cast<double>(v.size());
}
double stdev(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  double m = mean(v), s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}

Table method_table(const std::vector<SummaryRow>& rows, bool top1) {
  Table t;
  t.title = top1 ? "Top-1 accuracy: uniform vs Hessian-aware mixed precision (mean ± sd over seeds)"
                 : "Perplexity: uniform vs Hessian-aware mixed precision (mean ± sd over seeds)";
  t.header = {"Method", "Estimator", "Allocator", "Quantizer", "Budget", "Avg bits", "Eff. bits",
              top1 ? "Top-1 (%)" : "PPL", top1 ? "Drop vs FP (pts)" : "ΔPPL vs FP", "Seeds"};
  double baseline = std::nan("");
  std::int64_t calib = 0, eval = 0;
  std::string model, data;
  for (const auto& r : rows)
    if (std::isfinite(r.baseline_metric)) {
      baseline = r.baseline_metric;
      calib = std::max(calib, r.calib_samples);
      eval = std::max(eval, r.eval_samples);
      model = r.model;
      data = r.data;
    }
  const double scale = top1 ? 100.0 : 1.0;
  t.rows.push_back({"full precision", "-", "-", "-", "32", "32", "32", fmt(baseline * scale, 2), "0.00", "-"});
  // Keep sweep order of first appearance.
  std::vector<std::string> order;
  std::map<std::string, Agg> agg;
  std::map<std::string, std::vector<std::string>> key_cols;
  for (const auto& r : rows) {
    std::ostringstream k;
    k << r.method << "|" << r.estimator << "|" << r.allocator << "|" << r.quantizer << "|" << r.budget_bits;
    if (!agg.count(k.str())) {
      order.push_back(k.str());
      key_cols[k.str()] = {r.method, r.estimator, r.allocator, r.quantizer, fmt(r.budget_bits, 2)};
    }
    auto& a = agg[k.str()];
    if (r.status == "ok") {
      a.metric.push_back(r.metric * scale);
      a.avg_bits.push_back(r.avg_bits);
      a.eff_bits.push_back(r.effective_bits);
    } else {
      ++a.failed;
      if (a.first_error.empty()) a.first_error = r.message;
    }
  }
  // Sort by budget, then uniform first, then the sweep order.
  std::stable_sort(order.begin(), order.end(), [&](const std::string& x, const std::string& y) {
    double bx = std::stod(key_cols[x][4]), by = std::stod(key_cols[y][4]);
    if (bx != by) return bx < by;
    return (key_cols[x][0] == "uniform") > (key_cols[y][0] == "uniform");
  });
  for (const auto& k : order) {
    const auto& a = agg[k];
    auto row = key_cols[k];
    const double m = mean(a.metric);
    row.push_back(fmt(mean(a.avg_bits), 3));
    row.push_back(fmt(mean(a.eff_bits), 3));
    row.push_back(a.metric.empty() ? "failed" : fmt(m, 2) + " ± " + fmt(stdev(a.metric), 2));
    row.push_back(top1 ? fmt(baseline * scale - m, 2) : fmt(m - baseline, 3));
    row.push_back(std::to_string(a.metric.size()) + (a.failed ? " (+" + std::to_string(a.failed) + " failed)" : ""));
    t.rows.push_back(row);
    if (a.failed) t.notes.push_back("failed: " + key_cols[k][0] + " at " + key_cols[k][4] + " bits: " + a.first_error);
  }
  t.notes.insert(t.notes.begin(), "model " + model + ", data " + data + "; calibration " + std::to_string(calib) +
                                      " examples, evaluation " + std::to_string(eval) + " examples");
  return t;
}

Table points_table(const std::vector<SummaryRow>& rows) {
  Table t;
  t.title = "All points";
  t.header = {"Point", "Method", "Estimator", "Allocator", "Quantizer", "Budget", "Seed", "Avg bits", "Metric", "Value", "Status", "Seconds"};
  for (const auto& r : rows)
    t.rows.push_back({r.point_id, r.method, r.estimator, r.allocator, r.quantizer, fmt(r.budget_bits, 2), std::to_string(r.seed),
                      fmt(r.avg_bits, 3), r.metric_name, fmt(r.metric, 4), r.status == "ok" ? "ok" : "failed: " + r.message,
                      fmt(r.seconds, 1)});
  return t;
}

// Average bits per weight role and of the first/last weight, per (method, budget), averaged over
// seeds and the other sweep axes.
Table bits_table(const std::string& path, const std::vector<SummaryRow>& rows) {
  Table t;
  t.title = "Bit allocation by weight role (numel-weighted average bits; first/last = first and last quantised weight)";
  auto pbs = read_point_bits(path);
  std::map<std::string, const SummaryRow*> by_id;
  for (const auto& r : rows) by_id[r.point_id] = &r;
  std::set<std::string> roles;
  for (const auto& pb : pbs)
    for (const auto& r : pb.roles) roles.insert(r);
  t.header = {"Method", "Budget", "first", "last"};
  for (const auto& r : roles) t.header.push_back(r);
  std::set<int> widths;
  bool any_latency = false, any_mixed_latency = false;
  for (const auto& pb : pbs) {
    widths.insert(pb.bits.begin(), pb.bits.end());
    any_latency |= std::isfinite(pb.latency_us);
  }
  for (int w : widths) t.header.push_back("% at " + std::to_string(w) + "b");
  if (any_latency) t.header.push_back("latency µs (budget)");
  std::map<std::string, std::map<std::string, std::pair<double, double>>> acc;  // key -> col -> (bits*numel, numel)
  std::map<std::string, std::map<int, double>> at_width;                        // key -> width -> numel
  std::map<std::string, std::vector<double>> lat, lat_budget, lat_additive;
  std::vector<std::string> order;
  for (const auto& pb : pbs) {
    const auto* r = by_id[pb.point_id];
    if (!r || r->status != "ok" || pb.bits.empty()) continue;
    std::string key = r->method + "|" + fmt(r->budget_bits, 2);
    if (!acc.count(key)) order.push_back(key);
    auto& a = acc[key];
    for (std::size_t i = 0; i < pb.bits.size(); ++i) at_width[key][pb.bits[i]] += static_cast<double>(pb.numel[i]);
    if (std::isfinite(pb.latency_us)) lat[key].push_back(pb.latency_us);
    if (std::isfinite(pb.latency_budget_us)) lat_budget[key].push_back(pb.latency_budget_us);
    if (std::isfinite(pb.latency_additive_us)) lat_additive[key].push_back(pb.latency_additive_us);
    // First and last weights: the blocks sharing the first/last block's weight name prefix.
    auto weight_of = [](const std::string& b) { return b.substr(0, b.find_first_of("[#")); };
    const std::string first = weight_of(pb.blocks.front()), last = weight_of(pb.blocks.back());
    for (std::size_t i = 0; i < pb.bits.size(); ++i) {
      const double n = static_cast<double>(pb.numel[i]);
      a[pb.roles[i]].first += n * pb.bits[i];
      a[pb.roles[i]].second += n;
      if (weight_of(pb.blocks[i]) == first) {
        a["first"].first += n * pb.bits[i];
        a["first"].second += n;
      }
      if (weight_of(pb.blocks[i]) == last) {
        a["last"].first += n * pb.bits[i];
        a["last"].second += n;
      }
    }
  }
  for (const auto& k : order) {
    auto bar = k.find('|');
    std::vector<std::string> row = {k.substr(0, bar), k.substr(bar + 1)};
    for (std::size_t c = 2; c < 4 + roles.size(); ++c) {
      auto it = acc[k].find(t.header[c]);
      row.push_back(it == acc[k].end() || it->second.second == 0 ? "-" : fmt(it->second.first / it->second.second, 2));
    }
    double total = 0;
    for (const auto& [w, n] : at_width[k]) total += n;
    for (int w : widths) row.push_back(total > 0 ? fmt(100.0 * at_width[k][w] / total, 1) : "-");
    if (any_latency) {
      std::string cell = lat[k].empty() ? "-" : fmt(mean(lat[k]), 1);
      // The additive sum of the widths' latencies, where the estimate differs (weights split across widths).
      if (!lat[k].empty() && !lat_additive[k].empty() && fmt(mean(lat_additive[k]), 1) != fmt(mean(lat[k]), 1)) {
        cell += " [" + fmt(mean(lat_additive[k]), 1) + "]";
        any_mixed_latency = true;
      }
      if (!lat_budget[k].empty()) cell += " (" + fmt(mean(lat_budget[k]), 1) + ")";
      row.push_back(cell);
    }
    t.rows.push_back(row);
  }
  if (any_latency)
    t.notes.push_back("latency: the allocation's quantised weight GEMMs summed from the hardware profile's measured "
                      "latency table (mean over seeds); a budget in parentheses where the method set one");
  if (any_mixed_latency)
    t.notes.push_back("in brackets: the additive sum of the widths' latencies, before the table's mixed-width factor "
                      "for weights split across widths; the estimate applies it, and a latency budget bounds the estimate");
  return t;
}

// Average ranks (ties share the mean rank), for Spearman's rho.
std::vector<double> ranks(const std::vector<double>& v) {
  std::vector<std::size_t> idx(v.size());
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return v[a] < v[b]; });
  std::vector<double> r(v.size());
  for (std::size_t i = 0; i < idx.size();) {
    std::size_t j = i;
    while (j + 1 < idx.size() && v[idx[j + 1]] == v[idx[i]]) ++j;
    for (std::size_t t = i; t <= j; ++t) r[idx[t]] = 0.5 * static_cast<double>(i + j) + 1;
    i = j + 1;
  }
  return r;
}

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
  const double mx = mean(x), my = mean(y);
  double sxy = 0, sxx = 0, syy = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  return sxx > 0 && syy > 0 ? sxy / std::sqrt(sxx * syy) : std::nan("");
}

}  // namespace

double spearman(const std::vector<double>& x, const std::vector<double>& y) {
  HAWQ_CHECK(x.size() == y.size(), "spearman: sizes differ");
  if (x.size() < 2) return std::nan("");
  return pearson(ranks(x), ranks(y));
}

namespace {

// Every stored estimate (cost, spread), then the rank agreement of the estimators that share a
// partition: Spearman's rho over blocks, and how many of one's top-10% blocks the other also ranks
// in its top 10%.
std::vector<Table> estimator_tables(const std::string& path) {
  auto es = read_estimates(path);
  if (es.empty()) throw UserError("results file " + path + " has no estimates (uniform-only sweep?)");
  std::sort(es.begin(), es.end(), [](const EstimateRecord& a, const EstimateRecord& b) {
    return std::tie(a.partition, a.estimator, a.seed) < std::tie(b.partition, b.estimator, b.seed);
  });
  Table t;
  t.title = "Curvature estimates (one row per stored estimate)";
  t.header = {"Estimator", "Partition", "Seed", "Quantity", "Blocks", "HVPs/passes", "Seconds", "Peak MiB", "Median rel. s.e."};
  for (const auto& e : es) {
    std::vector<double> rel;
    for (std::size_t i = 0; i < e.estimate.size() && i < e.std_error.size(); ++i)
      if (std::isfinite(e.std_error[i]) && e.estimate[i] != 0) rel.push_back(std::abs(e.std_error[i] / e.estimate[i]));
    std::sort(rel.begin(), rel.end());
    t.rows.push_back({e.estimator, e.partition, std::to_string(e.seed), e.quantity, std::to_string(e.blocks.size()),
                      fmt(e.hvps, 0), fmt(e.seconds, 1), fmt(e.peak_bytes / (1024.0 * 1024.0), 0),
                      rel.empty() ? "-" : fmt(rel[rel.size() / 2], 3)});
  }
  Table a;
  a.title = "Agreement between estimators on the same partition (per-block estimates)";
  a.header = {"Partition", "Estimator A", "Estimator B", "Blocks", "Spearman rho", "Top-10% overlap"};
  auto label = [&](const EstimateRecord& e) {
    int same = 0;
    for (const auto& o : es) same += (o.estimator == e.estimator && o.partition == e.partition);
    return same > 1 ? e.estimator + " (seed " + std::to_string(e.seed) + ")" : e.estimator;
  };
  for (std::size_t i = 0; i < es.size(); ++i)
    for (std::size_t j = i + 1; j < es.size(); ++j) {
      const auto &x = es[i], &y = es[j];
      if (x.partition != y.partition || x.blocks != y.blocks || x.blocks.size() < 2) continue;
      const std::size_t n = x.blocks.size(), top = std::max<std::size_t>(1, n / 10);
      auto top_set = [&](const std::vector<double>& v) {
        std::vector<std::size_t> idx(n);
        for (std::size_t k = 0; k < n; ++k) idx[k] = k;
        std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(top), idx.end(),
                          [&](std::size_t p, std::size_t q) { return v[p] > v[q]; });
        return std::set<std::size_t>(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(top));
      };
      const auto tx = top_set(x.estimate), ty = top_set(y.estimate);
      std::size_t both = 0;
      for (auto k : tx) both += ty.count(k);
      a.rows.push_back({x.partition, label(x), label(y), std::to_string(n), fmt(spearman(x.estimate, y.estimate), 3),
                        std::to_string(both) + "/" + std::to_string(top)});
    }
  if (a.rows.empty()) a.notes.push_back("no two estimates share a partition");
  return {t, a};
}

}  // namespace

int print_report(const ReportOptions& o, std::ostream& out) {
  if (o.table == "estimators") {
    for (const auto& t : estimator_tables(o.path)) render(t, o.format, out);
    return 0;
  }
  auto rows = read_summary(o.path);
  if (rows.empty()) throw UserError("results file " + o.path + " has no points yet");
  std::string table = o.table;
  const bool top1 = rows.front().metric_name == "top1";
  if (table == "auto") {
    render(method_table(rows, top1), o.format, out);
    if (o.format == "markdown") render(bits_table(o.path, rows), o.format, out);
    return 0;
  }
  if (table == "resnet" || table == "llama" || table == "methods") render(method_table(rows, top1), o.format, out);
  else if (table == "points") render(points_table(rows), o.format, out);
  else if (table == "bits") render(bits_table(o.path, rows), o.format, out);
  else throw UserError("unknown table '" + table + "' (expected auto, resnet, llama, methods, points, bits or estimators)");
  return 0;
}

}  // namespace hawq
