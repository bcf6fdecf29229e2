// Safetensors reading (memory-mapped, bounds-checked) and atomic writing.
#include "hawq/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "hawq/errors.h"
#include "hawq/fs.h"

namespace hawq {

namespace {
constexpr std::uint64_t kMaxHeader = 100ull << 20;  // the reference implementation's limit

[[noreturn]] void bad(const std::string& path, const std::string& what) {
  throw FormatError("safetensors file " + path + ": " + what);
}
}  // namespace

std::size_t dtype_size(const std::string& d) {
  if (d == "F64" || d == "I64" || d == "U64") return 8;
  if (d == "F32" || d == "I32" || d == "U32") return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
  if (d == "I8" || d == "U8" || d == "BOOL" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
  throw FormatError("unknown safetensors dtype '" + d + "'");
}

std::int64_t SafeTensorEntry::numel() const {
  std::int64_t n = 1;
  for (auto s : shape) n *= s;
  return n;
}

SafeTensorsFile::SafeTensorsFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) bad(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    bad(path, "cannot stat");
  }
  map_size_ = static_cast<std::size_t>(st.st_size);
  if (map_size_ < 8) {
    ::close(fd);
    bad(path, "truncated: " + std::to_string(map_size_) + " bytes, expected at least the 8-byte header length");
  }
  void* m = ::mmap(nullptr, map_size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) bad(path, "mmap failed");
  map_ = static_cast<const std::uint8_t*>(m);

  try {
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | map_[i];
    if (n > kMaxHeader) bad(path, "header length " + std::to_string(n) + " exceeds the 100 MiB limit");
    if (n > map_size_ - 8)
      bad(path, "truncated: header claims " + std::to_string(n) + " bytes but the file has " +
                    std::to_string(map_size_ - 8) + " after the length");
    data_start_ = 8 + n;
    const std::size_t data_size = map_size_ - data_start_;
    nlohmann::json header;
    try {
      header = nlohmann::json::parse(map_ + 8, map_ + 8 + n);
    } catch (const nlohmann::json::exception& e) {
      bad(path, std::string("header is not valid JSON: ") + e.what());
    }
    if (!header.is_object()) bad(path, "header is not a JSON object");
    std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
    for (auto it = header.begin(); it != header.end(); ++it) {
      if (it.key() == "__metadata__") {
        if (!it->is_object()) bad(path, "__metadata__ is not an object");
        for (auto m2 = it->begin(); m2 != it->end(); ++m2) {
          if (!m2->is_string()) bad(path, "__metadata__ value for '" + m2.key() + "' is not a string");
          metadata_[m2.key()] = m2->get<std::string>();
        }
        continue;
      }
      const auto& v = *it;
      const std::string name = it.key();
      if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
        bad(path, "tensor '" + name + "' lacks dtype, shape or data_offsets");
      SafeTensorEntry e;
      if (!v["dtype"].is_string()) bad(path, "tensor '" + name + "' dtype is not a string");
      e.dtype = v["dtype"].get<std::string>();
      std::size_t esize = 0;
      try {
        esize = dtype_size(e.dtype);
      } catch (const FormatError&) {
        bad(path, "tensor '" + name + "' has unknown dtype '" + e.dtype + "'");
      }
      if (!v["shape"].is_array()) bad(path, "tensor '" + name + "' shape is not a list");
      std::uint64_t numel = 1;
      for (const auto& s : v["shape"]) {
        if (!s.is_number_integer() || s.get<std::int64_t>() < 0) bad(path, "tensor '" + name + "' has a negative or non-integer dimension");
        std::uint64_t d = s.get<std::uint64_t>();
        if (d != 0 && numel > std::numeric_limits<std::uint64_t>::max() / d) bad(path, "tensor '" + name + "' shape overflows");
        numel *= d;
        e.shape.push_back(static_cast<std::int64_t>(d));
      }
      const auto& off = v["data_offsets"];
      if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
        bad(path, "tensor '" + name + "' data_offsets must be two non-negative integers");
      e.begin = off[0].get<std::uint64_t>();
      e.end = off[1].get<std::uint64_t>();
      if (e.begin > e.end) bad(path, "tensor '" + name + "' data_offsets begin > end");
      if (e.end > data_size)
        bad(path, "truncated: tensor '" + name + "' ends at byte " + std::to_string(e.end) + " of a " +
                      std::to_string(data_size) + "-byte data buffer");
      if (numel > std::numeric_limits<std::uint64_t>::max() / esize || e.end - e.begin != numel * esize)
        bad(path, "tensor '" + name + "' has " + std::to_string(e.end - e.begin) + " bytes but shape and dtype need " +
                      std::to_string(numel * esize));
      ranges.push_back({e.begin, e.end});
      entries_[name] = std::move(e);
    }
    std::sort(ranges.begin(), ranges.end());
    for (std::size_t i = 1; i < ranges.size(); ++i)
      if (ranges[i].first < ranges[i - 1].second) bad(path, "tensor data ranges overlap");
  } catch (...) {
    ::munmap(const_cast<std::uint8_t*>(map_), map_size_);
    map_ = nullptr;
    throw;
  }
}

