// ResNet family with torchvision parameter names (resnet18/34/50/101).
//
// Names follow torchvision exactly (conv1, bn1, layer1.0.conv1, layer1.0.downsample.0, fc) so
// torchvision state dicts load unchanged and the logits can be compared with torchvision's. Two
// extras for small images: a width (base channels; torchvision's is 64) and `stem: small`
// (3×3 stride-1 convolution, no max-pool) instead of the ImageNet 7×7 stride-2 stem.
#include <nlohmann/json.hpp>

#include "hawq/checkpoint.h"
#include "hawq/errors.h"
#include "hawq/fs.h"
#include "hawq/model.h"
#include "hawq/registry.h"
#include "hawq/resnet.h"

#include <torch/version.h>

namespace hawq {

namespace nn = torch::nn;

namespace {

nn::Conv2d conv(std::int64_t in, std::int64_t out, std::int64_t k, std::int64_t stride, std::int64_t pad) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(pad).bias(false));
}

// One residual block; `bottleneck` selects torchvision's Bottleneck (stride on conv2) or BasicBlock.
struct ResBlockImpl : nn::Module {
  ResBlockImpl(bool bottleneck, std::int64_t in, std::int64_t planes, std::int64_t stride, std::int64_t expansion)
      : bottleneck_(bottleneck) {
    const std::int64_t out = planes * expansion;
    if (bottleneck) {
      conv1 = register_module("conv1", conv(in, planes, 1, 1, 0));
      bn1 = register_module("bn1", nn::BatchNorm2d(planes));
      conv2 = register_module("conv2", conv(planes, planes, 3, stride, 1));
      bn2 = register_module("bn2", nn::BatchNorm2d(planes));
      conv3 = register_module("conv3", conv(planes, out, 1, 1, 0));
      bn3 = register_module("bn3", nn::BatchNorm2d(out));
    } else {
      conv1 = register_module("conv1", conv(in, planes, 3, stride, 1));
      bn1 = register_module("bn1", nn::BatchNorm2d(planes));
      conv2 = register_module("conv2", conv(planes, planes, 3, 1, 1));
      bn2 = register_module("bn2", nn::BatchNorm2d(planes));
    }
    if (stride != 1 || in != out) {
      // Kept as torchvision's Sequential (downsample.0 / downsample.1) with direct handles.
      ds_conv = conv(in, out, 1, stride, 0);
      ds_bn = nn::BatchNorm2d(out);
      downsample = register_module("downsample", nn::Sequential(ds_conv, ds_bn));
    }
  }
  bool bottleneck_;
  nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  nn::Sequential downsample{nullptr};
  nn::Conv2d ds_conv{nullptr};
  nn::BatchNorm2d ds_bn{nullptr};
};
TORCH_MODULE(ResBlock);

struct ResNetNetImpl : nn::Module {
  explicit ResNetNetImpl(const ResNetConfig& c) {
    bool bottleneck = c.arch == "resnet50" || c.arch == "resnet101";
    std::vector<int> depth;
    if (c.arch == "resnet18") depth = {2, 2, 2, 2};
    else if (c.arch == "resnet34" || c.arch == "resnet50") depth = {3, 4, 6, 3};
    else if (c.arch == "resnet101") depth = {3, 4, 23, 3};
    else throw ConfigError("unknown ResNet arch '" + c.arch + "' (expected resnet18, resnet34, resnet50 or resnet101)");
    const std::int64_t expansion = bottleneck ? 4 : 1;
    small_ = c.stem == "small";
    conv1 = register_module("conv1", small_ ? conv(c.in_channels, c.width, 3, 1, 1) : conv(c.in_channels, c.width, 7, 2, 3));
    bn1 = register_module("bn1", nn::BatchNorm2d(c.width));
    std::int64_t in = c.width;
    for (int s = 0; s < 4; ++s) {
      nn::ModuleList layer;
      blocks.emplace_back();
      const std::int64_t planes = c.width << s;
      for (int i = 0; i < depth[s]; ++i) {
        const std::int64_t stride = (s > 0 && i == 0) ? 2 : 1;
        ResBlock blk(bottleneck, in, planes, stride, expansion);
        layer->push_back(blk);
        blocks.back().push_back(blk);
        in = planes * expansion;
      }
      register_module("layer" + std::to_string(s + 1), layer);
    }
    fc = register_module("fc", nn::Linear(in, c.num_classes));
  }
  bool small_ = false;
  nn::Conv2d conv1{nullptr};
  nn::BatchNorm2d bn1{nullptr};
  std::vector<std::vector<ResBlock>> blocks;  // blocks[stage][i], the modules inside layer{stage+1}
  nn::Linear fc{nullptr};
};
TORCH_MODULE(ResNetNet);

}  // namespace

