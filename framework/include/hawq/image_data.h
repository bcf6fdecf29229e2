// Readers for image data files: IDX (MNIST family, optionally gzip-compressed) and HDF5 tensors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hawq {

// An IDX array of unsigned bytes: dims (big-endian in the file) and row-major data.
struct IdxArray {
  std::vector<std::uint32_t> dims;
  std::vector<std::uint8_t> data;
};
// Reads an IDX file ("*.gz" is decompressed). Throws FormatError on truncation or bad headers.
IdxArray read_idx(const std::string& path);

struct Hdf5ImageArray {
  std::vector<std::int64_t> shape;  // N, C, H, W
  std::vector<float> images;
  std::vector<std::int64_t> labels;
};
// Reads datasets `images` (N×C×H×W) and `labels` (N) from an HDF5 file.
Hdf5ImageArray read_hdf5_images(const std::string& path);

}  // namespace hawq
