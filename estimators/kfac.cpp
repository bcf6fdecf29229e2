// K-FAC block traces: Tr of the Kronecker-factored curvature A ⊗ G restricted to each block.
//
// Layer view. A weight's 2-D view W [rows = output channels, cols = in·kh·kw] maps each expanded
// input row x_r (a token, or a conv patch; hawq::expand_layer_input) to an output row s_r = W x_r.
// With g_r = ∂S/∂s_r, the gradient of the SUMMED row loss S = N·L, ∇_W S = Σ_r g_r x_rᵀ.
//
// Scale. The oracle's objective is L = S/N (N counted rows). Its Gauss-Newton matrix is
// GGN(L) = (1/N) Σ_e J_eᵀ Λ_e J_e (per example e, Λ = diag(p) − ppᵀ per row). K-FAC assumes
// inputs and output gradients independent (and, for conv/sequence rows, spatially uncorrelated
// and homogeneous output gradients, Grosse & Martens 2016), which gives GGN(L) ≈ A ⊗ G with
//     A = (1/R) Σ_r x_r x_rᵀ                (mean over all R expanded input rows)
//     G = (1/N) Σ_r E[g_r g_rᵀ]             (per-row output-gradient outer products of S, over N)
// For a linear layer of an image classifier R = N and this is the textbook K-FAC; for one
// example and a linear layer it is exactly that example's GGN block (tested).
//
// fisher_type selects how E[g gᵀ] is formed:
//   type2      exact expectation over the model's label distribution: Λ = M Mᵀ with
//              M = diag(√p) − p √pᵀ (columns m_c = √p_c (e_c − p)), so E[g gᵀ] = Σ_c ĝ_c ĝ_cᵀ
//              where ĝ_c is the output gradient back-propagated from logit cotangent m_c. One
//              backward pass per class per batch (guarded by type2_max_classes).
//   mc         labels sampled from the model's softmax (oracle.layer_statistics("mc")); an
//              unbiased one-sample estimate of type2's G. `mc_samples` > 1 averages several
//              draws, and then std_error is the spread over draws.
//   empirical  true labels (oracle.layer_statistics("empirical")): K-FAC of the empirical Fisher.
//
// Block trace. The diagonal of A ⊗ G in the 2-D view is G_rr·A_cc, so a block with rows R and
// cols C has trace (Σ_{r∈R} G_rr)(Σ_{c∈C} A_cc): only diag(A) and diag(G) are ever formed
// (memory of one weight's rows + cols). diag(A) uses expand_layer_input(x²) (unfolding is linear
// in the elements, so the squares of the patches are the patches of the squares).
//
// Biases are not quantized and are ignored (inputs are not augmented with a constant 1).
// `hvps` reports backward passes: type2 C per batch, mc mc_samples per batch, empirical one.
#include <chrono>
#include <cmath>

#include "hawq/errors.h"
#include "hawq/estimator.h"
#include "hawq/registry.h"

namespace hawq {

namespace {

// Keeps each quantizable layer's input and output tensor (still in the graph), so that the
// output gradients for arbitrary logit cotangents can be asked of autograd directly.
class OutputCapture : public LayerCapture {
 public:
  explicit OutputCapture(std::size_t n) : inputs(n), outputs(n) {}
  torch::Tensor on_layer(std::size_t index, const torch::Tensor& input, const torch::Tensor& output) override {
    inputs[index] = input.detach();
    outputs[index] = output;
    return output;
  }
  std::vector<torch::Tensor> inputs, outputs;
};

// Installs a capture for the scope and always removes it.
class CaptureGuard {
 public:
  CaptureGuard(Model& m, LayerCapture* c) : m_(m) { m_.set_capture(c); }
  ~CaptureGuard() { m_.set_capture(nullptr); }

 private:
  Model& m_;
};

class Kfac : public Estimator {
 public:
  explicit Kfac(const Params& p)
      : type_(p.get_choice("fisher_type", "type2", {"type2", "mc", "empirical"})),
        mc_samples_(p.get_int("mc_samples", 1)),
        type2_max_classes_(p.get_int("type2_max_classes", 1024)) {
    if (mc_samples_ < 1) throw ConfigError(p.where("mc_samples") + ": must be at least 1");
    if (type_ != "mc" && p.has("mc_samples"))
      throw ConfigError(p.where("mc_samples") + ": only meaningful with fisher_type: mc");
  }

