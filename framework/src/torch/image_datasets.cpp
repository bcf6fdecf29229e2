// Image datasets: Fashion-MNIST (gzip-compressed IDX files) and HDF5 image tensors (ImageNet).
//
// Split (documented in docs/CONFIG.md): calibration and training draw from the official training
// files, evaluation uses the official test files, so held-out numbers never see calibration data.
#include <hdf5.h>
#include <zlib.h>

#include <cstring>

#include "hawq/dataset.h"
#include "hawq/errors.h"
#include "hawq/image_data.h"
#include "hawq/registry.h"

namespace hawq {

namespace {

std::vector<std::uint8_t> gunzip_file(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw UserError("cannot open " + path + " (is the dataset-fashion-mnist package installed?)");
  std::vector<std::uint8_t> out;
  std::uint8_t buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
  int err = 0;
  const char* msg = gzerror(f, &err);
  std::string emsg = msg ? msg : "";
  gzclose(f);
  if (n < 0 || (err != Z_OK && err != Z_STREAM_END)) throw FormatError(path + ": corrupt gzip stream: " + emsg);
  return out;
}

std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | p[3];
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  auto bytes = path.size() > 3 && path.substr(path.size() - 3) == ".gz" ? gunzip_file(path) : std::vector<std::uint8_t>();
  if (bytes.empty()) {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw UserError("cannot open IDX file " + path);
    std::uint8_t buf[1 << 16];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.insert(bytes.end(), buf, buf + n);
    std::fclose(f);
  }
  if (bytes.size() < 4) throw FormatError("IDX file " + path + ": truncated (no magic number)");
  if (bytes[0] != 0 || bytes[1] != 0) throw FormatError("IDX file " + path + ": bad magic number");
  if (bytes[2] != 0x08) throw FormatError("IDX file " + path + ": element type " + std::to_string(bytes[2]) + " is not unsigned byte (0x08)");
  const int ndim = bytes[3];
  if (ndim < 1 || ndim > 4) throw FormatError("IDX file " + path + ": " + std::to_string(ndim) + " dimensions, expected 1 to 4");
  if (bytes.size() < 4 + 4 * static_cast<std::size_t>(ndim)) throw FormatError("IDX file " + path + ": truncated header");
  IdxArray a;
  std::uint64_t total = 1;
  for (int i = 0; i < ndim; ++i) {
    a.dims.push_back(be32(&bytes[4 + 4 * i]));
    total *= a.dims.back();
  }
  const std::size_t off = 4 + 4 * ndim;
  if (bytes.size() - off != total)
    throw FormatError("IDX file " + path + ": expected " + std::to_string(total) + " data bytes, found " +
                      std::to_string(bytes.size() - off));
  a.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(off), bytes.end());
  return a;
}

namespace {

// Splits examples [0, n) into batches, in the given order.
std::vector<Batch> batched(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& order, std::int64_t bs) {
  std::vector<Batch> out;
  for (std::int64_t i = 0; i < order.size(0); i += bs) {
    auto idx = order.slice(0, i, std::min(order.size(0), i + bs));
    out.push_back({x.index_select(0, idx), y.index_select(0, idx)});
  }
  return out;
}

// Common behaviour of in-memory image datasets: seeded calibration draws, eval prefix, epochs.
class TensorImageDataset : public Dataset {
 public:
  std::vector<Batch> calibration(std::int64_t count, std::int64_t bs, std::uint64_t seed) override {
    auto gen = at::detail::createCPUGenerator(seed);
    auto perm = torch::randperm(train_x_.size(0), gen, torch::kLong).slice(0, 0, std::min(count, train_x_.size(0)));
    return batched(train_x_, train_y_, perm, bs);
  }
  std::vector<Batch> evaluation(std::int64_t limit, std::int64_t bs) override {
    std::int64_t n = limit > 0 ? std::min(limit, test_x_.size(0)) : test_x_.size(0);
    eval_count_ = n;
    return batched(test_x_, test_y_, torch::arange(n, torch::kLong), bs);
  }
  std::vector<Batch> training_epoch(std::int64_t bs, std::uint64_t seed) override {
    auto gen = at::detail::createCPUGenerator(seed);
    return batched(train_x_, train_y_, torch::randperm(train_x_.size(0), gen, torch::kLong), bs);
  }

 protected:
  torch::Tensor train_x_, train_y_, test_x_, test_y_;
  std::int64_t eval_count_ = 0;
};

class FashionMnist : public TensorImageDataset {
 public:
  explicit FashionMnist(const Params& p) {
    root_ = p.get_string("root", "/usr/share/datasets/fashion-mnist");
    load("train", train_x_, train_y_);
    load("t10k", test_x_, test_y_);
  }
  std::string describe() const override {
    return "fashion_mnist(" + root_ + "; train 60000, test " + std::to_string(test_x_.size(0)) + ")";
  }

