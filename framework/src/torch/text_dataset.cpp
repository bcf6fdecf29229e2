// `text` dataset: plain text files tokenized by SentencePiece (in the hawq-tokenize child process),
// cut into windows the way GPTQ's perplexity and calibration code cuts WikiText-2 and C4.
//
// Protocol (docs/LLAMA.md): the file's rows are joined with "\n\n", tokenized once with BOS first;
// evaluation uses floor(n/seqlen) non-overlapping windows (tail dropped) and scores seqlen-1
// next-token predictions per window; calibration draws `count` windows at seeded random offsets of
// the training text. Model::evaluate then gives exp(total NLL / predicted tokens), which equals
// GPTQ's exp(Σ_w mean_w·seqlen / (n_w·seqlen)) because every window predicts the same number of tokens.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "hawq/dataset.h"
#include "hawq/errors.h"
#include "hawq/fs.h"
#include "hawq/registry.h"
#include "hawq/text_data.h"

namespace hawq {

namespace {

constexpr char kIdsMagic[8] = {'H', 'A', 'W', 'Q', 'T', 'O', 'K', '1'};

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

bool is_executable(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

std::string self_exe_dir() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  buf[n] = '\0';
  return dir_name(buf);
}

// Runs a command; on failure the error includes what the command printed on stderr.
std::string run_with_stderr(const std::string& cmd, const std::string& what, const std::string& scratch_dir) {
  const std::string err_path = scratch_dir + "/hawq-tokenize.stderr." + std::to_string(::getpid());
  try {
    auto out = run_command(cmd + " 2>" + shell_quote(err_path), what);
    std::remove(err_path.c_str());
    return out;
  } catch (const UserError& e) {
    std::string err;
    if (file_exists(err_path)) {
      try {
        err = read_file(err_path);
      } catch (const UserError&) {
      }
      std::remove(err_path.c_str());
    }
    while (!err.empty() && (err.back() == '\n' || err.back() == '\r')) err.pop_back();
    throw UserError(std::string(e.what()) + (err.empty() ? "" : ": " + err));
  }
}

std::string scratch_dir() {
  std::error_code ec;
  auto t = std::filesystem::temp_directory_path(ec);
  return ec ? std::string("/tmp") : t.string();
}

void write_plain(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw UserError("cannot write " + path + ": " + std::strerror(errno));
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) throw UserError("write to " + path + " failed");
}

}  // namespace

RowMode parse_row_mode(const std::string& s) {
  if (s == "nonempty_lines") return RowMode::kNonEmptyLines;
  if (s == "lines") return RowMode::kLines;
  if (s == "raw") return RowMode::kRaw;
  throw ConfigError("unknown row mode '" + s + "' (expected nonempty_lines, lines or raw)");
}

std::string join_rows(const std::string& file_text, RowMode mode) {
  if (mode == RowMode::kRaw) return file_text;
  std::string out;
  out.reserve(file_text.size() + file_text.size() / 16);
  bool first = true;
  std::size_t pos = 0;
  while (pos < file_text.size()) {
    std::size_t nl = file_text.find('\n', pos);
    const std::size_t end = nl == std::string::npos ? file_text.size() : nl;
    std::size_t len = end - pos;
    if (len > 0 && file_text[pos + len - 1] == '\r') --len;
    if (len > 0 || mode == RowMode::kLines) {
      if (!first) out += "\n\n";
      out.append(file_text, pos, len);
      first = false;
    }
    pos = end + 1;
  }
  return out;
}

std::string find_tokenize_binary(const std::string& hint) {
  if (!hint.empty()) {
    if (!is_executable(hint)) throw UserError("tokenizer binary " + hint + " is not an executable file");
    return hint;
  }
  if (const char* env = std::getenv("HAWQ_TOKENIZE"); env && *env) {
    if (!is_executable(env)) throw UserError("$HAWQ_TOKENIZE=" + std::string(env) + " is not an executable file");
    return env;
  }
  const std::string here = self_exe_dir();
  if (!here.empty()) {
    for (const std::string& cand : {here + "/hawq-tokenize", here + "/../hawq-tokenize"})
      if (is_executable(cand)) return cand;
  }
  if (const char* path = std::getenv("PATH")) {
    std::stringstream ss(path);
    std::string dir;
    while (std::getline(ss, dir, ':'))
      if (!dir.empty() && is_executable(dir + "/hawq-tokenize")) return dir + "/hawq-tokenize";
  }
  throw UserError(
      "cannot find the hawq-tokenize executable (looked at $HAWQ_TOKENIZE, next to this program and on PATH); "
      "build it with `ninja hawq-tokenize` (needs libsentencepiece-dev) or set HAWQ_TOKENIZE");
}

