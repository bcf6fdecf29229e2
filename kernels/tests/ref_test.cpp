// CPU self-test of the packed format: fp16 conversion, bit-map resolution, packing round trip,
// the fp16 magic-number decode constants and the kernel's fragment indexing (through the CPU
// emulator of the GPU kernel). Plain exit-code test: prints FAIL lines and exits 1 on failure.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "hawq/kernels/format.h"

using namespace hawq::kernels;

namespace {

int failures = 0;
#define CHECK(cond, ...)                                            \
  do {                                                              \
    if (!(cond)) {                                                  \
      ++failures;                                                   \
      std::printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);   \
      std::printf(__VA_ARGS__);                                     \
      std::printf("\n");                                            \
    }                                                               \
  } while (0)

template <class F>
bool throws(F f) {
  try {
    f();
  } catch (const std::invalid_argument&) {
    return true;
  }
  return false;
}

std::vector<float> random_weights(int n, int k, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.f, 0.02f);
  std::vector<float> w(static_cast<std::size_t>(n) * k);
  for (auto& v : w) {
    v = nd(rng);
    if (v == 0.f) v = 1e-3f;
  }
  // a few outliers so scales differ a lot between groups
  for (int i = 0; i < n; i += 7) w[static_cast<std::size_t>(i) * k + (i * 31) % k] = 0.5f;
  return w;
}

std::vector<std::uint16_t> random_x(int m, int k, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> ud(-1.f, 1.f);
  std::vector<std::uint16_t> x(static_cast<std::size_t>(m) * k);
  for (auto& v : x) {
    float f = ud(rng);
    if (std::fabs(f) < 1e-3f) f = 0.5f;
    v = float_to_half(f);
  }
  return x;
}

void test_half() {
  const float vals[] = {0.f, 1.f, -2.5f, 65504.f, 6.103515625e-05f, 5.9604645e-08f, 1024.f, 1032.f,
                        -72.f, 0.333251953125f, 3.0e-6f};
  for (float v : vals) {
    const float r = half_to_float(float_to_half(v));
    // relative 2^-11 for normals, absolute 2^-25 for subnormals
    CHECK(std::fabs(r - v) <= std::max(std::fabs(v) * 4.9e-4f, 2.99e-8f), "%g -> %g", v, r);
  }
  CHECK(float_to_half(1.0f) == 0x3C00, "1.0");
  CHECK(float_to_half(1.0f + 2.0f / 4096.f) == 0x3C00, "tie to even down");
  CHECK(float_to_half(1.0f + 6.0f / 4096.f) == 0x3C02, "tie to even up");
  CHECK(float_to_half(1.0f + 3.0f / 4096.f) == 0x3C01, "nearest");
  CHECK(float_to_half(1e6f) == 0x7C00, "overflow to inf");
  CHECK(std::isnan(half_to_float(float_to_half(NAN))), "nan");
  // every fp16 value survives a round trip
  int bad = 0;
  for (std::uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7C00) == 0x7C00) continue;
    if (float_to_half(half_to_float(static_cast<std::uint16_t>(h))) != h) ++bad;
  }
  CHECK(bad == 0, "%d fp16 values do not round trip", bad);
}

void test_resolve() {
  CHECK(throws([] { resolve_bits(32, 256, {{0, 32, 0, 256, 5}}, Layout::kAligned); }), "bits 5");
  CHECK(throws([] { resolve_bits(32, 256, {{0, 16, 0, 256, 4}}, Layout::kAligned); }),
        "uncovered rows");
  CHECK(throws([] { resolve_bits(32, 256, {{0, 20, 0, 256, 4}, {20, 32, 0, 256, 2}},
                                 Layout::kAligned); }),
        "aligned layout rejects a split unit");
  CHECK(throws([] { resolve_bits(30, 256, {{0, 30, 0, 256, 4}}, Layout::kAligned); }),
        "n not multiple of 16");
  CHECK(throws([] { resolve_bits(32, 256, {{0, 33, 0, 256, 4}}, Layout::kUnaligned); }),
        "out of range");
  auto cells = resolve_bits(32, 256, {{0, 20, 0, 256, 4}, {20, 32, 0, 200, 2}, {20, 32, 200, 256, 8}},
                            Layout::kUnaligned);
  CHECK(cells.size() == 64, "cells %zu", cells.size());
  CHECK(cells[19 * 2 + 1] == 4 && cells[20 * 2 + 0] == 2 && cells[20 * 2 + 1] == 8,
        "row-group widths / max rounding");
}