 private:
  void load(const std::string& split, torch::Tensor& x, torch::Tensor& y) {
    auto img = read_idx(root_ + "/" + split + "-images-idx3-ubyte.gz");
    auto lab = read_idx(root_ + "/" + split + "-labels-idx1-ubyte.gz");
    if (img.dims.size() != 3 || lab.dims.size() != 1 || img.dims[0] != lab.dims[0])
      throw FormatError("Fashion-MNIST " + split + " files in " + root_ + " disagree on shape");
    const std::int64_t n = img.dims[0], h = img.dims[1], w = img.dims[2];
    x = torch::from_blob(img.data.data(), {n, 1, h, w}, torch::kUInt8).to(torch::kFloat).div_(255.0f);
    // Normalised with the training set's mean and standard deviation (0.2860, 0.3530).
    x.sub_(0.2860f).div_(0.3530f);
    y = torch::from_blob(lab.data.data(), {n}, torch::kUInt8).to(torch::kLong);
  }
  std::string root_;
};

// HDF5 image tensors: datasets `images` (N×C×H×W float32) and `labels` (N int64) in one file per
// split. scripts/prepare_imagenet.py writes this format.
class Hdf5Images : public TensorImageDataset {
 public:
  explicit Hdf5Images(const Params& p) {
    train_ = p.get_string("train", "");
    test_ = p.get_string("test", "");
    if (test_.empty()) throw ConfigError(p.where("test") + ": hdf5_images needs a `test:` file");
    read(test_, test_x_, test_y_);
    if (!train_.empty()) {
      read(train_, train_x_, train_y_);
    } else {  // calibration from the test file's second half when no train file is given (documented)
      auto n = test_x_.size(0);
      train_x_ = test_x_.slice(0, n / 2);
      train_y_ = test_y_.slice(0, n / 2);
      test_x_ = test_x_.slice(0, 0, n / 2);
      test_y_ = test_y_.slice(0, 0, n / 2);
    }
  }
  std::string describe() const override { return "hdf5_images(" + test_ + ")"; }

 private:
  static void read(const std::string& path, torch::Tensor& x, torch::Tensor& y) {
    auto arr = read_hdf5_images(path);
    x = torch::from_blob(arr.images.data(), arr.shape, torch::kFloat).clone();
    y = torch::from_blob(arr.labels.data(), {static_cast<std::int64_t>(arr.labels.size())}, torch::kLong).clone();
  }
  std::string train_, test_;
};

}  // namespace

Hdf5ImageArray read_hdf5_images(const std::string& path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) throw FormatError("cannot open HDF5 image file " + path);
  Hdf5ImageArray a;
  auto fail = [&](const std::string& m) {
    H5Fclose(f);
    throw FormatError("HDF5 image file " + path + ": " + m);
  };
  hid_t d = H5Dopen2(f, "images", H5P_DEFAULT);
  if (d < 0) fail("missing dataset 'images' (expected N×C×H×W float32)");
  hid_t s = H5Dget_space(d);
  int nd = H5Sget_simple_extent_ndims(s);
  if (nd != 4) {
    H5Sclose(s);
    H5Dclose(d);
    fail("'images' has " + std::to_string(nd) + " dimensions, expected 4 (N×C×H×W)");
  }
  hsize_t dims[4];
  H5Sget_simple_extent_dims(s, dims, nullptr);
  H5Sclose(s);
  std::size_t total = 1;
  for (int i = 0; i < 4; ++i) {
    a.shape.push_back(static_cast<std::int64_t>(dims[i]));
    total *= dims[i];
  }
  a.images.resize(total);
  herr_t rc = H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, a.images.data());
  H5Dclose(d);
  if (rc < 0) fail("cannot read 'images'");
  d = H5Dopen2(f, "labels", H5P_DEFAULT);
  if (d < 0) fail("missing dataset 'labels' (expected N int64)");
  s = H5Dget_space(d);
  hsize_t n = 0;
  if (H5Sget_simple_extent_ndims(s) != 1) {
    H5Sclose(s);
    H5Dclose(d);
    fail("'labels' must be one-dimensional");
  }
  H5Sget_simple_extent_dims(s, &n, nullptr);
  H5Sclose(s);
  if (n != dims[0]) {
    H5Dclose(d);
    fail("'labels' has " + std::to_string(n) + " entries but 'images' has " + std::to_string(dims[0]));
  }
  a.labels.resize(n);
  rc = H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, a.labels.data());
  H5Dclose(d);
  H5Fclose(f);
  if (rc < 0) throw FormatError("HDF5 image file " + path + ": cannot read 'labels'");
  return a;
}

HAWQ_REGISTER_DATASET("fashion_mnist", FashionMnist)
HAWQ_REGISTER_DATASET("hdf5_images", Hdf5Images)

}  // namespace hawq
