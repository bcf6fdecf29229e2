// CPU reference GEMM on the packed format, fp16 conversion and the kernel emulator.
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>

#include "hawq/kernels/format.h"
#include "hawq/kernels/fragment.h"
#include "parallel.h"

namespace hawq::kernels {

std::uint16_t float_to_half(float f) {
  std::uint32_t x;
  std::memcpy(&x, &f, 4);
  const std::uint32_t sign = (x >> 16) & 0x8000u;
  const std::uint32_t absx = x & 0x7FFFFFFFu;
  if (absx >= 0x7F800000u)  // inf or nan
    return static_cast<std::uint16_t>(sign | 0x7C00u | (absx > 0x7F800000u ? 0x200u : 0u));
  if (absx >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // rounds to inf
  if (absx < 0x38800000u) {  // fp16 subnormal or zero: value = m * 2^-24
    if (absx < 0x33000000u) return static_cast<std::uint16_t>(sign);  // < 2^-25 rounds to 0
    const int e = static_cast<int>(absx >> 23);                        // biased float exponent
    const std::uint32_t mant = (absx & 0x7FFFFFu) | 0x800000u;
    const int shift = 126 - e;  // 24-bit mantissa -> units of 2^-24
    std::uint32_t h = mant >> shift;
    const std::uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) ++h;
    return static_cast<std::uint16_t>(sign | h);
  }
  std::uint32_t h = ((absx >> 13) - (112u << 10));
  const std::uint32_t rem = absx & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) ++h;
  return static_cast<std::uint16_t>(sign | h);
}

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t e = (h >> 10) & 0x1F, m = h & 0x3FFu;
  std::uint32_t x;
  if (e == 0) {
    const float v = std::ldexp(static_cast<float>(m), -24);
    return sign ? -v : v;
  }
  if (e == 31) x = sign | 0x7F800000u | (m << 13);
  else x = sign | ((e + 112) << 23) | (m << 13);
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

namespace {

void reference_rows(int n, int k, const std::uint16_t* x, const std::vector<int>& rows,
                    std::vector<double>& y_ref, int threads,
                    const std::function<void(int, float*)>& row_of_w) {
  const std::size_t R = rows.size();
  std::vector<double> xd(R * static_cast<std::size_t>(k));
  for (std::size_t r = 0; r < R; ++r)
    for (int c = 0; c < k; ++c)
      xd[r * k + c] = half_to_float(x[static_cast<std::size_t>(rows[r]) * k + c]);
  y_ref.assign(R * static_cast<std::size_t>(n), 0.0);
  detail::parallel_for(n, threads, [&](long n0, long n1) {
    std::vector<float> w(k);
    for (long row = n0; row < n1; ++row) {
      row_of_w(static_cast<int>(row), w.data());
      for (std::size_t r = 0; r < R; ++r) {
        const double* xr = &xd[r * k];
        double acc = 0;
        for (int c = 0; c < k; ++c) acc += xr[c] * static_cast<double>(w[c]);
        y_ref[r * n + row] = acc;
      }
    }
  });
}

}  // namespace

void reference_gemm(const PackedWeights& p, const std::uint16_t* x, const std::vector<int>& rows,
                    std::vector<double>& y_ref, int threads) {
  reference_rows(p.n, p.k, x, rows, y_ref, threads,
                 [&](int row, float* out) { dequant_row(p, row, out); });
}

void reference_gemm_dense(const std::uint16_t* w, int n, int k, const std::uint16_t* x,
                          const std::vector<int>& rows, std::vector<double>& y_ref, int threads) {
  reference_rows(n, k, x, rows, y_ref, threads, [&](int row, float* out) {
    const std::uint16_t* wr = w + static_cast<std::size_t>(row) * k;
    for (int c = 0; c < k; ++c) out[c] = half_to_float(wr[c]);
  });
}