// Bit maps used by both tests: aligned tiles of 128 x 128 (or 16 x 128) and unaligned row runs.
std::vector<BitBlock> tile_map(int n, int k, int tr, int tc, const std::vector<int>& widths,
                               std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<BitBlock> blocks;
  for (int r = 0; r < n; r += tr)
    for (int c = 0; c < k; c += tc)
      blocks.push_back({r, std::min(n, r + tr), c, std::min(k, c + tc),
                        widths[rng() % widths.size()]});
  return blocks;
}
std::vector<BitBlock> run_map(int n, int k, const std::vector<int>& widths, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<BitBlock> blocks;
  for (int c = 0; c < k; c += kGroupSize)
    for (int r = 0; r < n;) {
      const int len = 1 + static_cast<int>(rng() % 11);
      const int r1 = std::min(n, r + len);
      blocks.push_back({r, r1, c, c + kGroupSize, widths[rng() % widths.size()]});
      r = r1;
    }
  return blocks;
}

void test_pack(int n, int k, Layout layout, const std::vector<BitBlock>& blocks, const char* name) {
  const std::vector<float> w = random_weights(n, k, 1234 + n + k);
  const PackedWeights p = pack_weights(w.data(), n, k, blocks, layout, 2);
  // codes round trip: the stored code is the quantisation of the weight with the stored scale
  long bad = 0;
  double err2 = 0, ref2 = 0;
  for (int r = 0; r < n; ++r)
    for (int c = 0; c < k; ++c) {
      const int b = p.bits_at(r, c);
      const float s = p.scale_at(r, c);
      const float v = w[static_cast<std::size_t>(r) * k + c];
      long q = std::lrint(v / s) + (1 << (b - 1));
      q = std::min<long>(std::max<long>(q, 0), (1 << b) - 1);
      if (p.code_at(r, c) != q) ++bad;
      const double d = p.weight_at(r, c) - v;
      err2 += d * d;
      ref2 += static_cast<double>(v) * v;
    }
  CHECK(bad == 0, "%s: %ld codes differ", name, bad);
  std::printf("  %-28s %5dx%-5d avg bits %.3f, effective %.3f, quantisation rel. error %.4f\n",
              name, n, k, p.avg_bits(), p.effective_bits(), std::sqrt(err2 / ref2));
  // emulated kernel == reference (both exact up to double rounding)
  for (int m : {1, 5, 16}) {
    const std::vector<std::uint16_t> x = random_x(m, k, 99 + m);
    std::vector<int> rows;
    for (int i = 0; i < m; ++i) rows.push_back(i);
    std::vector<double> ref, emu;
    reference_gemm(p, x.data(), rows, ref, 2);
    emulate_kernel(p, x.data(), m, rows, emu);
    double num = 0, den = 0;
    for (std::size_t i = 0; i < ref.size(); ++i) {
      num += (emu[i] - ref[i]) * (emu[i] - ref[i]);
      den += ref[i] * ref[i];
    }
    const double rel = std::sqrt(num / den);
    CHECK(rel < 1e-9, "%s m=%d: emulator vs reference rel. error %.3g", name, m, rel);
  }
}

}  // namespace

int main() {
  test_half();
  test_resolve();
  std::printf("packing round trips and emulated kernel vs reference:\n");
  for (int b : {2, 3, 4, 8}) {
    const std::string an = "uniform " + std::to_string(b) + "-bit aligned";
    test_pack(64, 384, Layout::kAligned, uniform_blocks(64, 384, b), an.c_str());
    const std::string un = "uniform " + std::to_string(b) + "-bit unaligned";
    test_pack(48, 256, Layout::kUnaligned, uniform_blocks(48, 256, b), un.c_str());
  }
  test_pack(256, 512, Layout::kAligned, tile_map(256, 512, 128, 128, {2, 4, 8}, 7),
            "mixed 128x128 tiles");
  test_pack(96, 640, Layout::kAligned, tile_map(96, 640, 16, 128, {2, 3, 4, 8}, 8),
            "mixed 16x128 units");
  test_pack(96, 640, Layout::kUnaligned, run_map(96, 640, {2, 3, 4, 8}, 9), "mixed row runs");
  test_pack(64, 384, Layout::kUnaligned, tile_map(64, 384, 128, 128, {2, 4, 8}, 10),
            "unaligned with tile map");
  if (failures) {
    std::printf("kernels_ref_test: %d failure(s)\n", failures);
    return 1;
  }
  std::printf("kernels_ref_test: all passed\n");
  return 0;
}