ResNetConfig ResNetConfig::from_params(const Params& p) {
  ResNetConfig c;
  c.checkpoint = p.get_string("checkpoint", "");
  // Architecture defaults come from the checkpoint folder's config.json when there is one.
  nlohmann::json j;
  if (!c.checkpoint.empty() && file_exists(c.checkpoint + "/config.json")) {
    try {
      j = nlohmann::json::parse(read_file(c.checkpoint + "/config.json"));
    } catch (const nlohmann::json::exception& e) {
      throw FormatError(c.checkpoint + "/config.json: not valid JSON: " + e.what());
    }
  }
  auto js = [&](const char* k, const std::string& d) { return j.contains(k) ? j[k].get<std::string>() : d; };
  auto ji = [&](const char* k, std::int64_t d) { return j.contains(k) ? j[k].get<std::int64_t>() : d; };
  c.arch = p.get_choice("arch", js("arch", "resnet50"), {"resnet18", "resnet34", "resnet50", "resnet101"});
  c.width = p.get_int("width", ji("width", 64));
  c.stem = p.get_choice("stem", js("stem", "imagenet"), {"imagenet", "small"});
  c.in_channels = p.get_int("in_channels", ji("in_channels", 3));
  c.num_classes = p.get_int("num_classes", ji("num_classes", 1000));
  if (c.width <= 0 || c.in_channels <= 0 || c.num_classes <= 1)
    throw ConfigError(p.where() + ": width, in_channels must be positive and num_classes > 1");
  return c;
}

std::string ResNetConfig::to_json() const {
  nlohmann::json j = {{"family", "resnet"}, {"arch", arch}, {"width", width}, {"stem", stem},
                      {"in_channels", in_channels}, {"num_classes", num_classes}};
  return j.dump(2);
}

class ResNetModel : public Model {
 public:
  explicit ResNetModel(const Params& p) : ResNetModel(ResNetConfig::from_params(p)) {}
  explicit ResNetModel(const ResNetConfig& c) : config_(c), net_(c) {
    if (!c.checkpoint.empty()) {
      std::string file = c.checkpoint;
      if (file_exists(file + "/model.safetensors")) file += "/model.safetensors";
      if (!file_exists(file)) throw UserError("ResNet checkpoint not found: " + c.checkpoint);
      load_state_dict(*net_, {file});
      checkpoint_path = file;
    }
    net_->eval();
    collect();
  }

  std::string family() const override { return "resnet"; }
  torch::nn::Module& module() override { return *net_; }
  std::vector<QuantWeight> quantizable() override { return weights_; }
  std::string metric_name() const override { return "top1"; }
  std::string config_json() const override { return config_.to_json(); }
  torch::Tensor labels(const Batch& b) const override { return b.target; }

  torch::Tensor logits(const Batch& b) override {
    auto& n = *net_;
    std::size_t q = 0;
    auto convq = [&](nn::Conv2d& c, const torch::Tensor& x) { return captured(q++, x, c->forward(x)); };
    auto x = torch::relu(n.bn1->forward(convq(n.conv1, b.input)));
    if (!n.small_) x = torch::max_pool2d(x, 3, 2, 1);
    for (auto& stage : n.blocks) {
      for (auto& blk : stage) {
        auto identity = x;
        auto out = torch::relu(blk->bn1->forward(convq(blk->conv1, x)));
        if (blk->bottleneck_) {
          out = torch::relu(blk->bn2->forward(convq(blk->conv2, out)));
          out = blk->bn3->forward(convq(blk->conv3, out));
        } else {
          out = blk->bn2->forward(convq(blk->conv2, out));
        }
        if (!blk->downsample.is_empty()) identity = blk->ds_bn->forward(convq(blk->ds_conv, x));
        x = torch::relu(out + identity);
      }
    }
    x = torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
    return captured(q++, x, n.fc->forward(x));
  }

  const ResNetConfig& config() const { return config_; }

 private:
  // Quantizable weights in the same order logits() visits them.
  void collect() {
    auto& n = *net_;
    auto add_conv = [&](const std::string& name, nn::Conv2d& c) {
      QuantWeight w;
      w.info.name = name + ".weight";
      w.info.role = "conv";
      w.info.shape = c->weight.sizes().vec();
      w.weight = c->weight;
      w.geometry.conv = true;
      w.geometry.kernel = {c->options.kernel_size()->at(0), c->options.kernel_size()->at(1)};
      w.geometry.stride = c->options.stride()->at(0);
      // padding_t is c10::variant in LibTorch 1.x and std::variant from 2.0.
#if TORCH_VERSION_MAJOR >= 2
      w.geometry.padding = std::get<torch::ExpandingArray<2>>(c->options.padding())->at(0);
#else
      w.geometry.padding = c10::get<torch::ExpandingArray<2>>(c->options.padding())->at(0);
#endif
      w.geometry.dilation = c->options.dilation()->at(0);
      w.geometry.groups = c->options.groups();
      weights_.push_back(w);
    };
    add_conv("conv1", n.conv1);
    for (std::size_t s = 0; s < n.blocks.size(); ++s) {
      std::size_t i = 0;
      for (auto& blk : n.blocks[s]) {
        std::string pre = "layer" + std::to_string(s + 1) + "." + std::to_string(i++) + ".";
        add_conv(pre + "conv1", blk->conv1);
        add_conv(pre + "conv2", blk->conv2);
        if (blk->bottleneck_) add_conv(pre + "conv3", blk->conv3);
        if (!blk->downsample.is_empty()) add_conv(pre + "downsample.0", blk->ds_conv);
      }
    }
    QuantWeight fc;
    fc.info.name = "fc.weight";
    fc.info.role = "linear";
    fc.info.shape = n.fc->weight.sizes().vec();
    fc.weight = n.fc->weight;
    weights_.push_back(fc);
  }

  ResNetConfig config_;
  ResNetNet net_;
  std::vector<QuantWeight> weights_;
};

std::unique_ptr<Model> make_resnet(const ResNetConfig& c) { return std::make_unique<ResNetModel>(c); }

HAWQ_REGISTER_MODEL("resnet", ResNetModel)

}  // namespace hawq
