// Fragment-level encoding shared by the packer (CPU), the CPU emulator and the CUDA kernels.
//
// A lane of the warp owns, for every k-step (16 columns) of a group, the four 32-bit registers
// R0..R3 of the mma.m16n8k16 A operand (PTX ISA, "Matrix fragments for mma.m16n8k16", .f16):
//   register r, half h  ->  tile row = gid + 8 * (r & 1),  column = 2 * tig + h + 8 * (r >> 1)
// with gid = lane / 4, tig = lane % 4. A register is a "pair" of two weights of the same row.
//
// Pair numbering and word packing, for `np` pairs per lane (32 in an aligned unit: p = kt*4 + r;
// 16 per row in an unaligned row-group: p = kt*2 + (r >> 1)):
//   b = 4: word p/4,  l = p%4: low weight in nibble l, high weight in nibble l+4
//   b = 2: word p/8,  l = p%8: low weight in crumb l,  high weight in crumb l+8
//   b = 8: word p/2,  l = p%2: low weight in byte 2l,  high weight in byte 2l+1
//   b = 3: the low two bits as b = 2 in words [0, np/8); the third bit in word np/8 + p/16,
//          l = p%16: low weight at bit l, high weight at bit 16+l
// Decoding builds two fp16 numbers 1024 + c * 2^e with one AND/OR (the code c lands in the
// mantissa of 0x6400 = 1024) and turns them into the exact integer q - z with one fp16 fma whose
// constants below are exact in fp16. Everything stays exact: the tensor core multiplies exact
// (q - z) by fp16 x with fp32 accumulation, and the scale is applied in fp32 per group.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define HAWQ_HD __host__ __device__ __forceinline__
#else
#define HAWQ_HD inline
#endif

