// Packed weight format of the mixed-precision GEMV/GEMM kernels, the packer and the CPU reference.
// Plain C++17, no CUDA and no LibTorch: the allocators and the framework can include it.
//
// y[M x N] = x[M x K] . W^T, W is N x K (PyTorch Linear layout), x and y fp16, W quantised per
// group of 128 consecutive weights along K with one fp16 scale per (row, group), symmetric codes:
//
//     w = s * (q - z),   q in [0, 2^b - 1],   z = 2^(b-1),   s = 2 * max|w_group| / (2^b - 1)
//
// (the GPTQ "sym" convention). Widths b in {2, 3, 4, 8}. A per-block bit map (BitBlock list)
// gives every weight its width. Two layouts (docs/KERNELS.md has the byte-level picture):
//
//  * kAligned: one width per unit = 16 rows x 128 columns (one m16 tensor-core tile x one scale
//    group). A unit's 256*b bytes are contiguous and ordered so that lane t of the warp finds the
//    8*b bytes of its mma.m16n8k16 A-fragments for all 8 k-steps of the group in 16-byte chunks
//    (chunk c of lane t at unit + 512*c + 16*t). Any BitBlock map whose boundaries fall on
//    multiples of 16 rows and 128 columns (e.g. HAWQ-v3 128x128 tiles) packs this way.
//  * kUnaligned: one width per (row, group); block row boundaries are arbitrary. Each row-group is
//    16*b contiguous bytes: four 4*b-byte parts, one per lane of the quad that holds that row in the
//    fragment. The kernel looks up each row's width per group inside a tile (divergent decode).
//
// Both layouts share the metadata word (offset / 16) << 4 | bits and the scale layout: per unit
// (16-row tile, group) eight 32-bit words, word j = fp16 pair (s[row j], s[row j + 8]).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace hawq::kernels {

constexpr int kGroupSize = 128;  // weights per scale along K
constexpr int kTileRows = 16;    // rows per tensor-core tile / aligned unit
constexpr int kMaxBits = 8;

enum class Layout { kAligned, kUnaligned };
const char* layout_name(Layout layout);

// Half-open ranges [row0, row1) x [col0, col1) of W (rows = output features, cols = input features).
struct BitBlock {
  int row0, row1, col0, col1, bits;
};

inline bool valid_bits(int b) { return b == 2 || b == 3 || b == 4 || b == 8; }

struct PackedWeights {
  int n = 0, k = 0;
  Layout layout = Layout::kAligned;
  int max_bits = 0;
  std::vector<std::uint8_t> data;     // codes; every unit / row-group starts on a 16-byte boundary
  std::vector<std::uint32_t> meta;    // (byte offset / 16) << 4 | bits. kAligned: [n/16][k/128];
                                      // kUnaligned: [n][k/128]
  std::vector<std::uint32_t> scales;  // [(n/16) * (k/128)][8]: fp16 pair (s[16t+j], s[16t+j+8])

  int groups() const { return k / kGroupSize; }
  int row_tiles() const { return n / kTileRows; }
  int bits_at(int row, int col) const;      // width of W[row][col]
  float scale_at(int row, int col) const;   // fp16 scale of W[row][col], as float
  int code_at(int row, int col) const;      // q of W[row][col], decoded from `data`
  float weight_at(int row, int col) const;  // s * (q - z), exactly
  std::size_t device_bytes() const;         // bytes the kernel reads: data + meta + scales
  double avg_bits() const;                  // code bits per weight (scales and meta excluded)
  double effective_bits() const;            // device_bytes * 8 / (n * k)
};

// Width of every cell: kAligned cells are 16 x 128 units, kUnaligned cells are 1 x 128 row-groups.
// Throws std::invalid_argument for a block out of range, a width not in {2,3,4,8}, a cell that no
// block covers, or (kAligned) a unit that blocks split into different widths. In kUnaligned a
// row-group whose 128 columns see several widths takes the largest (documented rounding).
std::vector<std::uint8_t> resolve_bits(int n, int k, const std::vector<BitBlock>& blocks,
                                       Layout layout);

// Quantises float weights (row-major N x K) and packs them. n % 16 == 0 and k % 128 == 0.
// threads = 0: hardware concurrency.
PackedWeights pack_weights(const float* w, int n, int k, const std::vector<BitBlock>& blocks,
                           Layout layout, int threads = 0);

// Convenience: one block covering the whole matrix.
std::vector<BitBlock> uniform_blocks(int n, int k, int bits);

// Row `row` of the dequantised matrix into out[k] (exactly s * (q - z) in float).
void dequant_row(const PackedWeights& p, int row, float* out);

// Reference y[r][n] = sum_k x[rows[r]][k] * W[n][k] in double for the listed x rows
// (x: fp16 bits, row-major m x k). Result y_ref[r * n + col]. threads = 0: hardware concurrency.
void reference_gemm(const PackedWeights& p, const std::uint16_t* x, const std::vector<int>& rows,
                    std::vector<double>& y_ref, int threads = 0);
// Same for a dense fp16 weight matrix w (N x K, fp16 bits).
void reference_gemm_dense(const std::uint16_t* w, int n, int k, const std::uint16_t* x,
                          const std::vector<int>& rows, std::vector<double>& y_ref, int threads = 0);

// ||y - ref|| / ||ref|| over the listed rows; y is fp16 bits, row-major m x n. NaN if any y is
// not finite.
double relative_error(const std::uint16_t* y, int n, const std::vector<int>& rows,
                      const std::vector<double>& y_ref);

// Emulates the GPU kernel on the CPU: walks units and lanes exactly as the kernel does (addresses,
// fragment decode with fp16 magic-number arithmetic, mma fragment ownership) and returns y for
// the listed rows in double. Used by the CPU self-test to check the device-side indexing.
void emulate_kernel(const PackedWeights& p, const std::uint16_t* x, int m,
                    const std::vector<int>& rows, std::vector<double>& y_out);

// fp16 <-> float, round to nearest even (no CUDA headers needed).
std::uint16_t float_to_half(float f);
float half_to_float(std::uint16_t h);

}  // namespace hawq::kernels
