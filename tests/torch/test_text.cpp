// Text data: row joining, GPTQ's perplexity windows and their hand-checked perplexity, the
// hawq-tokenize round trip on the shipped tokenizer, the token cache, and the `text` dataset.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "hawq/dataset.h"
#include "hawq/errors.h"
#include "hawq/fs.h"
#include "hawq/model.h"
#include "hawq/params.h"
#include "hawq/registry.h"
#include "hawq/text_data.h"

namespace {

namespace fsys = std::filesystem;
using hawq::Batch;

const std::string kTokenizer = std::string(HAWQ_SOURCE_DIR) + "/assets/models/llama-kjv-tiny/tokenizer.model";

struct TempDir {
  explicit TempDir(const std::string& tag) {
    static std::mt19937_64 rng(std::random_device{}());
    path = (fsys::temp_directory_path() / ("hawq-" + tag + "-" + std::to_string(rng()))).string();
    fsys::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fsys::remove_all(path, ec);
  }
  std::string path;
};

// The reason a tokenizer test cannot run here, or "" when it can.
std::string tokenizer_unavailable() {
  if (!hawq::file_exists(kTokenizer)) return "no tokenizer at " + kTokenizer + " (run scripts/train_tokenizer.sh)";
  try {
    hawq::find_tokenize_binary("");
  } catch (const hawq::UserError& e) {
    return e.what();
  }
  return "";
}

TEST(TextRows, JoinLikeGptq) {
  const std::string file = "first line\r\n\nsecond\n  \nthird\n";
  EXPECT_EQ(hawq::join_rows(file, hawq::RowMode::kNonEmptyLines), "first line\n\nsecond\n\n  \n\nthird");
  EXPECT_EQ(hawq::join_rows(file, hawq::RowMode::kLines), "first line\n\n\n\nsecond\n\n  \n\nthird");
  EXPECT_EQ(hawq::join_rows(file, hawq::RowMode::kRaw), file);
  EXPECT_EQ(hawq::join_rows("no newline at end", hawq::RowMode::kNonEmptyLines), "no newline at end");
  EXPECT_THROW(hawq::parse_row_mode("paragraphs"), hawq::ConfigError);
}

TEST(TextWindows, NonOverlappingTailDroppedShiftedTargets) {
  auto ids = torch::arange(23, torch::kLong);
  auto batches = hawq::perplexity_windows(ids, 5, 0, 3);  // 4 windows, tail of 3 dropped
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_EQ(batches[0].input.sizes(), (std::vector<std::int64_t>{3, 5}));
  EXPECT_EQ(batches[1].input.sizes(), (std::vector<std::int64_t>{1, 5}));
  EXPECT_TRUE(torch::equal(batches[1].input[0], torch::arange(15, 20, torch::kLong)));
  // target[t] = input[t+1]; the last position predicts nothing: seqlen-1 predictions per window.
  auto expect = torch::tensor({6, 7, 8, 9, -100}, torch::kLong);
  EXPECT_TRUE(torch::equal(batches[0].target[1], expect));
  EXPECT_EQ(batches[0].target.ne(-100).sum().item<std::int64_t>(), 3 * 4);
  EXPECT_EQ(hawq::perplexity_windows(ids, 5, 2, 8)[0].input.size(0), 2);

  auto c1 = hawq::random_windows(ids, 5, 7, 4, 42), c2 = hawq::random_windows(ids, 5, 7, 4, 42);
  ASSERT_EQ(c1.size(), 2u);
  EXPECT_TRUE(torch::equal(c1[0].input, c2[0].input));
  for (const auto& b : c1)
    for (std::int64_t r = 0; r < b.input.size(0); ++r) {
      const auto s = b.input[r][0].item<std::int64_t>();
      EXPECT_LE(s, 23 - 5 - 1);  // GPTQ: randint(0, n - seqlen - 1)
      EXPECT_TRUE(torch::equal(b.input[r], torch::arange(s, s + 5, torch::kLong)));
    }

  auto e = hawq::epoch_windows(ids, 5, 2, 3);
  std::int64_t windows = 0;
  for (const auto& b : e) windows += b.input.size(0);
  EXPECT_GE(windows, 3);
  EXPECT_LE(windows, 4);
}

// A bigram model with a fixed probability table: p(next | current). Hand-checkable perplexity.
class BigramModel : public hawq::Model {
 public:
  explicit BigramModel(torch::Tensor probs) : probs_(std::move(probs)) { dummy_ = torch::nn::Linear(1, 1); }
  std::string family() const override { return "bigram"; }
  torch::nn::Module& module() override { return *dummy_; }
  std::vector<hawq::QuantWeight> quantizable() override { return {}; }
  torch::Tensor logits(const Batch& b) override { return probs_.log().index_select(0, b.input.reshape({-1})); }
  torch::Tensor labels(const Batch& b) const override { return b.target.reshape({-1}); }
  std::string config_json() const override { return "{}"; }
  std::string metric_name() const override { return "ppl"; }

