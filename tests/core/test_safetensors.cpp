// Safetensors: round trip in every float dtype, and rejection of truncated or lying files.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "hawq/errors.h"
#include "hawq/fs.h"
#include "hawq/safetensors.h"

using namespace hawq;

namespace {

std::string tmp_path(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("hawq_st_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

SafeTensorOut f32_tensor(const std::string& name, const std::vector<std::int64_t>& shape, std::mt19937& rng) {
  SafeTensorOut t{name, "F32", shape, {}};
  std::int64_t n = 1;
  for (auto s : shape) n *= s;
  std::normal_distribution<float> d;
  t.bytes.resize(n * 4);
  for (std::int64_t i = 0; i < n; ++i) {
    float v = d(rng);
    std::memcpy(t.bytes.data() + 4 * i, &v, 4);
  }
  return t;
}

// Writes a file with a hand-made header and `data_bytes` bytes of data.
std::string raw_file(const std::string& name, const std::string& header, std::size_t data_bytes) {
  std::string blob;
  std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) blob.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  blob += header;
  blob.append(data_bytes, '\x01');
  auto p = tmp_path(name);
  write_file_atomic(p, blob);
  return p;
}

void expect_format_error(const std::string& path, const std::string& fragment) {
  try {
    SafeTensorsFile f(path);
    FAIL() << "expected FormatError mentioning '" << fragment << "'";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << "message should name the file: " << e.what();
  }
}

}  // namespace

TEST(Safetensors, RoundTripF32AndMetadata) {
  std::mt19937 rng(1);
  std::vector<SafeTensorOut> ts = {f32_tensor("a.weight", {3, 5}, rng), f32_tensor("b", {7}, rng)};
  auto p = tmp_path("rt.safetensors");
  write_safetensors(p, ts, {{"format", "pt"}});
  SafeTensorsFile f(p);
  ASSERT_EQ(f.tensors().size(), 2u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  for (const auto& t : ts) {
    const auto& e = f.entry(t.name);
    EXPECT_EQ(e.shape, t.shape);
    EXPECT_EQ(0, std::memcmp(f.data(t.name), t.bytes.data(), t.bytes.size()));
  }
}

TEST(Safetensors, HalfAndBfloatConversionsRoundTrip) {
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> d(-70000.f, 70000.f);
  for (int i = 0; i < 20000; ++i) {
    float x = d(rng) * (i % 3 == 0 ? 1e-6f : 1.0f);
    float h = half_to_float(float_to_half(x));
    float b = bf16_to_float(float_to_bf16(x));
    if (std::abs(x) < 65504.f && std::abs(x) > 6.2e-5f) EXPECT_NEAR(h, x, std::abs(x) * 1e-3f);
    EXPECT_NEAR(b, x, std::abs(x) * 8e-3f + 1e-30f);
    // Exactly representable values survive unchanged.
    EXPECT_EQ(half_to_float(float_to_half(h)), h);
    EXPECT_EQ(bf16_to_float(float_to_bf16(b)), b);
  }
  EXPECT_TRUE(std::isinf(half_to_float(float_to_half(1e6f))));
}

TEST(Safetensors, RejectsTruncatedFile) {
  std::mt19937 rng(3);
  auto p = tmp_path("trunc.safetensors");
  write_safetensors(p, {f32_tensor("w", {64, 64}, rng)});
  auto blob = read_file(p);
  write_file_atomic(p, blob.substr(0, blob.size() - 100));
  expect_format_error(p, "truncated");
  write_file_atomic(p, blob.substr(0, 5));
  expect_format_error(p, "truncated");
}

TEST(Safetensors, AcceptsEmptyHeader) {
  SafeTensorsFile f(raw_file("empty.safetensors", "{}", 0));
  EXPECT_TRUE(f.tensors().empty());
}

TEST(Safetensors, RejectsHeaderLongerThanFile) {
  std::string blob;
  std::uint64_t n = 1000;
  for (int i = 0; i < 8; ++i) blob.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  blob += "{}";
  auto p = tmp_path("hdr.safetensors");
  write_file_atomic(p, blob);
  expect_format_error(p, "truncated");
}

TEST(Safetensors, RejectsSizeShapeMismatchOverlapBadJsonUnknownDtype) {
  expect_format_error(raw_file("shape.safetensors", R"({"w":{"dtype":"F32","shape":[4,4],"data_offsets":[0,60]}})", 60),
                      "shape and dtype need 64");
  expect_format_error(raw_file("beyond.safetensors", R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8),
                      "truncated");
  expect_format_error(
      raw_file("overlap.safetensors",
               R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12),
      "overlap");
  expect_format_error(raw_file("json.safetensors", R"({"w":{"dtype":"F32",)", 0), "not valid JSON");
  expect_format_error(raw_file("dtype.safetensors", R"({"w":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}})", 1),
                      "unknown dtype");
  expect_format_error(raw_file("neg.safetensors", R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4),
                      "negative");
  expect_format_error(raw_file("order.safetensors", R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", 8),
                      "begin > end");
  expect_format_error(raw_file("huge.safetensors",
                               R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", 4),
                      "overflows");
}
