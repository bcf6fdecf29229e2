// Result tables from a results file, in the shape of the seed chapter's tables.
#include "hawq/report.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>

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
  std::map<std::string, std::map<std::string, std::pair<double, double>>> acc;  // key -> col -> (bits*numel, numel)
  std::vector<std::string> order;
  for (const auto& pb : pbs) {
    const auto* r = by_id[pb.point_id];
    if (!r || r->status != "ok" || pb.bits.empty()) continue;
    std::string key = r->method + "|" + fmt(r->budget_bits, 2);
    if (!acc.count(key)) order.push_back(key);
    auto& a = acc[key];
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
    for (std::size_t c = 2; c < t.header.size(); ++c) {
      auto it = acc[k].find(t.header[c]);
      row.push_back(it == acc[k].end() || it->second.second == 0 ? "-" : fmt(it->second.first / it->second.second, 2));
    }
    t.rows.push_back(row);
  }
  return t;
}

}  // namespace

int print_report(const ReportOptions& o, std::ostream& out) {
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
  else throw UserError("unknown table '" + table + "' (expected auto, resnet, llama, methods, points or bits)");
  return 0;
}

}  // namespace hawq