double relative_error(const std::uint16_t* y, int n, const std::vector<int>& rows,
                      const std::vector<double>& y_ref) {
  double num = 0, den = 0;
  for (std::size_t r = 0; r < rows.size(); ++r)
    for (int c = 0; c < n; ++c) {
      const double v = half_to_float(y[static_cast<std::size_t>(rows[r]) * n + c]);
      if (!std::isfinite(v)) return std::numeric_limits<double>::quiet_NaN();
      const double d = v - y_ref[r * n + c];
      num += d * d;
      den += y_ref[r * n + c] * y_ref[r * n + c];
    }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

// ---------------------------------------------------------------- emulator

namespace {

// fp16-pair arithmetic as the GPU does it: exact operation, one rounding to fp16 per lane.
struct HostOps {
  static std::uint32_t fma2(std::uint32_t a, std::uint32_t b, std::uint32_t c) {
    std::uint32_t r = 0;
    for (int i = 0; i < 2; ++i) {
      const double va = half_to_float(static_cast<std::uint16_t>(a >> (16 * i)));
      const double vb = half_to_float(static_cast<std::uint16_t>(b >> (16 * i)));
      const double vc = half_to_float(static_cast<std::uint16_t>(c >> (16 * i)));
      r |= static_cast<std::uint32_t>(float_to_half(static_cast<float>(va * vb + vc))) << (16 * i);
    }
    return r;
  }
  static std::uint32_t add2(std::uint32_t a, std::uint32_t b) {
    return fma2(a, frag::dup(frag::kOne), b);
  }
  static std::uint32_t and_or(std::uint32_t x, std::uint32_t mask, std::uint32_t magic) {
    return (x & mask) | magic;
  }
  static std::uint32_t prmt(std::uint32_t x, std::uint32_t y, std::uint32_t sel) {
    const std::uint64_t v = static_cast<std::uint64_t>(y) << 32 | x;
    std::uint32_t r = 0;
    for (int i = 0; i < 4; ++i) {
      const int s = (sel >> (4 * i)) & 7;
      r |= static_cast<std::uint32_t>((v >> (8 * s)) & 0xFF) << (8 * i);
    }
    return r;
  }
};

template <int B, int NP>
void decode_all(const std::uint32_t* w, std::uint32_t* out) {
  for (int p = 0; p < NP; ++p) out[p] = frag::decode_pair<B, NP, HostOps>(w, p);
}

void decode_lane(int bits, int np, const std::uint32_t* w, std::uint32_t* out) {
  switch (bits * 100 + np) {
    case 232: decode_all<2, 32>(w, out); break;
    case 332: decode_all<3, 32>(w, out); break;
    case 432: decode_all<4, 32>(w, out); break;
    case 832: decode_all<8, 32>(w, out); break;
    case 216: decode_all<2, 16>(w, out); break;
    case 316: decode_all<3, 16>(w, out); break;
    case 416: decode_all<4, 16>(w, out); break;
    case 816: decode_all<8, 16>(w, out); break;
    default: throw std::logic_error("decode_lane: bad width");
  }
}

double half_lo(std::uint32_t v) { return half_to_float(static_cast<std::uint16_t>(v & 0xFFFF)); }
double half_hi(std::uint32_t v) { return half_to_float(static_cast<std::uint16_t>(v >> 16)); }

}  // namespace

void emulate_kernel(const PackedWeights& p, const std::uint16_t* x, int m,
                    const std::vector<int>& rows, std::vector<double>& y_out) {
  const int G = p.groups(), RT = p.row_tiles(), K = p.k, N = p.n;
  const std::size_t R = rows.size();
  for (int r : rows)
    if (r < 0 || r >= m) throw std::invalid_argument("emulate_kernel: row out of range");
  y_out.assign(R * static_cast<std::size_t>(N), 0.0);
  detail::parallel_for(RT, 0, [&](long t0, long t1) {
    std::uint32_t words[2][16];
    std::uint32_t pairs[2][32];
    std::vector<double> c(16 * R);
    for (long rt = t0; rt < t1; ++rt)
      for (int g = 0; g < G; ++g) {
        std::fill(c.begin(), c.end(), 0.0);
        double s_row[16];
        for (int lane = 0; lane < 32; ++lane) {
          const int gid = lane / 4, tig = lane % 4;
          const std::uint32_t sc = p.scales[(static_cast<std::size_t>(rt) * G + g) * 8 + gid];
          s_row[gid] = half_lo(sc);
          s_row[gid + 8] = half_hi(sc);
          // A[r][kt] = fp16 pair of register r at k-step kt for this lane.
          auto reg = [&](int kt, int r) -> std::uint32_t {
            if (p.layout == Layout::kAligned) return pairs[0][kt * 4 + r];
            return pairs[r & 1][kt * 2 + (r >> 1)];  // row gid: R0/R2; row gid+8: R1/R3
          };
          if (p.layout == Layout::kAligned) {
            const std::uint32_t mt = p.meta[static_cast<std::size_t>(rt) * G + g];
            const int bits = mt & 15;
            const std::uint8_t* base = p.data.data() + static_cast<std::size_t>(mt >> 4) * 16;
            for (int w = 0; w < 2 * bits; ++w)
              std::memcpy(&words[0][w], base + frag::aligned_word_offset(bits, lane, w), 4);
            decode_lane(bits, frag::kAlignedPairs, words[0], pairs[0]);
          } else {
            for (int half = 0; half < 2; ++half) {
              const long row = rt * kTileRows + gid + 8 * half;
              const std::uint32_t mt = p.meta[static_cast<std::size_t>(row) * G + g];
              const int bits = mt & 15;
              const std::uint8_t* base =
                  p.data.data() + static_cast<std::size_t>(mt >> 4) * 16 + 4 * bits * tig;
              std::memcpy(words[half], base, 4 * bits);
              decode_lane(bits, frag::kRowPairs, words[half], pairs[half]);
            }
          }
          // PTX A-fragment ownership: register r, half h -> row gid + 8(r&1), col 2tig + h + 8(r>>1)
          for (int kt = 0; kt < frag::kKSteps; ++kt)
            for (int r = 0; r < 4; ++r) {
              const std::uint32_t v = reg(kt, r);
              for (int h = 0; h < 2; ++h) {
                const double a = h ? half_hi(v) : half_lo(v);
                const int row = gid + 8 * (r & 1);
                const int col = g * kGroupSize + kt * 16 + 2 * tig + h + 8 * (r >> 1);
                for (std::size_t i = 0; i < R; ++i)
                  c[row * R + i] +=
                      a * half_to_float(x[static_cast<std::size_t>(rows[i]) * K + col]);
              }
            }
        }
        for (int row = 0; row < 16; ++row)
          for (std::size_t i = 0; i < R; ++i)
            y_out[i * N + rt * kTileRows + row] += s_row[row] * c[row * R + i];
      }
  });
}

}  // namespace hawq::kernels
