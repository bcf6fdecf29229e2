// Packing of float weights into the mixed-precision format, the CPU reference and the emulator.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "hawq/kernels/format.h"
#include "hawq/kernels/fragment.h"
#include "parallel.h"

namespace hawq::kernels {

namespace {

using detail::parallel_for;

std::uint32_t load_u32(const std::uint8_t* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

void or_u32(std::uint8_t* p, std::uint32_t v) {
  std::uint32_t old;
  std::memcpy(&old, p, 4);
  old |= v;
  std::memcpy(p, &old, 4);
}

// Scale (as fp16 bits) and codes of one group of 128 weights.
void quantize_group(const float* w, int bits, std::uint16_t* scale_bits, std::uint8_t* q) {
  float amax = 0.f;
  for (int i = 0; i < kGroupSize; ++i) amax = std::max(amax, std::fabs(w[i]));
  const int maxq = (1 << bits) - 1, z = 1 << (bits - 1);
  float s = amax > 0.f && std::isfinite(amax) ? 2.f * amax / static_cast<float>(maxq) : 1.f;
  s = std::min(std::max(s, 6.103515625e-05f), 65504.f);  // keep the scale a normal fp16
  const std::uint16_t sb = float_to_half(s);
  const float sf = half_to_float(sb);
  *scale_bits = sb;
  for (int i = 0; i < kGroupSize; ++i) {
    const float v = std::isfinite(w[i]) ? w[i] / sf : 0.f;
    long c = std::lrint(v) + z;
    q[i] = static_cast<std::uint8_t>(std::min<long>(std::max<long>(c, 0), maxq));
  }
}

// Puts code q of weight (pair p, half h) of a lane whose words start at `lane_word(w)`.
template <class WordAddr>
void put_code(int bits, int np, int p, int h, int q, WordAddr word_addr) {
  const frag::BitPos lo = frag::code_pos(bits, p, h);
  const int lo_mask = bits == 3 ? 3 : (1 << bits) - 1;
  or_u32(word_addr(lo.word), static_cast<std::uint32_t>(q & lo_mask) << lo.shift);
  if (bits == 3) {
    const frag::BitPos hi = frag::hi_pos(np, p, h);
    or_u32(word_addr(hi.word), static_cast<std::uint32_t>((q >> 2) & 1) << hi.shift);
  }
}

template <class WordAddr>
int get_code(int bits, int np, int p, int h, WordAddr word_addr) {
  const frag::BitPos lo = frag::code_pos(bits, p, h);
  const int lo_mask = bits == 3 ? 3 : (1 << bits) - 1;
  int q = static_cast<int>((load_u32(word_addr(lo.word)) >> lo.shift) & lo_mask);
  if (bits == 3) {
    const frag::BitPos hi = frag::hi_pos(np, p, h);
    q |= static_cast<int>((load_u32(word_addr(hi.word)) >> hi.shift) & 1) << 2;
  }
  return q;
}

// Fragment coordinates of column c (0..127) of a group for tile row r (0..15).
struct FragCoord {
  int lane, kt, reg, h;
};
FragCoord frag_coord(int r, int c) {
  const int kt = c / 16, cc = c % 16;
  const int gid = r % 8, upper = r / 8, tig = (cc % 8) / 2;
  return {gid * 4 + tig, kt, upper + 2 * (cc / 8), cc % 2};
}

}  // namespace

const char* layout_name(Layout layout) {
  return layout == Layout::kAligned ? "aligned" : "unaligned";
}

std::vector<BitBlock> uniform_blocks(int n, int k, int bits) { return {{0, n, 0, k, bits}}; }

std::vector<std::uint8_t> resolve_bits(int n, int k, const std::vector<BitBlock>& blocks,
                                       Layout layout) {
  if (n <= 0 || k <= 0 || n % kTileRows != 0 || k % kGroupSize != 0)
    throw std::invalid_argument("matrix " + std::to_string(n) + "x" + std::to_string(k) +
                                ": rows must be a positive multiple of 16 and columns of 128");
  const int G = k / kGroupSize;
  const int rows = layout == Layout::kAligned ? n / kTileRows : n;
  std::vector<std::uint8_t> cell(static_cast<std::size_t>(rows) * G, 0);
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const BitBlock& b = blocks[i];
    const std::string where = "bit block " + std::to_string(i) + " [" + std::to_string(b.row0) +
                              "," + std::to_string(b.row1) + ")x[" + std::to_string(b.col0) + "," +
                              std::to_string(b.col1) + ")";
    if (!valid_bits(b.bits))
      throw std::invalid_argument(where + ": bits " + std::to_string(b.bits) +
                                  " not in {2,3,4,8}");
    if (b.row0 < 0 || b.row1 > n || b.row0 >= b.row1 || b.col0 < 0 || b.col1 > k ||
        b.col0 >= b.col1)
      throw std::invalid_argument(where + ": outside the " + std::to_string(n) + "x" +
                                  std::to_string(k) + " matrix or empty");
    int r0 = b.row0, r1 = b.row1;
    if (layout == Layout::kAligned) {
      if (b.row0 % kTileRows || (b.row1 % kTileRows && b.row1 != n) || b.col0 % kGroupSize ||
          (b.col1 % kGroupSize && b.col1 != k))
        throw std::invalid_argument(where +
                                    ": not aligned to 16-row x 128-column units (use the "
                                    "unaligned layout)");
      r0 = b.row0 / kTileRows;
      r1 = (b.row1 + kTileRows - 1) / kTileRows;
    }
    const int g0 = b.col0 / kGroupSize, g1 = (b.col1 + kGroupSize - 1) / kGroupSize;
    for (int r = r0; r < r1; ++r)
      for (int g = g0; g < g1; ++g) {
        std::uint8_t& c = cell[static_cast<std::size_t>(r) * G + g];
        if (layout == Layout::kAligned && c != 0 && c != b.bits)
          throw std::invalid_argument(where + " overlaps another block of a different width");
        c = static_cast<std::uint8_t>(std::max<int>(c, b.bits));
      }
  }
  for (std::size_t i = 0; i < cell.size(); ++i)
    if (cell[i] == 0) {
      const long r = static_cast<long>(i / G), g = static_cast<long>(i % G);
      throw std::invalid_argument(
          "no bit block covers row " +
          std::to_string(layout == Layout::kAligned ? r * kTileRows : r) + ", columns [" +
          std::to_string(g * kGroupSize) + "," + std::to_string((g + 1) * kGroupSize) + ")");
    }
  return cell;
}

PackedWeights pack_weights(const float* w, int n, int k, const std::vector<BitBlock>& blocks,
                           Layout layout, int threads) {
  const std::vector<std::uint8_t> cell = resolve_bits(n, k, blocks, layout);
  PackedWeights p;
  p.n = n;
  p.k = k;
  p.layout = layout;
  const int G = k / kGroupSize, RT = n / kTileRows;
  p.meta.resize(cell.size());
  std::size_t off = 0;
  for (std::size_t i = 0; i < cell.size(); ++i) {
    const int b = cell[i];
    p.max_bits = std::max(p.max_bits, b);
    if (off / 16 >= (1u << 28)) throw std::invalid_argument("packed matrix larger than 4 GiB");
    p.meta[i] = static_cast<std::uint32_t>(off / 16) << 4 | static_cast<std::uint32_t>(b);
    off += layout == Layout::kAligned ? frag::aligned_unit_bytes(b) : frag::row_group_bytes(b);
  }
  p.data.assign(off, 0);
  p.scales.assign(static_cast<std::size_t>(RT) * G * 8, 0);

  parallel_for(RT, threads, [&](long t0, long t1) {
    std::vector<std::uint8_t> q(kGroupSize * kTileRows);
    std::uint16_t sb[kTileRows];
    for (long rt = t0; rt < t1; ++rt)
      for (int g = 0; g < G; ++g) {
        for (int r = 0; r < kTileRows; ++r) {
          const long row = rt * kTileRows + r;
          const int bits = layout == Layout::kAligned
                               ? cell[static_cast<std::size_t>(rt) * G + g]
                               : cell[static_cast<std::size_t>(row) * G + g];
          quantize_group(w + row * static_cast<long>(k) + g * kGroupSize, bits, &sb[r],
                         &q[r * kGroupSize]);
        }
        std::uint32_t* sc = &p.scales[(static_cast<std::size_t>(rt) * G + g) * 8];
        for (int j = 0; j < 8; ++j) sc[j] = sb[j] | static_cast<std::uint32_t>(sb[j + 8]) << 16;
        if (layout == Layout::kAligned) {
          const std::uint32_t m = p.meta[static_cast<std::size_t>(rt) * G + g];
          const int bits = m & 15;
          std::uint8_t* base = p.data.data() + static_cast<std::size_t>(m >> 4) * 16;
          for (int r = 0; r < kTileRows; ++r)
            for (int c = 0; c < kGroupSize; ++c) {
              const FragCoord fc = frag_coord(r, c);
              put_code(bits, frag::kAlignedPairs, fc.kt * 4 + fc.reg, fc.h, q[r * kGroupSize + c],
                       [&](int word) {
                         return base + frag::aligned_word_offset(bits, fc.lane, word);
                       });
            }
        } else {
          for (int r = 0; r < kTileRows; ++r) {
            const long row = rt * kTileRows + r;
            const std::uint32_t m = p.meta[static_cast<std::size_t>(row) * G + g];
            const int bits = m & 15;
            std::uint8_t* base = p.data.data() + static_cast<std::size_t>(m >> 4) * 16;
            for (int c = 0; c < kGroupSize; ++c) {
              const FragCoord fc = frag_coord(r, c);
              const int tig = fc.lane % 4;
              put_code(bits, frag::kRowPairs, fc.kt * 2 + fc.reg / 2, fc.h, q[r * kGroupSize + c],
                       [&](int word) { return base + 4 * bits * tig + 4 * word; });
            }
          }
        }
      }
  });
  return p;
}

int PackedWeights::bits_at(int row, int col) const {
  const int G = groups();
  const std::size_t i = layout == Layout::kAligned
                            ? static_cast<std::size_t>(row / kTileRows) * G + col / kGroupSize
                            : static_cast<std::size_t>(row) * G + col / kGroupSize;
  return static_cast<int>(meta[i] & 15);
}

float PackedWeights::scale_at(int row, int col) const {
  const std::uint32_t s =
      scales[(static_cast<std::size_t>(row / kTileRows) * groups() + col / kGroupSize) * 8 +
             row % 8];
  return half_to_float(static_cast<std::uint16_t>((row % kTileRows) < 8 ? s & 0xFFFF : s >> 16));
}

int PackedWeights::code_at(int row, int col) const {
  const int G = groups(), g = col / kGroupSize;
  const FragCoord fc = frag_coord(row % kTileRows, col % kGroupSize);
  if (layout == Layout::kAligned) {
    const std::uint32_t m = meta[static_cast<std::size_t>(row / kTileRows) * G + g];
    const int bits = m & 15;
    const std::uint8_t* base = data.data() + static_cast<std::size_t>(m >> 4) * 16;
    return get_code(bits, frag::kAlignedPairs, fc.kt * 4 + fc.reg, fc.h, [&](int word) {
      return base + frag::aligned_word_offset(bits, fc.lane, word);
    });
  }
  const std::uint32_t m = meta[static_cast<std::size_t>(row) * G + g];
  const int bits = m & 15, tig = fc.lane % 4;
  const std::uint8_t* base = data.data() + static_cast<std::size_t>(m >> 4) * 16 + 4 * bits * tig;
  return get_code(bits, frag::kRowPairs, fc.kt * 2 + fc.reg / 2, fc.h,
                  [&](int word) { return base + 4 * word; });
}

float PackedWeights::weight_at(int row, int col) const {
  const int bits = bits_at(row, col);
  return scale_at(row, col) * static_cast<float>(code_at(row, col) - (1 << (bits - 1)));
}

std::size_t PackedWeights::device_bytes() const {
  return data.size() + meta.size() * 4 + scales.size() * 4;
}

double PackedWeights::avg_bits() const {
  return static_cast<double>(data.size()) * 8.0 / (static_cast<double>(n) * k);
}

double PackedWeights::effective_bits() const {
  return static_cast<double>(device_bytes()) * 8.0 / (static_cast<double>(n) * k);
}

void dequant_row(const PackedWeights& p, int row, float* out) {
  for (int c = 0; c < p.k; ++c) out[c] = p.weight_at(row, c);
}

}  // namespace hawq::kernels
