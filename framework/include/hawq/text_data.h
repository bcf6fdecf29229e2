// Text data for causal language models: SentencePiece tokenization in a child process, a token
// cache, and GPTQ's perplexity windows. Needs LibTorch (windows are Batches).
//
// Tokenization never happens in this process: Debian's libsentencepiece and LibTorch cannot share
// one (DESIGN.md §9). tokenize_text() runs the `hawq-tokenize` executable and caches its output in
// a file named by fingerprints of the text and of the tokenizer model, so every later run (and
// every MPI rank) just reads the ids.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "hawq/model.h"

namespace hawq {

// How a plain text file becomes GPTQ's list of rows (which are then joined with "\n\n").
enum class RowMode {
  kNonEmptyLines,  // each non-empty line is a row (default; scripts/prepare_kjv.sh writes one verse per line)
  kLines,          // every line is a row, empty lines included (a dump of a dataset's `text` column)
  kRaw,            // the whole file is the text as is (it was joined beforehand)
};
RowMode parse_row_mode(const std::string& s);  // "nonempty_lines" | "lines" | "raw"; ConfigError otherwise

// The text GPTQ tokenizes: the file's rows joined with "\n\n". A trailing "\r" of a line is dropped;
// the final newline of the file does not start an extra row.
std::string join_rows(const std::string& file_text, RowMode mode);

struct TokenizerOptions {
  std::string binary;     // hawq-tokenize executable; "" = find_tokenize_binary("")
  std::string cache_dir;  // token cache folder; "" = default_token_cache_dir()
};

// Locates hawq-tokenize: `hint` if given, else $HAWQ_TOKENIZE, else next to the running executable
// or one folder up (build/tests/.. = build/), else the first `hawq-tokenize` on PATH. Throws
// UserError saying how to build it when none is found.
std::string find_tokenize_binary(const std::string& hint);
// $HAWQ_CACHE_DIR/tokens, else $XDG_CACHE_HOME/hawq-bench/tokens, else ~/.cache/hawq-bench/tokens.
std::string default_token_cache_dir();

// Token ids of `text` under the SentencePiece model at `tokenizer_model` (BOS first when `bos`),
// the whole text encoded as one string. Cached under options.cache_dir in
// "<fingerprint(text)>-<fingerprint(tokenizer)>-<bytes>-b<bos>.ids"; an unreadable cache entry is
// recomputed. Throws UserError/FormatError naming the tokenizer or the failing command.
std::vector<std::int32_t> tokenize_text(const std::string& text, const std::string& tokenizer_model, bool bos,
                                        const TokenizerOptions& options = {});
// Decodes ids back to text (through hawq-tokenize --decode; no cache). For tests and inspection.
std::string detokenize(const std::vector<std::int32_t>& ids, const std::string& tokenizer_model,
                       const TokenizerOptions& options = {});

struct TokenizerInfo {
  std::int64_t vocab_size = 0;
  std::int64_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;
};
TokenizerInfo tokenizer_info(const std::string& tokenizer_model, const TokenizerOptions& options = {});

// The ids file hawq-tokenize writes: "HAWQTOK1", uint64 count, count int32 (little-endian).
std::vector<std::int32_t> read_ids_file(const std::string& path);
void write_ids_file(const std::string& path, const std::vector<std::int32_t>& ids);

// One language-modelling example from a window w of `seqlen` tokens: input = w, target[t] = w[t+1]
// for t < seqlen-1 and -100 at the last position, so each window predicts seqlen-1 tokens, exactly
// the shift_logits/shift_labels pairs GPTQ's perplexity loop scores.
Batch window_batch(const std::vector<torch::Tensor>& windows);

// GPTQ's evaluation windows: ids split into floor(n/seqlen) non-overlapping windows (tail dropped),
// the first `limit` of them when limit > 0, in batches of `batch_size` windows.
std::vector<Batch> perplexity_windows(const torch::Tensor& ids, std::int64_t seqlen, std::int64_t limit,
                                      std::int64_t batch_size);
// GPTQ's calibration draw: `count` windows starting at uniform offsets in [0, n-seqlen-1], seeded.
std::vector<Batch> random_windows(const torch::Tensor& ids, std::int64_t seqlen, std::int64_t count,
                                  std::int64_t batch_size, std::uint64_t seed);
// One training epoch: non-overlapping windows starting at a seed-dependent offset in [0, seqlen)
// (so successive epochs cut the text differently), shuffled by the seed.
std::vector<Batch> epoch_windows(const torch::Tensor& ids, std::int64_t seqlen, std::int64_t batch_size,
                                 std::uint64_t seed);

}  // namespace hawq