std::string default_token_cache_dir() {
  if (const char* d = std::getenv("HAWQ_CACHE_DIR"); d && *d) return std::string(d) + "/tokens";
  if (const char* d = std::getenv("XDG_CACHE_HOME"); d && *d) return std::string(d) + "/hawq-bench/tokens";
  if (const char* d = std::getenv("HOME"); d && *d) return std::string(d) + "/.cache/hawq-bench/tokens";
  return scratch_dir() + "/hawq-bench-tokens";
}

std::vector<std::int32_t> read_ids_file(const std::string& path) {
  const std::string bytes = read_file(path);
  if (bytes.size() < 16 || std::memcmp(bytes.data(), kIdsMagic, sizeof kIdsMagic) != 0)
    throw FormatError(path + ": not a token ids file (expected magic HAWQTOK1)");
  std::uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
  if (n > (bytes.size() - 16) / 4 || bytes.size() != 16 + 4 * n)
    throw FormatError(path + ": token ids file is truncated or has trailing bytes (header says " + std::to_string(n) +
                      " ids, file has " + std::to_string(bytes.size()) + " bytes)");
  std::vector<std::int32_t> ids(n);
  for (std::uint64_t k = 0; k < n; ++k) {
    std::uint32_t u = 0;
    for (int i = 0; i < 4; ++i)
      u |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[16 + 4 * k + i])) << (8 * i);
    ids[k] = static_cast<std::int32_t>(u);
  }
  return ids;
}

void write_ids_file(const std::string& path, const std::vector<std::int32_t>& ids) {
  std::string s(kIdsMagic, sizeof kIdsMagic);
  const std::uint64_t n = ids.size();
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  for (auto id : ids) {
    const auto u = static_cast<std::uint32_t>(id);
    for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((u >> (8 * i)) & 0xff));
  }
  write_file_atomic(path, s);
}

namespace {

std::string tokenizer_fingerprint(const std::string& tokenizer_model) {
  if (!file_exists(tokenizer_model))
    throw UserError("SentencePiece tokenizer model not found: " + tokenizer_model +
                    " (the KJV one is made by scripts/train_tokenizer.sh)");
  return fingerprint(read_file(tokenizer_model));
}

}  // namespace

std::vector<std::int32_t> tokenize_text(const std::string& text, const std::string& tokenizer_model, bool bos,
                                        const TokenizerOptions& options) {
  const std::string tok_fp = tokenizer_fingerprint(tokenizer_model);
  const std::string key = fingerprint(text) + "-" + tok_fp + "-" + std::to_string(text.size()) + "-b" + (bos ? "1" : "0");
  std::string dir = options.cache_dir.empty() ? default_token_cache_dir() : options.cache_dir;
  bool cached = true;
  try {
    make_dirs(dir);
  } catch (const UserError&) {
    cached = false;  // read-only home: tokenize into the scratch folder and drop the result afterwards
    dir = scratch_dir();
  }
  const std::string ids_path = dir + "/" + key + (cached ? "" : "." + std::to_string(::getpid())) + ".ids";
  if (cached && file_exists(ids_path)) {
    try {
      return read_ids_file(ids_path);
    } catch (const UserError&) {
      // A damaged cache entry is recomputed below (and replaced atomically).
    }
  }
  const std::string binary = find_tokenize_binary(options.binary);
  const std::string text_path = dir + "/" + key + ".txt.tmp." + std::to_string(::getpid());
  write_plain(text_path, text);
  const std::string cmd = shell_quote(binary) + " --model " + shell_quote(tokenizer_model) + " --input " +
                          shell_quote(text_path) + " --output " + shell_quote(ids_path) + (bos ? " --bos" : "");
  try {
    run_with_stderr(cmd, "tokenizing with " + tokenizer_model, dir);
  } catch (...) {
    std::remove(text_path.c_str());
    throw;
  }
  std::remove(text_path.c_str());
  auto ids = read_ids_file(ids_path);
  if (!cached) std::remove(ids_path.c_str());
  return ids;
}