SafeTensorsFile::~SafeTensorsFile() {
  if (map_) ::munmap(const_cast<std::uint8_t*>(map_), map_size_);
}

const SafeTensorEntry& SafeTensorsFile::entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) bad(path_, "missing tensor '" + name + "'");
  return it->second;
}

const std::uint8_t* SafeTensorsFile::data(const std::string& name) const {
  return map_ + data_start_ + entry(name).begin;
}

void write_safetensors(const std::string& path, const std::vector<SafeTensorOut>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  std::uint64_t offset = 0;
  for (const auto& t : tensors) {
    std::uint64_t numel = 1;
    for (auto s : t.shape) numel *= static_cast<std::uint64_t>(s);
    HAWQ_CHECK(numel * dtype_size(t.dtype) == t.bytes.size(), "tensor " + t.name + " bytes do not match its shape");
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::string h = header.dump();
  while ((h.size() + 8) % 8 != 0) h.push_back(' ');  // align the data buffer to 8 bytes
  std::string blob;
  blob.reserve(8 + h.size() + offset);
  std::uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) blob.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  blob += h;
  for (const auto& t : tensors) blob.append(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
  write_file_atomic(path, blob);
}

float half_to_float(std::uint16_t h) {
  std::uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ffu, bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while ((man & 0x400u) == 0) {
        man <<= 1;
        --exp;
      }
      man &= 0x3ffu;
      bits = sign | (exp << 23) | (man << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bf16_to_float(std::uint16_t b) {
  std::uint32_t bits = static_cast<std::uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

std::uint16_t float_to_bf16(float f) {
  std::uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((bits >> 16) | 0x40);  // NaN stays NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);  // round to nearest even
  return static_cast<std::uint16_t>(bits >> 16);
}

std::uint16_t float_to_half(float f) {
  std::uint32_t x;
  std::memcpy(&x, &f, 4);
  std::uint32_t sign = (x >> 16) & 0x8000u;
  std::int32_t exp = static_cast<std::int32_t>((x >> 23) & 0xff) - 127 + 15;
  std::uint32_t man = x & 0x7fffffu;
  if (((x >> 23) & 0xff) == 0xff) return static_cast<std::uint16_t>(sign | 0x7c00u | (man ? 0x200u : 0));
  if (exp >= 31) return static_cast<std::uint16_t>(sign | 0x7c00u);
  if (exp <= 0) {
    if (exp < -10) return static_cast<std::uint16_t>(sign);
    man |= 0x800000u;
    std::uint32_t shift = static_cast<std::uint32_t>(14 - exp);
    std::uint32_t half = man >> shift;
    std::uint32_t rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1u))) ++half;
    return static_cast<std::uint16_t>(sign | half);
  }
  std::uint32_t h = sign | (static_cast<std::uint32_t>(exp) << 10) | (man >> 13);
  std::uint32_t rem = man & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // may carry into the exponent: correct
  return static_cast<std::uint16_t>(h);
}

}  // namespace hawq