 private:
  torch::Tensor probs_;
  torch::nn::Linear dummy_{nullptr};
};

TEST(TextPerplexity, HandCheckedBigramMatchesGptqFormula) {
  // Vocabulary {0,1,2,3}. p(.|0) = (0, 1/2, 1/4, 1/4), p(.|1) = (1/4, 0, 1/2, 1/4),
  // p(.|2) = (1/8, 1/8, 1/4, 1/2), p(.|3) = uniform.
  auto P = torch::tensor({0.0, 0.5, 0.25, 0.25, 0.25, 0.0, 0.5, 0.25, 0.125, 0.125, 0.25, 0.5, 0.25, 0.25, 0.25, 0.25},
                         torch::kDouble)
               .view({4, 4})
               .clamp_min(1e-300)
               .to(torch::kFloat);
  BigramModel m(P);
  // Tokens 0 1 2 3 | 0 2 3 1 | 2 : seqlen 4 -> two windows, token "2" at the end dropped.
  auto ids = torch::tensor({0, 1, 2, 3, 0, 2, 3, 1, 2}, torch::kLong);
  auto batches = hawq::perplexity_windows(ids, 4, 0, 1);
  ASSERT_EQ(batches.size(), 2u);
  // Window 1 predicts 0→1 (1/2), 1→2 (1/2), 2→3 (1/2); window 2 predicts 0→2 (1/4), 2→3 (1/2), 3→1 (1/4).
  // Total NLL = 4·ln2 + 2·ln4 = 8·ln2 over 6 predictions: PPL = exp(8 ln2 / 6) = 2^(4/3).
  const double by_hand = std::pow(2.0, 4.0 / 3.0);
  EXPECT_NEAR(m.evaluate(batches), by_hand, 1e-6);
  // GPTQ: nll_w = mean NLL of window w × seqlen; PPL = exp(Σ nll_w / (n_w × seqlen)).
  const double w1 = 3 * std::log(2.0) / 3, w2 = (std::log(4.0) + std::log(2.0) + std::log(4.0)) / 3;
  const double gptq = std::exp((w1 * 4 + w2 * 4) / (2 * 4));
  EXPECT_NEAR(gptq, by_hand, 1e-12);
  // Batching does not change the number.
  EXPECT_NEAR(m.evaluate(hawq::perplexity_windows(ids, 4, 0, 2)), by_hand, 1e-6);
}

TEST(TextIdsFile, RoundTripAndCorruption) {
  TempDir dir("ids");
  const std::string path = dir.path + "/x.ids";
  std::vector<std::int32_t> ids = {1, 0, 3999, 17, 2};
  hawq::write_ids_file(path, ids);
  EXPECT_EQ(hawq::read_ids_file(path), ids);
  auto bytes = hawq::read_file(path);
  std::ofstream(path, std::ios::binary) << bytes.substr(0, bytes.size() - 2);
  EXPECT_THROW(hawq::read_ids_file(path), hawq::FormatError);
  std::ofstream(path, std::ios::binary) << "not ids at all, definitely";
  EXPECT_THROW(hawq::read_ids_file(path), hawq::FormatError);
}

TEST(Tokenizer, RoundTripThroughSubprocess) {
  if (auto why = tokenizer_unavailable(); !why.empty()) GTEST_SKIP() << why;
  TempDir cache("tokcache");
  hawq::TokenizerOptions opt;
  opt.cache_dir = cache.path;
  const std::string text =
      "In the beginning God created the heaven and the earth.\n\nAnd the earth was without form, and void; 1234 ü€";
  auto ids = hawq::tokenize_text(text, kTokenizer, true, opt);
  ASSERT_GT(ids.size(), 10u);
  auto info = hawq::tokenizer_info(kTokenizer, opt);
  EXPECT_EQ(info.bos_id, 1);
  EXPECT_EQ(info.eos_id, 2);
  EXPECT_EQ(info.unk_id, 0);
  EXPECT_EQ(info.pad_id, -1);
  EXPECT_GE(info.vocab_size, 2000);
  EXPECT_LE(info.vocab_size, 4096);
  EXPECT_EQ(ids[0], info.bos_id);
  for (auto id : ids) {
    EXPECT_GE(id, 0);
    EXPECT_LT(id, info.vocab_size);
    EXPECT_NE(id, info.unk_id) << "byte fallback should make every character encodable";
  }
  EXPECT_EQ(hawq::detokenize(ids, kTokenizer, opt), text);
  // Without BOS: the same ids minus the first.
  auto plain = hawq::tokenize_text(text, kTokenizer, false, opt);
  EXPECT_EQ(std::vector<std::int32_t>(ids.begin() + 1, ids.end()), plain);

  // Cached: one file per (text, tokenizer, bos); a damaged entry is recomputed.
  std::vector<std::string> entries;
  for (const auto& e : fsys::directory_iterator(cache.path)) entries.push_back(e.path().string());
  ASSERT_EQ(entries.size(), 2u);
  for (const auto& e : entries) std::ofstream(e, std::ios::binary) << "garbage";
  EXPECT_EQ(hawq::tokenize_text(text, kTokenizer, true, opt), ids);
  // Served from the cache even when the tokenizer binary cannot run.
  opt.binary = "/bin/false";
  EXPECT_EQ(hawq::tokenize_text(text, kTokenizer, true, opt), ids);
  EXPECT_THROW(hawq::tokenize_text(text + "!", kTokenizer, true, opt), hawq::UserError);
}

TEST(Tokenizer, MatchesDebianSpmEncode) {
  if (auto why = tokenizer_unavailable(); !why.empty()) GTEST_SKIP() << why;
  if (!hawq::file_exists("/usr/bin/spm_encode")) GTEST_SKIP() << "spm_encode (Debian sentencepiece) is not installed";
  TempDir dir("spm");
  const std::string line = "Then Peter said, Silver and gold have I none; but such as I have give I thee: 1611.";
  std::ofstream(dir.path + "/in.txt") << line << "\n";
  const std::string out = hawq::run_command("/usr/bin/spm_encode --model '" + kTokenizer + "' --output_format=id < '" +
                                                dir.path + "/in.txt'",
                                            "spm_encode");
  std::vector<std::int32_t> want;
  std::istringstream ss(out);
  for (std::int32_t id; ss >> id;) want.push_back(id);
  hawq::TokenizerOptions opt;
  opt.cache_dir = dir.path;
  EXPECT_EQ(hawq::tokenize_text(line, kTokenizer, false, opt), want);
}

TEST(Tokenizer, SentencePieceStaysOutOfThisProcess) {
  if (auto why = tokenizer_unavailable(); !why.empty()) GTEST_SKIP() << why;
  TempDir cache("tokcache");
  hawq::TokenizerOptions opt;
  opt.cache_dir = cache.path;
  hawq::tokenize_text("isolation check", kTokenizer, true, opt);
  const std::string maps = hawq::read_file("/proc/self/maps");
  EXPECT_EQ(maps.find("libsentencepiece"), std::string::npos);
  EXPECT_NE(maps.find("libtorch"), std::string::npos);
}

TEST(Tokenizer, ClearErrors) {
  hawq::TokenizerOptions opt;
  try {
    hawq::tokenize_text("x", "/nonexistent/tokenizer.model", true, opt);
    FAIL() << "expected an error";
  } catch (const hawq::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/tokenizer.model"), std::string::npos);
  }
  if (auto why = tokenizer_unavailable(); !why.empty()) GTEST_SKIP() << why;
  TempDir dir("badtok");
  const std::string bad = dir.path + "/tokenizer.model";
  std::ofstream(bad) << "this is not a sentencepiece model";
  opt.cache_dir = dir.path;
  try {
    hawq::tokenize_text("x", bad, true, opt);
    FAIL() << "expected an error";
  } catch (const hawq::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot load SentencePiece model"), std::string::npos) << e.what();
  }
}

TEST(TextDataset, WindowsOverTokenizedFiles) {
  if (auto why = tokenizer_unavailable(); !why.empty()) GTEST_SKIP() << why;
  TempDir dir("textds");
  {
    std::ofstream tr(dir.path + "/train.txt"), te(dir.path + "/test.txt");
    for (int i = 0; i < 200; ++i) tr << "And the LORD spake unto Moses, saying, Speak unto the children of Israel " << i << ".\n";
    for (int i = 0; i < 40; ++i) te << "Blessed are the meek: for they shall inherit the earth " << i << ".\n\n";
  }
  const std::string yaml = "train: " + dir.path + "/train.txt\ntest: " + dir.path + "/test.txt\ntokenizer: " + kTokenizer +
                           "\nseqlen: 32\ncache_dir: " + dir.path + "/cache\n";
  auto ds = hawq::Registry<hawq::Dataset>::instance().create("text", hawq::Params::from_yaml(yaml));
  hawq::TokenizerOptions opt;
  opt.cache_dir = dir.path + "/cache";
  auto test_ids = hawq::tokenize_text(hawq::join_rows(hawq::read_file(dir.path + "/test.txt"), hawq::RowMode::kNonEmptyLines),
                                      kTokenizer, true, opt);
  auto eval = ds->evaluation(0, 4);
  std::int64_t windows = 0;
  for (const auto& b : eval) windows += b.input.size(0);
  EXPECT_EQ(windows, static_cast<std::int64_t>(test_ids.size()) / 32);
  EXPECT_EQ(eval[0].input[0][0].item<std::int64_t>(), 1);  // BOS first
  EXPECT_EQ(eval[0].input[0][5].item<std::int64_t>(), test_ids[5]);
  EXPECT_EQ(ds->evaluation(3, 2).size(), 2u);
  auto c1 = ds->calibration(6, 4, 7), c2 = ds->calibration(6, 4, 7), c3 = ds->calibration(6, 4, 8);
  ASSERT_EQ(c1.size(), 2u);
  EXPECT_TRUE(torch::equal(c1[0].input, c2[0].input));
  EXPECT_FALSE(torch::equal(c1[0].input, c3[0].input));
  EXPECT_EQ(c1[0].input.size(1), 32);
  auto epoch = ds->training_epoch(8, 1);
  EXPECT_FALSE(epoch.empty());
  EXPECT_NE(ds->describe().find("seqlen 32"), std::string::npos);

  // Missing files and bad settings are reported at construction.
  EXPECT_THROW(hawq::Registry<hawq::Dataset>::instance().create(
                   "text", hawq::Params::from_yaml("test: /nonexistent.txt\ntokenizer: " + kTokenizer + "\n")),
               hawq::UserError);
  EXPECT_THROW(hawq::Registry<hawq::Dataset>::instance().create(
                   "text", hawq::Params::from_yaml(yaml + "rows: paragraphs\n")),
               hawq::ConfigError);
  EXPECT_THROW(hawq::Registry<hawq::Dataset>::instance().create("text", hawq::Params::from_yaml(yaml + "seqln: 8\n")),
               hawq::ConfigError);
}

}  // namespace