std::string detokenize(const std::vector<std::int32_t>& ids, const std::string& tokenizer_model,
                       const TokenizerOptions& options) {
  tokenizer_fingerprint(tokenizer_model);  // existence check with the helpful message
  const std::string binary = find_tokenize_binary(options.binary);
  const std::string dir = scratch_dir();
  const std::string base = dir + "/hawq-detok." + std::to_string(::getpid()) + "." + fingerprint(tokenizer_model);
  write_ids_file(base + ".ids", ids);
  const std::string cmd = shell_quote(binary) + " --model " + shell_quote(tokenizer_model) + " --decode --input " +
                          shell_quote(base + ".ids") + " --output " + shell_quote(base + ".txt");
  std::string text;
  try {
    run_with_stderr(cmd, "decoding with " + tokenizer_model, dir);
    text = read_file(base + ".txt");
  } catch (...) {
    std::remove((base + ".ids").c_str());
    std::remove((base + ".txt").c_str());
    throw;
  }
  std::remove((base + ".ids").c_str());
  std::remove((base + ".txt").c_str());
  return text;
}

TokenizerInfo tokenizer_info(const std::string& tokenizer_model, const TokenizerOptions& options) {
  tokenizer_fingerprint(tokenizer_model);
  const std::string binary = find_tokenize_binary(options.binary);
  const std::string out = run_with_stderr(shell_quote(binary) + " --model " + shell_quote(tokenizer_model) + " --info",
                                          "reading tokenizer " + tokenizer_model, scratch_dir());
  TokenizerInfo info;
  try {
    auto j = nlohmann::json::parse(out);
    info.vocab_size = j.at("vocab_size").get<std::int64_t>();
    info.bos_id = j.at("bos_id").get<std::int64_t>();
    info.eos_id = j.at("eos_id").get<std::int64_t>();
    info.unk_id = j.at("unk_id").get<std::int64_t>();
    info.pad_id = j.at("pad_id").get<std::int64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw FormatError("hawq-tokenize --info printed unexpected output for " + tokenizer_model + ": " + e.what());
  }
  return info;
}

Batch window_batch(const std::vector<torch::Tensor>& windows) {
  HAWQ_CHECK(!windows.empty(), "window_batch: no windows");
  auto input = torch::stack(windows).to(torch::kLong);
  auto target = torch::full_like(input, -100);
  const std::int64_t T = input.size(1);
  if (T > 1) target.slice(1, 0, T - 1).copy_(input.slice(1, 1, T));
  return {input, target};
}

namespace {

std::vector<Batch> batches_of(const torch::Tensor& ids, const std::vector<std::int64_t>& starts, std::int64_t seqlen,
                              std::int64_t batch_size) {
  HAWQ_CHECK(batch_size > 0, "batch size must be positive");
  std::vector<Batch> out;
  for (std::size_t i = 0; i < starts.size(); i += static_cast<std::size_t>(batch_size)) {
    std::vector<torch::Tensor> w;
    for (std::size_t j = i; j < std::min(starts.size(), i + static_cast<std::size_t>(batch_size)); ++j)
      w.push_back(ids.slice(0, starts[j], starts[j] + seqlen));
    out.push_back(window_batch(w));
  }
  return out;
}

}  // namespace

std::vector<Batch> perplexity_windows(const torch::Tensor& ids, std::int64_t seqlen, std::int64_t limit,
                                      std::int64_t batch_size) {
  HAWQ_CHECK(seqlen >= 2, "seqlen must be at least 2");
  std::int64_t n = ids.size(0) / seqlen;
  if (limit > 0) n = std::min(n, limit);
  std::vector<std::int64_t> starts;
  for (std::int64_t i = 0; i < n; ++i) starts.push_back(i * seqlen);
  return batches_of(ids, starts, seqlen, batch_size);
}

std::vector<Batch> random_windows(const torch::Tensor& ids, std::int64_t seqlen, std::int64_t count,
                                  std::int64_t batch_size, std::uint64_t seed) {
  HAWQ_CHECK(seqlen >= 2, "seqlen must be at least 2");
  const std::int64_t n = ids.size(0);
  if (n <= seqlen)
    throw UserError("the training text has " + std::to_string(n) + " tokens, too few for windows of " +
                    std::to_string(seqlen));
  auto gen = at::detail::createCPUGenerator(seed);
  // GPTQ: i = random.randint(0, n - seqlen - 1) (both ends inclusive).
  auto s = torch::randint(0, n - seqlen, {count}, gen, torch::TensorOptions().dtype(torch::kLong));
  std::vector<std::int64_t> starts(s.data_ptr<std::int64_t>(), s.data_ptr<std::int64_t>() + count);
  return batches_of(ids, starts, seqlen, batch_size);
}

