// GPTQ (Frantar et al., 2022): layer-wise quantisation with optimal-brain-surgeon error feedback,
// extended to mixed bit-widths per block of an Allocation.
//
// For each quantised weight W (2-D view [rows, cols]; convolutions: cols = in·kh·kw) with layer
// inputs X (cols × N samples), GPTQ minimises ‖(W'−W)X‖² column by column: H = 2XXᵀ/N, damped by
// percdamp·mean(diag H); columns are quantised in the chosen order, and each column's rounding
// error, scaled by the upper Cholesky factor of H⁻¹, is pushed onto the columns not yet quantised
// (lazily, in batches of `block_size` columns). Differences from the reference implementation:
//   * Mixed widths. Each element is rounded on the grid of the partition block that contains it
//     (block = rectangle of the 2-D view), so one column can hold rows at 2, 4 and 8 bits. Grids
//     are rtn's: symmetric scale max|w|/(2^{b-1}−1) (or asymmetric min/max with a zero point) per row
//     of the block, or per row and `group_size`-column group measured from the block's first
//     column — exactly the grid hawq::rtn_quantize_rows would use on that block.
//   * Elements whose block has 0 bits are not rounded but still take the error feedback (they are
//     free parameters of the reconstruction); a weight whose blocks are all 0 bits is left untouched.
//   * Columns that never see input (diag H = 0) get H_ii = 1 and are rounded like RTN; the
//     reference sets them to zero, which would change the layer on inputs outside calibration.
//   * Grids: per-channel scales come from the original weights (as the reference); with groups and
//     natural order a group's scales are taken from the updated weights when its first column is
//     reached (the reference's default); with act_order/sensitivity order group scales come from the
//     original weights (the reference's static_groups), so groups stay contiguous in the original
//     column order and match the rtn grid layout.
//   * Order `sensitivity` (HAWQ-V3): columns with the largest share of block sensitivity first
//     (column score Σ_blocks s_b·rows_b/numel_b, ties by diag H). Points without a sensitivity
//     estimate (uniform) fall back to act_order.
//   * Cholesky failures retry with ten times the damping (up to 10⁴×), then report the layer.
// Sequential (default, as the reference): weights are quantised in forward order, and each layer's
// inputs are captured by re-running the calibration batches through the already-quantised model.
// Weights that read the very same input tensor (q/k/v, gate/up, a ResNet block's conv1 and
// downsample when adjacent) share one pass, like the reference's per-decoder-layer groups; each pass
// stops right after the last layer it needs. `sequential: false` captures every Hessian in one pass
// over the unquantised model (cheaper, memory of all Hessians at once).
#include <algorithm>
#include <cmath>

#include "hawq/errors.h"
#include "hawq/oracle.h"
#include "hawq/quantizer.h"
#include "hawq/registry.h"

namespace hawq {

namespace {

using torch::indexing::Slice;

// Thrown by the capture to end a calibration forward pass once every needed layer input is seen.
struct StopForward {};

// Accumulates Σ xxᵀ (double) over the expanded inputs of selected layers.
class HessianCapture : public LayerCapture {
 public:
  HessianCapture(const std::vector<QuantWeight>& weights, std::vector<torch::Tensor>& sums, std::vector<std::int64_t>& rows)
      : weights_(weights), sums_(sums), rows_(rows) {}

  // Sequential mode: `target` first, then any later layer that reads the same input tensor and is
  // in `eligible`; the pass stops at the first layer after the group.
  void start_group(std::size_t target, const std::vector<bool>& eligible) {
    target_ = target;
    eligible_ = &eligible;
    group_.clear();
    discovering_ = true;
    all_ = false;
  }
  // One-pass mode: every eligible layer, no stopping.
  void capture_all(const std::vector<bool>& eligible) {
    eligible_ = &eligible;
    all_ = true;
  }
  void end_batch() {
    discovering_ = false;
    target_input_ = torch::Tensor();
  }
  const std::vector<std::size_t>& group() const { return group_; }

  torch::Tensor on_layer(std::size_t index, const torch::Tensor& input, const torch::Tensor& output) override {
    if (all_) {
      if ((*eligible_)[index]) accumulate(index, input);
      return output;
    }
    if (!discovering_) {
      if (std::find(group_.begin(), group_.end(), index) != group_.end()) {
        accumulate(index, input);
        if (index == group_.back()) throw StopForward{};
      }
      return output;
    }
    if (index == target_) {
      target_input_ = input;
      group_.push_back(index);
      accumulate(index, input);
      return output;
    }
    if (target_input_.defined()) {
      if (!input.is_same(target_input_)) throw StopForward{};
      if ((*eligible_)[index]) {
        group_.push_back(index);
        accumulate(index, input);
      }
    }
    return output;
  }

