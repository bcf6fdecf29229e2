// hawq-tokenize: SentencePiece encode/decode in its own process.
//
// Debian's libsentencepiece carries its own protobuf-lite, and Debian's LibTorch links a different
// libprotobuf; a process that loads both crashes at start-up (DESIGN.md §9). So hawq-bench never
// links SentencePiece: it writes the text to a file, runs this program, and reads the token ids
// back (framework/src/torch/text_dataset.cpp caches them by text and tokenizer fingerprints).
// This file must stay free of LibTorch and of the hawq libraries; it links only sentencepiece.
//
// Usage:
//   hawq-tokenize --model tokenizer.model --input text.txt --output ids.bin [--bos] [--eos]
//       Encodes the whole input file as ONE string (exactly as Hugging Face's LlamaTokenizer does
//       with the joined evaluation text) and writes the ids; --bos puts the model's BOS id first.
//   hawq-tokenize --model tokenizer.model --decode --input ids.bin --output text.txt
//       Decodes an ids file back to text (BOS/EOS ids are dropped by SentencePiece).
//   hawq-tokenize --model tokenizer.model --info
//       Prints {"vocab_size": N, "bos_id": .., "eos_id": .., "unk_id": .., "pad_id": ..} on stdout.
//
// ids file format (little-endian), mirrored by hawq/text_data.h:
//   8 bytes  magic "HAWQTOK1"
//   8 bytes  uint64 number of ids n
//   4n bytes int32 ids
// Output files are written to a temporary name and renamed, so readers never see a partial file.
// Exit status: 0 success, 2 usage or input errors (message on stderr).
#include <sentencepiece_processor.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace {

constexpr char kMagic[8] = {'H', 'A', 'W', 'Q', 'T', 'O', 'K', '1'};

[[noreturn]] void fail(const std::string& msg) {
  std::cerr << "hawq-tokenize: " << msg << "\n";
  std::exit(2);
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_atomic(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail("cannot write " + tmp);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) fail("write to " + tmp + " failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    fail("cannot rename " + tmp + " to " + path);
  }
}

void put_u64(std::string& s, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::string encode_ids(const std::vector<int>& ids) {
  std::string s(kMagic, sizeof kMagic);
  put_u64(s, ids.size());
  s.reserve(s.size() + 4 * ids.size());
  for (int id : ids) {
    const auto u = static_cast<std::uint32_t>(id);
    for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((u >> (8 * i)) & 0xff));
  }
  return s;
}

std::vector<int> decode_ids(const std::string& bytes, const std::string& path) {
  if (bytes.size() < 16 || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
    fail(path + ": not a hawq-tokenize ids file (bad magic)");
  std::uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
  if (n > (bytes.size() - 16) / 4 || bytes.size() != 16 + 4 * n) fail(path + ": ids file size does not match its count");
  std::vector<int> ids(n);
  for (std::uint64_t k = 0; k < n; ++k) {
    std::uint32_t u = 0;
    for (int i = 0; i < 4; ++i) u |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[16 + 4 * k + i])) << (8 * i);
    ids[k] = static_cast<int>(u);
  }
  return ids;
}

void usage() {
  std::cerr << "usage: hawq-tokenize --model tokenizer.model --input text.txt --output ids.bin [--bos] [--eos]\n"
               "       hawq-tokenize --model tokenizer.model --decode --input ids.bin --output text.txt\n"
               "       hawq-tokenize --model tokenizer.model --info\n";
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::string model, input, output;
  bool bos = false, eos = false, decode = false, info = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) fail("option " + a + " needs a value");
      return argv[++i];
    };
    if (a == "--model") model = value();
    else if (a == "--input") input = value();
    else if (a == "--output") output = value();
    else if (a == "--bos") bos = true;
    else if (a == "--eos") eos = true;
    else if (a == "--decode") decode = true;
    else if (a == "--info") info = true;
    else if (a == "--help" || a == "-h") usage();
    else fail("unknown option '" + a + "' (see --help)");
  }
  if (model.empty()) usage();

  sentencepiece::SentencePieceProcessor sp;
  const auto st = sp.Load(model);
  if (!st.ok()) fail("cannot load SentencePiece model " + model + ": " + st.ToString());

  if (info) {
    std::cout << "{\"vocab_size\": " << sp.GetPieceSize() << ", \"bos_id\": " << sp.bos_id()
              << ", \"eos_id\": " << sp.eos_id() << ", \"unk_id\": " << sp.unk_id() << ", \"pad_id\": " << sp.pad_id()
              << "}\n";
    return 0;
  }
  if (input.empty() || output.empty()) usage();

  if (decode) {
    auto ids = decode_ids(read_all(input), input);
    for (int id : ids)
      if (id < 0 || id >= sp.GetPieceSize()) fail(input + ": id " + std::to_string(id) + " is outside the vocabulary");
    std::string text;
    const auto ds = sp.Decode(ids, &text);
    if (!ds.ok()) fail("decoding failed: " + ds.ToString());
    write_atomic(output, text);
    return 0;
  }

  const std::string text = read_all(input);
  std::vector<int> ids;
  const auto es = sp.Encode(text, &ids);
  if (!es.ok()) fail("encoding " + input + " failed: " + es.ToString());
  if (bos) {
    if (sp.bos_id() < 0) fail("--bos given but " + model + " defines no BOS piece");
    ids.insert(ids.begin(), sp.bos_id());
  }
  if (eos) {
    if (sp.eos_id() < 0) fail("--eos given but " + model + " defines no EOS piece");
    ids.push_back(sp.eos_id());
  }
  write_atomic(output, encode_ids(ids));
  return 0;
}
