// The allocation files the kernel benchmark's decode step reads (bench/kernels/allocation_file.h):
// the committed HAWQ-V3 allocations parse completely, and malformed files are refused with the
// file, the line and what was expected.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "allocation_file.h"
#include "hawq/version.h"
#include "test_util.h"

namespace {

using hawq::kernels::kLlama7bLayers;
using hawq::kernels::llama7b_layer_weights;
using hawq::kernels::read_layer_allocation;
using hawq::kernels::WeightShape;

std::string source(const std::string& rel) { return std::string(HAWQ_SOURCE_DIR) + "/" + rel; }

TEST(AllocationFile, CommittedLlama7bAllocationsCoverEveryWeight) {
  const auto layer = read_layer_allocation(source("configs/hardware/h100_llama7b_layerwise.txt"), kLlama7bLayers,
                                           llama7b_layer_weights());
  EXPECT_EQ(layer.variant, "hawq_v3");
  EXPECT_NEAR(layer.predicted_us, 1823.9, 1e-6);
  ASSERT_EQ(layer.blocks.size(), 32u * 7u);
  for (const auto& kv : layer.blocks) {
    ASSERT_EQ(kv.second.size(), 1u) << "one width per weight";
    EXPECT_TRUE(kv.second[0].bits == 2 || kv.second[0].bits == 4 || kv.second[0].bits == 8);
  }
  EXPECT_EQ(layer.blocks.at({31, "down_proj"})[0].col1, 11008);
  const auto rows = read_layer_allocation(source("configs/hardware/h100_llama7b_rowblocks.txt"), kLlama7bLayers,
                                          llama7b_layer_weights());
  EXPECT_EQ(rows.variant, "hawq_v3_rows");
  EXPECT_NEAR(rows.predicted_us, 1940.0, 1e-6);
  EXPECT_EQ(rows.blocks.at({0, "gate_proj"}).size(), 11u);  // 11008 rows in blocks of 1024
  EXPECT_EQ(rows.blocks.at({0, "gate_proj"}).back().row1, 11008);
}

TEST(AllocationFile, MalformedFilesNameFileLineAndExpectation) {
  const std::vector<WeightShape> one = {{"q_proj", 64, 128}};
  auto expect_error = [&](const std::string& text, const std::string& needle) {
    hawq::test::expect_refused<std::runtime_error>("alloc.txt", text, needle,
                                                   [&](const std::string& p) { read_layer_allocation(p, 1, one); });
  };
  expect_error("# variant: x\n0 q_proj 0 64\n", ":2: expected \"layer role row_begin row_end bits\"");
  expect_error("0 q_proj 0 64 4 extra\n", ":1: expected");
  expect_error("0 o_proj 0 64 4\n", "unknown weight role 'o_proj'");
  expect_error("1 q_proj 0 64 4\n", "layer 1 outside [0, 1)");
  expect_error("0 q_proj 0 40 4\n0 q_proj 40 64 4\n", "multiples of 16");
  expect_error("0 q_proj 0 80 4\n", "within [0, 64)");
  expect_error("0 q_proj 0 64 5\n", "width 5");
  expect_error("0 q_proj 0 32 4\n", "rows from 32 to 64 are not covered");
  expect_error("0 q_proj 16 64 4\n", "rows from 0 are not covered");
  expect_error("0 q_proj 0 48 4\n0 q_proj 32 64 2\n", "covered twice");
  expect_error("# variant:\n0 q_proj 0 64 4\n", "without a name");
  try {
    read_layer_allocation("/nonexistent/alloc.txt", 1, one);
    ADD_FAILURE() << "missing file accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/alloc.txt"), std::string::npos) << e.what();
  }
  // A good file: defaults when the comments are absent, blocks sorted by row.
  const auto p = hawq::test::write_temp_file("alloc.txt", "\n0 q_proj 32 64 8\n0 q_proj 0 32 2\n");
  const auto a = read_layer_allocation(p, 1, one);
  EXPECT_EQ(a.variant, "hawq_v3");
  EXPECT_EQ(a.predicted_us, 0.0);
  ASSERT_EQ(a.blocks.at({0, "q_proj"}).size(), 2u);
  EXPECT_EQ(a.blocks.at({0, "q_proj"})[0].bits, 2);
  EXPECT_EQ(a.blocks.at({0, "q_proj"})[1].col1, 128);
}

}  // namespace