 private:
  void accumulate(std::size_t index, const torch::Tensor& input) {
    auto x = expand_layer_input(weights_[index], input.detach()).to(torch::kDouble);
    auto g = x.t().mm(x);
    sums_[index] = sums_[index].defined() ? sums_[index] + g : g;
    rows_[index] += x.size(0);
  }

  const std::vector<QuantWeight>& weights_;
  std::vector<torch::Tensor>& sums_;
  std::vector<std::int64_t>& rows_;
  const std::vector<bool>* eligible_ = nullptr;
  std::size_t target_ = 0;
  std::vector<std::size_t> group_;
  torch::Tensor target_input_;
  bool discovering_ = false, all_ = false;
};

// Per-element grid: scale, zero point, and width (0 = not rounded).
struct Grid {
  torch::Tensor scale, zero, bits;  // [rows, cols] double, double, long
};

// Writes the rtn grid of `w` (rows of one block slab) into the grid maps at [r0:r1, c0:c1].
void set_grid(Grid& g, const torch::Tensor& w, std::int64_t r0, std::int64_t r1, std::int64_t c0, std::int64_t c1,
              int bits, bool symmetric) {
  torch::Tensor s, z;
  if (symmetric) {
    const double qmax = bits == 1 ? 1.0 : std::pow(2.0, bits - 1) - 1;
    s = w.abs().amax(1, true).clamp_min(1e-12) / qmax;
    z = torch::zeros_like(s);
  } else {
    const double levels = std::pow(2.0, bits) - 1;
    auto lo = w.amin(1, true), hi = w.amax(1, true);
    s = (hi - lo).clamp_min(1e-12) / levels;
    z = torch::round(-lo / s);
  }
  g.scale.index_put_({Slice(r0, r1), Slice(c0, c1)}, s.expand({r1 - r0, c1 - c0}));
  g.zero.index_put_({Slice(r0, r1), Slice(c0, c1)}, z.expand({r1 - r0, c1 - c0}));
}

// Rounds one column on its per-element grid; width-0 elements pass through.
torch::Tensor round_column(const torch::Tensor& w, const torch::Tensor& scale, const torch::Tensor& zero,
                           const torch::Tensor& bits, bool symmetric) {
  auto b = bits.to(torch::kDouble);
  torch::Tensor q;
  if (symmetric) {
    auto qmax = torch::where(bits <= 1, torch::ones_like(b), torch::pow(2.0, b - 1) - 1);
    q = torch::clamp(torch::round(w / scale), -qmax, qmax) * scale;
    q = torch::where(bits == 1, torch::sign(w) * scale, q);
  } else {
    auto levels = torch::pow(2.0, b) - 1;
    q = (torch::clamp(torch::round(w / scale) + zero, torch::zeros_like(levels), levels) - zero) * scale;
  }
  return torch::where(bits > 0, q, w);
}

class Gptq : public Quantizer {
 public:
  explicit Gptq(const Params& p)
      : percdamp_(p.get_double("percdamp", 0.01)),
        block_size_(p.get_int("block_size", 128)),
        group_size_(p.get_int("group_size", 0)),
        symmetric_(p.get_bool("symmetric", true)),
        sequential_(p.get_bool("sequential", true)),
        order_(p.get_choice("order", "natural", {"natural", "act_order", "sensitivity"})) {
    if (!(percdamp_ >= 0)) throw ConfigError(p.where("percdamp") + ": expected a non-negative fraction (GPTQ uses 0.01)");
    if (block_size_ <= 0) throw ConfigError(p.where("block_size") + ": expected a positive number of columns (128)");
    if (group_size_ < 0) throw ConfigError(p.where("group_size") + ": expected 0 (per channel) or a positive group size");
  }

