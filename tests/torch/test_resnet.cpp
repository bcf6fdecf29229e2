// ResNet family: torchvision parity on the same weights, checkpoint checks; IDX reader.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>

#include "hawq/checkpoint.h"
#include "hawq/errors.h"
#include "hawq/fs.h"
#include "hawq/image_data.h"
#include "hawq/model.h"
#include "hawq/registry.h"

using namespace hawq;

namespace {

std::string tmp_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("hawq_rn_" + std::to_string(::getpid())) / name;
  std::filesystem::create_directories(d);
  return d.string();
}

bool have_torchvision() {
  return std::system("/usr/bin/python3 -c 'import torchvision' > /dev/null 2>&1") == 0;
}

void write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

}  // namespace

class TorchvisionParity : public ::testing::TestWithParam<std::string> {};

TEST_P(TorchvisionParity, SameLogitsOnSameWeights) {
  if (!have_torchvision()) GTEST_SKIP() << "Debian's python3-torchvision is not installed for /usr/bin/python3";
  const std::string arch = GetParam();
  const std::string dir = tmp_dir(arch);
  const std::string cmd = std::string("/usr/bin/python3 ") + HAWQ_SOURCE_DIR + "/tests/torchvision_export.py " + arch + " 10 " + dir;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto model = Registry<Model>::instance().create(
      "resnet", Params::from_yaml("{arch: " + arch + ", num_classes: 10, in_channels: 3, stem: imagenet, width: 64, checkpoint: " + dir + "}"));
  SafeTensorsFile io(dir + "/io.safetensors");
  auto x = load_tensor(io, "input");
  auto ref = load_tensor(io, "logits");
  torch::NoGradGuard ng;
  auto got = model->logits({x, torch::zeros({x.size(0)}, torch::kLong)});
  ASSERT_EQ(got.sizes(), ref.sizes());
  const double rel = (got - ref).norm().item<double>() / ref.norm().item<double>();
  EXPECT_LT(rel, 1e-5) << "relative difference to torchvision " << rel;
  // The quantizable weights are every conv and the fc, in forward order.
  auto q = model->quantizable();
  EXPECT_EQ(q.front().info.name, "conv1.weight");
  EXPECT_EQ(q.back().info.name, "fc.weight");
}

INSTANTIATE_TEST_SUITE_P(Archs, TorchvisionParity, ::testing::Values("resnet18", "resnet50"));

TEST(ResNetCheckpoint, WrongShapeMissingTensorAndNaNAreClearErrors) {
  const std::string dir = tmp_dir("bad");
  auto params = Params::from_yaml("{arch: resnet18, num_classes: 10, in_channels: 1, stem: small, width: 8}");
  auto model = Registry<Model>::instance().create("resnet", params);
  save_state_dict(model->module(), dir + "/model.safetensors");
  // A different width: every conv has the wrong shape.
  try {
    Registry<Model>::instance().create("resnet", Params::from_yaml("{arch: resnet18, num_classes: 10, in_channels: 1, stem: small, width: 16, checkpoint: " + dir + "}"));
    FAIL() << "expected a FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("has shape"), std::string::npos) << e.what();
  }
  // NaN weights are rejected, naming the tensor.
  {
    torch::NoGradGuard ng;
    model->quantizable()[3].weight.view(-1)[0] = std::nanf("");
  }
  save_state_dict(model->module(), dir + "/model.safetensors");
  try {
    Registry<Model>::instance().create("resnet", Params::from_yaml("{arch: resnet18, num_classes: 10, in_channels: 1, stem: small, width: 8, checkpoint: " + dir + "}"));
    FAIL() << "expected a FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("NaN"), std::string::npos) << e.what();
  }
  // A truncated checkpoint file.
  auto blob = read_file(dir + "/model.safetensors");
  write_file_atomic(dir + "/model.safetensors", blob.substr(0, blob.size() / 2));
  EXPECT_THROW(Registry<Model>::instance().create("resnet", Params::from_yaml("{arch: resnet18, num_classes: 10, in_channels: 1, stem: small, width: 8, checkpoint: " + dir + "}")),
               FormatError);
}

TEST(Idx, ReadsGzipAndRaw) {
  const std::string dir = tmp_dir("idx");
  std::string bytes = std::string("\0\0\x08\x03", 4) + be32(2) + be32(3) + be32(4);
  for (int i = 0; i < 24; ++i) bytes.push_back(static_cast<char>(i * 7));
  write_gz(dir + "/a.gz", bytes);
  write_file_atomic(dir + "/a.idx", bytes);
  for (const auto& p : {dir + "/a.gz", dir + "/a.idx"}) {
    auto a = read_idx(p);
    ASSERT_EQ(a.dims, (std::vector<std::uint32_t>{2, 3, 4}));
    ASSERT_EQ(a.data.size(), 24u);
    EXPECT_EQ(a.data[5], 35);
  }
}

TEST(Idx, RejectsTruncatedAndWrongType) {
  const std::string dir = tmp_dir("idx_bad");
  std::string header = std::string("\0\0\x08\x02", 4) + be32(10) + be32(10);
  write_gz(dir + "/short.gz", header + std::string(50, 'x'));
  try {
    read_idx(dir + "/short.gz");
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("expected 100 data bytes, found 50"), std::string::npos) << e.what();
  }
  write_gz(dir + "/type.gz", std::string("\0\0\x0d\x01", 4) + be32(1) + "abcd");
  EXPECT_THROW(read_idx(dir + "/type.gz"), FormatError);
  write_file_atomic(dir + "/corrupt.gz", std::string("\x1f\x8b\x08\x00garbage-not-deflate", 24));
  EXPECT_THROW(read_idx(dir + "/corrupt.gz"), FormatError);
}

TEST(Idx, FashionMnistFromDebianPackage) {
  const std::string root = "/usr/share/datasets/fashion-mnist";
  if (!file_exists(root + "/t10k-labels-idx1-ubyte.gz")) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  auto labels = read_idx(root + "/t10k-labels-idx1-ubyte.gz");
  ASSERT_EQ(labels.dims, (std::vector<std::uint32_t>{10000}));
  std::vector<int> counts(10, 0);
  for (auto l : labels.data) ++counts.at(l);
  for (int c : counts) EXPECT_EQ(c, 1000);  // the test split is balanced
}