  Sensitivity estimate(CurvatureOracle& oracle, const Partition& part, const EstimateRequest& req) override {
    const auto t0 = std::chrono::steady_clock::now();
    const auto& ws = oracle.weights();
    for (const auto& b : part.blocks) HAWQ_CHECK(b.weight < ws.size(), "partition does not match the model");
    const std::size_t nw = ws.size(), nb = part.blocks.size();

    // diag(A) sums and row counts (from every pass's inputs; identical across passes).
    std::vector<torch::Tensor> a_sum(nw);
    std::vector<double> a_rows(nw, 0.0);
    auto add_inputs = [&](const std::vector<torch::Tensor>& in) {
      for (std::size_t w = 0; w < nw; ++w) {
        HAWQ_CHECK(in[w].defined(), "kfac: layer " + ws[w].info.name + " was not captured by the model");
        auto x2 = expand_layer_input(ws[w], in[w].to(torch::kDouble).square());
        auto s = x2.sum(0);
        a_sum[w] = a_sum[w].defined() ? a_sum[w] + s : s;
        a_rows[w] += static_cast<double>(x2.size(0));
      }
    };
    // Σ_r g_r² per output channel, added into g_sum.
    auto add_grads = [&](const std::vector<torch::Tensor>& g, std::vector<torch::Tensor>& g_sum) {
      for (std::size_t w = 0; w < nw; ++w) {
        if (!g[w].defined()) continue;  // a layer the loss does not reach has zero output gradient
        auto g2 = g[w].to(torch::kDouble).square();
        torch::Tensor s = ws[w].geometry.conv ? g2.sum(std::vector<std::int64_t>{0, 2, 3})
                                              : g2.reshape({-1, g2.size(-1)}).sum(0);
        g_sum[w] = g_sum[w].defined() ? g_sum[w] + s : s;
      }
    };

    std::int64_t passes = 0;
    // One G per draw (type2 and empirical: one draw).
    std::vector<std::vector<torch::Tensor>> g_draws;
    if (type_ == "type2") {
      g_draws.emplace_back(nw);
      type2_statistics(oracle, add_inputs, [&](const std::vector<torch::Tensor>& g) { add_grads(g, g_draws[0]); }, passes);
    } else {
      const int draws = type_ == "mc" ? static_cast<int>(mc_samples_) : 1;
      for (int d = 0; d < draws; ++d) {
        g_draws.emplace_back(nw);
        oracle.layer_statistics(type_, req.seed + static_cast<std::uint64_t>(d),
                                [&](std::size_t, const std::vector<torch::Tensor>& in, const std::vector<torch::Tensor>& g) {
                                  if (d == 0) add_inputs(in);
                                  add_grads(g, g_draws[d]);
                                  ++passes;
                                });
      }
    }

    const double N = static_cast<double>(oracle.total_rows());
    // Per draw, per block: (Σ_R G_rr)(Σ_C A_cc).
    std::vector<double> sum(nb, 0.0), sumsq(nb, 0.0);
    for (const auto& gd : g_draws) {
      for (std::size_t bi = 0; bi < nb; ++bi) {
        const auto& b = part.blocks[bi];
        const double a = a_sum[b.weight].slice(0, b.col0, b.col1).sum().item<double>() / a_rows[b.weight];
        const double g = gd[b.weight].defined() ? gd[b.weight].slice(0, b.row0, b.row1).sum().item<double>() / N : 0.0;
        sum[bi] += a * g;
        sumsq[bi] += a * g * a * g;
      }
    }
    const double D = static_cast<double>(g_draws.size());
    Sensitivity s;
    s.estimator = "kfac";
    s.quantity = "ggn_trace";
    s.blocks.resize(nb);
    for (std::size_t b = 0; b < nb; ++b) {
      const double mean = sum[b] / D;
      const double var = D > 1 ? std::max(0.0, (sumsq[b] - D * mean * mean) / (D - 1)) : 0.0;
      s.blocks[b] = {mean, std::sqrt(var / D), static_cast<std::int64_t>(D)};
    }
    s.hvps = passes;
    s.note = "fisher_type=" + type_ + "; passes are backward passes";
    s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    s.peak_bytes = peak_rss_bytes();
    return s;
  }

 private:
  // Exact type-2 statistics: per batch one forward, then one backward per class c with logit
  // cotangent rows √p_c (e_c − p) (zero on rows that do not count).
  template <class InFn, class GradFn>
  void type2_statistics(CurvatureOracle& oracle, const InFn& add_inputs, const GradFn& add_grads, std::int64_t& passes) {
    Model& model = oracle.model();
    const std::size_t nw = oracle.weights().size();
    for (const auto& batch : oracle.batches()) {
      OutputCapture cap(nw);
      torch::Tensor logits;
      {
        CaptureGuard guard(model, &cap);
        logits = model.logits(batch);
      }
      add_inputs(cap.inputs);
      const auto C = logits.size(1);
      if (C > type2_max_classes_)
        throw ConfigError("kfac fisher_type type2 needs one backward pass per class (" + std::to_string(C) +
                          " classes > type2_max_classes=" + std::to_string(type2_max_classes_) +
                          "); use fisher_type: mc or raise type2_max_classes");
      std::vector<torch::Tensor> outs;
      std::vector<std::size_t> idx;
      for (std::size_t w = 0; w < nw; ++w)
        if (cap.outputs[w].defined() && cap.outputs[w].requires_grad()) {
          outs.push_back(cap.outputs[w]);
          idx.push_back(w);
        }
      auto mask = model.labels(batch).ne(-100).to(torch::kDouble).unsqueeze(1).to(logits.device());
      auto p = torch::softmax(logits.detach().to(torch::kDouble), 1);
      for (std::int64_t c = 0; c < C; ++c) {
        auto m = -p * p.select(1, c).sqrt().unsqueeze(1);  // -√p_c p
        m.select(1, c) += p.select(1, c).sqrt();           // +√p_c e_c
        m = (m * mask).to(logits.scalar_type());
        auto g = torch::autograd::grad({logits}, outs, {m}, /*retain_graph=*/c + 1 < C, /*create_graph=*/false,
                                       /*allow_unused=*/true);
        std::vector<torch::Tensor> full(nw);
        for (std::size_t i = 0; i < idx.size(); ++i) full[idx[i]] = g[i];
        add_grads(full);
        ++passes;
      }
    }
  }

  std::string type_;
  std::int64_t mc_samples_, type2_max_classes_;
};

}  // namespace

HAWQ_REGISTER_ESTIMATOR("kfac", Kfac)

}  // namespace hawq