  void quantize(Model& model, const Partition& partition, const std::vector<int>& bits, const QuantizeContext& ctx) override {
    HAWQ_CHECK(bits.size() == partition.blocks.size(), "gptq: one width per block expected");
    auto weights = model.quantizable();
    HAWQ_CHECK(partition.weights.size() == weights.size(), "gptq: partition does not match the model's weights");
    std::vector<bool> needed(weights.size(), false);
    for (std::size_t i = 0; i < bits.size(); ++i) {
      HAWQ_CHECK(bits[i] >= 0 && bits[i] <= 16, "gptq: bit width out of range");
      if (bits[i] > 0) needed[partition.blocks[i].weight] = true;
    }
    if (std::none_of(needed.begin(), needed.end(), [](bool b) { return b; })) return;
    if (ctx.calibration.empty())
      throw UserError("gptq needs calibration batches (set the calibration sample size above 0)");
    const bool sensitivity = order_ == "sensitivity" && !ctx.block_sensitivity.empty();
    if (sensitivity && ctx.block_sensitivity.size() != partition.blocks.size())
      throw UserError("gptq: " + std::to_string(ctx.block_sensitivity.size()) + " block sensitivities for " +
                      std::to_string(partition.blocks.size()) + " blocks");

    torch::NoGradGuard ng;
    model.module().eval();
    std::vector<torch::Tensor> sums(weights.size());
    std::vector<std::int64_t> rows(weights.size(), 0);
    HessianCapture cap(weights, sums, rows);
    auto run_pass = [&](bool stop_early) {
      model.set_capture(&cap);
      try {
        for (const auto& b : ctx.calibration) {
          try {
            model.logits(b);
          } catch (const StopForward&) {
          }
          if (stop_early) cap.end_batch();
        }
      } catch (...) {
        model.set_capture(nullptr);
        throw;
      }
      model.set_capture(nullptr);
    };
    auto finish = [&](std::size_t w) {
      if (!sums[w].defined() || rows[w] == 0)
        throw UserError("gptq: the model never reported the inputs of " + weights[w].info.name +
                        " (its family does not call captured() for this layer)");
      quantize_weight(weights[w], partition, bits, ctx, sensitivity, w, sums[w] * (2.0 / static_cast<double>(rows[w])));
      sums[w] = torch::Tensor();
    };

    if (!sequential_) {
      cap.capture_all(needed);
      run_pass(false);
      for (std::size_t w = 0; w < weights.size(); ++w)
        if (needed[w]) finish(w);
      return;
    }
    std::vector<bool> pending = needed;
    for (std::size_t w = 0; w < weights.size(); ++w) {
      if (!pending[w]) continue;
      cap.start_group(w, pending);
      run_pass(true);
      const auto group = cap.group();  // copy: finish() below does not touch it, the next pass does
      if (group.empty()) finish(w);    // reports the missing capture
      for (std::size_t g : group) {
        finish(g);
        pending[g] = false;
      }
    }
  }