std::vector<Batch> epoch_windows(const torch::Tensor& ids, std::int64_t seqlen, std::int64_t batch_size,
                                 std::uint64_t seed) {
  HAWQ_CHECK(seqlen >= 2, "seqlen must be at least 2");
  auto gen = at::detail::createCPUGenerator(seed);
  const std::int64_t n = ids.size(0);
  std::int64_t offset = torch::randint(0, seqlen, {1}, gen, torch::TensorOptions().dtype(torch::kLong)).item<std::int64_t>();
  if (n - offset < seqlen) offset = 0;
  const std::int64_t count = (n - offset) / seqlen;
  if (count == 0)
    throw UserError("the training text has " + std::to_string(n) + " tokens, too few for windows of " +
                    std::to_string(seqlen));
  auto perm = torch::randperm(count, gen, torch::TensorOptions().dtype(torch::kLong));
  std::vector<std::int64_t> starts;
  for (std::int64_t i = 0; i < count; ++i) starts.push_back(offset + perm[i].item<std::int64_t>() * seqlen);
  return batches_of(ids, starts, seqlen, batch_size);
}

namespace {

class TextDataset : public Dataset {
 public:
  explicit TextDataset(const Params& p) {
    train_ = p.get_string("train", "");
    test_ = p.get_string("test", "");
    tokenizer_ = p.get_string("tokenizer", "");
    seqlen_ = p.get_int("seqlen", 2048);
    bos_ = p.get_bool("bos", true);
    rows_ = parse_row_mode(p.get_choice("rows", "nonempty_lines", {"nonempty_lines", "lines", "raw"}));
    options_.binary = p.get_string("tokenizer_binary", "");
    options_.cache_dir = p.get_string("cache_dir", "");
    if (tokenizer_.empty()) throw ConfigError(p.where("tokenizer") + ": the text dataset needs `tokenizer:` (a SentencePiece tokenizer.model)");
    if (train_.empty() && test_.empty()) throw ConfigError(p.where() + ": the text dataset needs `train:` and/or `test:` text files");
    if (seqlen_ < 2) throw ConfigError(p.where("seqlen") + ": seqlen must be at least 2");
    // Missing files are reported now, before any work starts; tokenization waits until first use.
    const std::string hint = " (the KJV split is written by scripts/prepare_kjv.sh)";
    for (const auto& [key, path] : {std::pair<std::string, std::string>{"train", train_}, {"test", test_}})
      if (!path.empty() && !file_exists(path)) throw UserError(p.where(key) + ": text file not found: " + path + hint);
    if (!file_exists(tokenizer_))
      throw UserError(p.where("tokenizer") + ": tokenizer model not found: " + tokenizer_ +
                      " (the KJV tokenizer is made by scripts/train_tokenizer.sh)");
  }

  std::string describe() const override {
    return "text(test " + (test_.empty() ? std::string("-") : test_) + ", train " + (train_.empty() ? "-" : train_) +
           ", seqlen " + std::to_string(seqlen_) + ")";
  }

  std::vector<Batch> calibration(std::int64_t count, std::int64_t bs, std::uint64_t seed) override {
    return random_windows(ids("train", train_, train_ids_), seqlen_, count, bs, seed);
  }

  std::vector<Batch> evaluation(std::int64_t limit, std::int64_t bs) override {
    const auto& t = ids("test", test_, test_ids_);
    if (t.size(0) < seqlen_)
      throw UserError("test text " + test_ + " has " + std::to_string(t.size(0)) + " tokens, fewer than seqlen " +
                      std::to_string(seqlen_));
    return perplexity_windows(t, seqlen_, limit, bs);
  }

  std::vector<Batch> training_epoch(std::int64_t bs, std::uint64_t seed) override {
    return epoch_windows(ids("train", train_, train_ids_), seqlen_, bs, seed);
  }

 private:
  const torch::Tensor& ids(const std::string& split, const std::string& path, torch::Tensor& slot) {
    if (slot.defined()) return slot;
    if (path.empty()) throw ConfigError("text dataset: no `" + split + ":` file was given, but the " + split + " split is needed");
    auto v = tokenize_text(join_rows(read_file(path), rows_), tokenizer_, bos_, options_);
    slot = torch::tensor(std::vector<std::int64_t>(v.begin(), v.end()), torch::kLong);
    return slot;
  }

  std::string train_, test_, tokenizer_;
  std::int64_t seqlen_ = 2048;
  bool bos_ = true;
  RowMode rows_ = RowMode::kNonEmptyLines;
  TokenizerOptions options_;
  torch::Tensor train_ids_, test_ids_;
};

}  // namespace

HAWQ_REGISTER_DATASET("text", TextDataset)

}  // namespace hawq
