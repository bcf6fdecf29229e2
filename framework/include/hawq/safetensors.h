// Safetensors reader/writer. Torch-free; files are treated as untrusted input.
//
// Format: 8-byte little-endian header length N, N bytes of JSON {name: {dtype, shape,
// data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the data buffer. The reader
// memory-maps the file and checks every offset, size and shape against the file before any
// tensor is touched, so a truncated or lying file is a FormatError, never a crash.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace hawq {

struct SafeTensorEntry {
  std::string dtype;                 // "F32", "F16", "BF16", "F64", "I64", "I32", "I8", "U8", "BOOL"
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0, end = 0;  // byte range inside the data buffer
  std::int64_t numel() const;
};

// Bytes per element of a safetensors dtype; throws FormatError for an unknown one.
std::size_t dtype_size(const std::string& dtype);

class SafeTensorsFile {
 public:
  // Opens and validates `path`. Throws FormatError naming the file and the problem.
  explicit SafeTensorsFile(const std::string& path);
  ~SafeTensorsFile();
  SafeTensorsFile(const SafeTensorsFile&) = delete;
  SafeTensorsFile& operator=(const SafeTensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, SafeTensorEntry>& tensors() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const { return entries_.count(name) != 0; }
  const SafeTensorEntry& entry(const std::string& name) const;  // FormatError if absent
  const std::uint8_t* data(const std::string& name) const;       // start of the tensor's bytes

 private:
  std::string path_;
  std::map<std::string, SafeTensorEntry> entries_;
  std::map<std::string, std::string> metadata_;
  const std::uint8_t* map_ = nullptr;
  std::size_t map_size_ = 0;
  std::size_t data_start_ = 0;
};

struct SafeTensorOut {
  std::string name;
  std::string dtype;
  std::vector<std::int64_t> shape;
  std::vector<std::uint8_t> bytes;   // little-endian element data
};

// Writes atomically (temporary file + rename).
void write_safetensors(const std::string& path, const std::vector<SafeTensorOut>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Float conversions used by loaders and writers.
float half_to_float(std::uint16_t h);
float bf16_to_float(std::uint16_t b);
std::uint16_t float_to_half(float f);
std::uint16_t float_to_bf16(float f);

}  // namespace hawq