 private:
  void quantize_weight(const QuantWeight& qw, const Partition& partition, const std::vector<int>& bits,
                       const QuantizeContext& ctx, bool sensitivity, std::size_t widx, torch::Tensor H) {
    const auto& info = qw.info;
    const std::int64_t R = info.rows(), C = info.cols();
    HAWQ_CHECK(H.size(0) == C && H.size(1) == C, "gptq: Hessian of " + info.name + " does not match its columns");
    const auto dev = qw.weight.device();
    auto dopt = torch::TensorOptions().dtype(torch::kDouble).device(dev);
    torch::Tensor W = qw.weight.detach().reshape({R, C}).to(torch::kDouble).clone();
    H = H.to(dopt);

    // Per-element widths and grids from the partition blocks.
    Grid g{torch::ones({R, C}, dopt), torch::zeros({R, C}, dopt), torch::zeros({R, C}, dopt.dtype(torch::kLong))};
    const auto block_ids = partition.blocks_of(widx);
    const bool dynamic_groups = group_size_ > 0 && order_ == "natural";
    // Slab starts (natural order, dynamic groups): column -> blocks whose group begins there.
    std::vector<std::vector<std::size_t>> slab_starts(dynamic_groups ? C : 0);
    for (std::size_t bi : block_ids) {
      const auto& b = partition.blocks[bi];
      if (bits[bi] <= 0) continue;
      g.bits.index_put_({Slice(b.row0, b.row1), Slice(b.col0, b.col1)}, bits[bi]);
      const std::int64_t step = group_size_ > 0 ? group_size_ : (b.col1 - b.col0);
      for (std::int64_t c = b.col0; c < b.col1; c += step) {
        const std::int64_t e = std::min(b.col1, c + step);
        if (dynamic_groups) slab_starts[c].push_back(bi);
        else set_grid(g, W.index({Slice(b.row0, b.row1), Slice(c, e)}), b.row0, b.row1, c, e, bits[bi], symmetric_);
      }
    }

    // Dead inputs: make H invertible there; those columns are rounded without feedback.
    auto diag = H.diagonal();
    diag.masked_fill_(diag.eq(0), 1.0);

    // Column order.
    std::vector<std::int64_t> perm(C);
    for (std::int64_t i = 0; i < C; ++i) perm[i] = i;
    if (order_ != "natural") {
      auto d = diag.to(torch::kCPU).contiguous();
      const double* dp = d.data_ptr<double>();
      std::stable_sort(perm.begin(), perm.end(), [&](std::int64_t a, std::int64_t b) { return dp[a] > dp[b]; });
      if (sensitivity) {
        std::vector<double> score(C, 0.0);
        for (std::size_t bi : block_ids) {
          const auto& b = partition.blocks[bi];
          const double per_col = ctx.block_sensitivity[bi] * static_cast<double>(b.row1 - b.row0) /
                                 std::max<double>(1.0, static_cast<double>(b.numel()));
          for (std::int64_t c = b.col0; c < b.col1; ++c) score[c] += per_col;
        }
        std::stable_sort(perm.begin(), perm.end(), [&](std::int64_t a, std::int64_t b) { return score[a] > score[b]; });
      }
    }
    auto perm_t = torch::tensor(perm, torch::TensorOptions().dtype(torch::kLong)).to(dev);
    const bool permuted = order_ != "natural";
    if (permuted) {
      W = W.index_select(1, perm_t);
      H = H.index_select(0, perm_t).index_select(1, perm_t);
      g.scale = g.scale.index_select(1, perm_t);
      g.zero = g.zero.index_select(1, perm_t);
      g.bits = g.bits.index_select(1, perm_t);
    }

    // Upper Cholesky factor of the damped inverse Hessian.
    const double mean_diag = H.diagonal().mean().item<double>();
    torch::Tensor U;
    double damp = percdamp_ > 0 ? percdamp_ : 0.0;
    for (int attempt = 0;; ++attempt) {
      auto Hd = H.clone();
      Hd.diagonal().add_(damp * mean_diag);
      auto [L, info_l] = torch::linalg_cholesky_ex(Hd);
      if (info_l.item<std::int64_t>() == 0) {
        auto Hinv = torch::cholesky_inverse(L);
        auto [Uc, info_u] = torch::linalg_cholesky_ex(Hinv, /*upper=*/true);
        if (info_u.item<std::int64_t>() == 0) {
          U = Uc;
          break;
        }
      }
      if (attempt >= 6)
        throw UserError("gptq: the Hessian of " + info.name + " is not positive definite even with damping " +
                        std::to_string(damp) + "·mean(diag H); use more calibration data or a larger percdamp");
      damp = damp > 0 ? damp * 10 : 1e-6;
    }

    // Block-wise OBS updates (lazy batches of block_size columns).
    torch::Tensor Q = torch::empty_like(W);
    for (std::int64_t i1 = 0; i1 < C; i1 += block_size_) {
      const std::int64_t i2 = std::min(C, i1 + block_size_), count = i2 - i1;
      auto W1 = W.index({Slice(), Slice(i1, i2)}).clone();
      auto Err1 = torch::zeros_like(W1);
      auto U1 = U.index({Slice(i1, i2), Slice(i1, i2)});
      for (std::int64_t i = 0; i < count; ++i) {
        const std::int64_t col = i1 + i;
        if (dynamic_groups) {
          for (std::size_t bi : slab_starts[col]) {
            const auto& b = partition.blocks[bi];
            const std::int64_t e = std::min(b.col1, col + group_size_);
            // The group's current values: updated ones inside this batch, and beyond it the stored
            // ones minus the feedback still pending from the columns quantised so far.
            std::vector<torch::Tensor> parts;
            parts.push_back(W1.index({Slice(b.row0, b.row1), Slice(i, std::min(e, i2) - i1)}));
            if (e > i2) {
              auto pending = Err1.index({Slice(b.row0, b.row1), Slice(0, i)}).mm(U.index({Slice(i1, i1 + i), Slice(i2, e)}));
              parts.push_back(W.index({Slice(b.row0, b.row1), Slice(i2, e)}) - pending);
            }
            set_grid(g, torch::cat(parts, 1), b.row0, b.row1, col, e, bits[bi], symmetric_);
          }
        }
        auto w = W1.index({Slice(), i});
        const double d = U1.index({i, i}).item<double>();
        auto q = round_column(w, g.scale.index({Slice(), col}), g.zero.index({Slice(), col}), g.bits.index({Slice(), col}),
                              symmetric_);
        Q.index_put_({Slice(), col}, q);
        auto err = (w - q) / d;
        // Rank-1 update as a broadcast product: a BLAS call per column costs more than it computes.
        W1.index({Slice(), Slice(i, count)}).sub_(err.unsqueeze(1) * U1.index({Slice(i, i + 1), Slice(i, count)}));
        Err1.index_put_({Slice(), i}, err);
      }
      if (i2 < C) W.index({Slice(), Slice(i2, C)}).sub_(Err1.mm(U.index({Slice(i1, i2), Slice(i2, C)})));
    }
    if (permuted) Q = Q.index_select(1, torch::argsort(perm_t));
    qw.weight.detach().copy_(Q.reshape(qw.weight.sizes()).to(qw.weight.dtype()));
  }

  double percdamp_;
  std::int64_t block_size_, group_size_;
  bool symmetric_, sequential_;
  std::string order_;
};

}  // namespace

HAWQ_REGISTER_QUANTIZER("gptq", Gptq)

}  // namespace hawq