namespace hawq::kernels::frag {

constexpr int kKSteps = 8;         // k16 steps per 128-column group
constexpr int kAlignedPairs = 32;  // pairs per lane per aligned unit
constexpr int kRowPairs = 16;      // pairs per lane per row-group (unaligned)

// Words per lane: aligned unit = 2*b, unaligned row-group part = b.
HAWQ_HD constexpr int words_per_lane(int bits, int np) { return np * 2 * bits / 32; }

// Position of a weight inside the word array of a lane: word index and bit offset.
struct BitPos {
  int word, shift;
};
// Low part (b = 3: the two low bits) of weight `h` (0 low, 1 high) of pair p.
HAWQ_HD BitPos code_pos(int bits, int p, int h) {
  switch (bits) {
    case 4: return {p / 4, 4 * (p % 4 + 4 * h)};
    case 8: return {p / 2, 8 * (2 * (p % 2) + h)};
    default: return {p / 8, 2 * (p % 8 + 8 * h)};  // 2 and 3
  }
}
// Third bit of a 3-bit weight.
HAWQ_HD BitPos hi_pos(int np, int p, int h) { return {np / 8 + p / 16, p % 16 + 16 * h}; }

// ---------------------------------------------------------------- magic-number decode constants
// fp16 bit patterns (checked by the CPU self-test, which decodes them independently).
constexpr std::uint32_t kMagic = 0x64006400u;  // fp16 pair (1024, 1024)
HAWQ_HD constexpr std::uint32_t dup(std::uint32_t h16) { return h16 | (h16 << 16); }
// multiplier 4^-l: 1, 1/4, 1/16, 1/64
HAWQ_HD constexpr std::uint32_t mul_quarter(int l) {
  return l == 0 ? 0x3C00u : l == 1 ? 0x3400u : l == 2 ? 0x2C00u : 0x2400u;
}
// -(1024 * 4^-l + 2): -1026, -258, -66, -18   (2-bit, z = 2)
HAWQ_HD constexpr std::uint32_t add2(int l) {
  return l == 0 ? 0xE402u : l == 1 ? 0xDC08u : l == 2 ? 0xD420u : 0xCC80u;
}
// -(1024 * 4^-l): -1024, -256, -64, -16        (3-bit low part)
HAWQ_HD constexpr std::uint32_t add3lo(int l) {
  return l == 0 ? 0xE400u : l == 1 ? 0xDC00u : l == 2 ? 0xD400u : 0xCC00u;
}
// 3-bit third bit at 2^i: multiplier 4 * 2^-i (4, 2, 1, 1/2), add -(4096 * 2^-i + 4)
HAWQ_HD constexpr std::uint32_t mul3hi(int i) {
  return i == 0 ? 0x4400u : i == 1 ? 0x4000u : i == 2 ? 0x3C00u : 0x3800u;
}
HAWQ_HD constexpr std::uint32_t add3hi(int i) {
  return i == 0 ? 0xEC01u : i == 1 ? 0xE802u : i == 2 ? 0xE404u : 0xE008u;
}
constexpr std::uint32_t kOne = 0x3C00u, kSixteenth = 0x2C00u;
constexpr std::uint32_t kAdd4Lo = 0xE408u;  // -1032 = -(1024 + 8)
constexpr std::uint32_t kAdd4Hi = 0xD480u;  // -72 = -(64 + 8)
constexpr std::uint32_t kAdd8 = 0xE480u;    // -1152 = -(1024 + 128)

// Decodes pair p (compile-time after unrolling) of a lane's words into the fp16 pair (q - z).
// Ops supplies fma2(a, mul16, add16) and add2(a, b) on packed fp16 pairs held in uint32, a byte
// permute and and_or(x, mask, magic) = (x & mask) | magic (one LOP3 on the GPU); the CUDA kernels
// use the hardware instructions, the CPU self-test an emulation.
template <int B, int NP, class Ops>
HAWQ_HD std::uint32_t decode_pair(const std::uint32_t* w, int p) {
  if constexpr (B == 4) {
    std::uint32_t x = w[p / 4];
    const int l = p % 4;
    if (l >= 2) x >>= 8;
    if ((l & 1) == 0) return Ops::fma2(Ops::and_or(x, 0x000F000Fu, kMagic), dup(kOne), dup(kAdd4Lo));
    return Ops::fma2(Ops::and_or(x, 0x00F000F0u, kMagic), dup(kSixteenth), dup(kAdd4Hi));
  } else if constexpr (B == 8) {
    const std::uint32_t x = w[p / 2];
    const std::uint32_t h = Ops::prmt(x, 0x64646464u, (p % 2) ? 0x4342u : 0x4140u);
    return Ops::fma2(h, dup(kOne), dup(kAdd8));
  } else if constexpr (B == 2) {
    std::uint32_t x = w[p / 8];
    int l = p % 8;
    if (l >= 4) { x >>= 8; l -= 4; }
    const std::uint32_t mask = (3u << (2 * l)) * 0x00010001u;
    return Ops::fma2(Ops::and_or(x, mask, kMagic), dup(mul_quarter(l)), dup(add2(l)));
  } else {
    static_assert(B == 3, "bits must be 2, 3, 4 or 8");
    std::uint32_t x = w[p / 8];
    int l = p % 8;
    if (l >= 4) { x >>= 8; l -= 4; }
    const std::uint32_t lo = Ops::fma2(Ops::and_or(x, (3u << (2 * l)) * 0x00010001u, kMagic),
                                       dup(mul_quarter(l)), dup(add3lo(l)));
    std::uint32_t y = w[NP / 8 + p / 16];
    const int i = p % 16;
    y >>= 4 * (i / 4);
    const int j = i % 4;
    const std::uint32_t hi =
        Ops::fma2(Ops::and_or(y, (1u << j) * 0x00010001u, kMagic), dup(mul3hi(j)), dup(add3hi(j)));
    return Ops::add2(lo, hi);
  }
}

// Aligned unit layout: lane word w lives in 16-byte chunk w/4 at byte 512*(w/4) + 16*lane + 4*(w%4),
// except for b = 3, whose words 4 and 5 are at byte 512 + 8*lane + 4*(w-4) (a 256-byte half chunk).
HAWQ_HD int aligned_word_offset(int bits, int lane, int w) {
  if (bits == 3 && w >= 4) return 512 + 8 * lane + 4 * (w - 4);
  return 512 * (w / 4) + 16 * lane + 4 * (w % 4);
}
HAWQ_HD constexpr int aligned_unit_bytes(int bits) { return 256 * bits; }
// Unaligned row-group: 16*b bytes, the part of quad lane `tig` at 4*b*tig, word w at +4*w.
HAWQ_HD constexpr int row_group_bytes(int bits) { return 16 * bits; }

}  // namespace hawq::kernels::frag
