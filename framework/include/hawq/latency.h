// Measured kernel latency as an allocation cost (HAWQ-V3's latency budget). Torch-free.
//
// A latency table is the YAML list kernels_bench writes (configs/hardware/h100_latency.yaml):
// one entry per measured GEMM, {n, k, m, bits, layout, us}, n × k = out × in features, m = batch
// rows, us = median microseconds; layout `dense` with bits 16 is cuBLAS fp16, `aligned` the
// kernels' one-width-per-tile layout. Entries carrying `mix` (mixed-width matrices) are
// validation points for the additive model below and are not used as costs.
//
// Cost model: a weight of shape n × k at width b takes us(n, k, m, b), taken from the table when
// that shape was measured and otherwise from a per-(m, b) least-squares line
// us = a + c · n·k over the measured shapes (within 4 % on the H100 table; a is the launch and
// reduction overhead, which dominates small layers). A block holding a fraction f of its weight's
// elements costs f · us(n, k, m, b) at width b, so a mixed-width layer's additive cost is the
// element-weighted mean of its widths' latencies. A weight that ends up with more than one width
// runs the kernels' mixed path (per-unit metadata and width dispatch), which the `mix` entries show
// to be slower than the additive cost by a roughly constant factor; mixed_factor() is that factor
// (median over the table's mixed entries at batch m) and weight_us() applies it (never below 1:
// mixed_penalty()). The framework's
// latency resource carries it as a mixed-width penalty per weight (Resource::mix_group), so the
// `hardware` ILP bounds that estimate, not just the additive cost.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace hawq {

struct LatencyEntry {
  std::int64_t n = 0, k = 0, m = 0;
  int bits = 0;            // 16 for dense fp16
  std::string layout;      // dense, aligned, unaligned
  double us = 0;
  bool mixed = false;      // a `mix` entry (average width in `avg_bits`)
  double avg_bits = 0;
  std::string mix;         // "2:0.333,4:0.5,8:0.167" for mixed entries
  std::vector<std::pair<int, double>> mix_shares;  // the same, parsed: (width, share of the elements)
};

class LatencyTable {
 public:
  LatencyTable() = default;
  LatencyTable(std::vector<LatencyEntry> entries, std::string source);
  // Reads a table file; throws FormatError naming the file and entry on malformed input.
  static LatencyTable load(const std::string& path);

  // Microseconds for one n × k weight at batch m and width `bits` (16: dense fp16) in `layout`
  // (aligned for quantised widths). Throws UserError when the table has no entry for (m, bits).
  double layer_us(std::int64_t n, std::int64_t k, std::int64_t m, int bits,
                  const std::string& layout = "") const;
  // Widths measured at batch m in the aligned layout.
  std::vector<int> widths(std::int64_t m) const;
  // Additive cost of a weight whose elements are split over widths: sum of share · us(n, k, m, b).
  double additive_us(std::int64_t n, std::int64_t k, std::int64_t m,
                     const std::vector<std::pair<int, double>>& width_shares) const;
  // Measured over additive latency of the table's mixed aligned entries at batch m (median; 1 when
  // the table has none).
  double mixed_factor(std::int64_t m) const;
  // The factor the latency model charges a mixed-width weight: mixed_factor(m), but never below 1
  // (a table whose mixed entries measured faster than additive is charged the additive cost). The
  // allocators' latency resource and weight_us() both use it, so a latency budget bounds exactly
  // the estimate that is recorded.
  double mixed_penalty(std::int64_t m) const;
  // Estimated latency of a weight with these width shares: the additive cost, times mixed_penalty(m)
  // when more than one distinct width has a positive share (a width may be listed more than once).
  double weight_us(std::int64_t n, std::int64_t k, std::int64_t m,
                   const std::vector<std::pair<int, double>>& width_shares) const;
  const std::vector<LatencyEntry>& entries() const { return entries_; }
  const std::string& source() const { return source_; }
  bool empty() const { return entries_.empty(); }

 private:
  std::vector<LatencyEntry> entries_;
  std::string source_;
};

// The parts of a hardware profile (configs/hardware/*.yaml) the framework reads.
struct HardwareProfile {
  std::string path;
  std::string name;
  std::vector<int> supported_bits;
  std::string latency_table;  // resolved path, "" if none
};
// Throws ConfigError naming the file for a missing file or a bad key.
HardwareProfile load_hardware_profile(const std::string& path);

// A latency budget as written in a method: a number is a fraction of the fp16 model's latency
// (0.3 = 30 % of dense); "uniform:B" is the latency of every weight at B bits (a quantised model
// no slower than uniform B bits). Parses and validates; `where` prefixes messages.
struct LatencyBudget {
  double fraction_of_fp16 = 0;  // > 0 when given as a number
  int uniform_bits = 0;         // > 0 when given as uniform:B
  bool set() const { return fraction_of_fp16 > 0 || uniform_bits > 0; }
  std::string text() const;
};
LatencyBudget parse_latency_budget(const std::string& text, const std::string& where);

}  // namespace hawq
