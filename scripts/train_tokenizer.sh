#!/usr/bin/env bash
# Trains the SentencePiece tokenizer of the tiny KJV LLaMA model with Debian's spm_train.
#
#   scripts/train_tokenizer.sh [TRAIN_TXT] [OUT_DIR]
#     TRAIN_TXT  default data/kjv/train.txt (run scripts/prepare_kjv.sh first)
#     OUT_DIR    default assets/models/llama-kjv-tiny  (writes OUT_DIR/tokenizer.model)
#
# Settings follow LLaMA's tokenizer: BPE with byte fallback (every byte, e.g. "\n", stays
# encodable), digits split, identity normalisation with whitespace kept as is, a dummy prefix
# space, and the ids unk=0, bos=1, eos=2, no pad. Only the training split is seen, so test
# perplexity is measured on text the tokenizer never trained on. The vocabulary is 4000 pieces
# (the model file is about 250 KB). Training is deterministic for a given input and spm_train
# version; the script prints the model's checksum.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TRAIN="${1:-$ROOT/data/kjv/train.txt}"
OUT="${2:-$ROOT/assets/models/llama-kjv-tiny}"
VOCAB="${HAWQ_TOKENIZER_VOCAB:-4000}"

if [ ! -s "$TRAIN" ]; then
  echo "train_tokenizer.sh: $TRAIN not found; run scripts/prepare_kjv.sh first" >&2
  exit 1
fi
if ! command -v spm_train >/dev/null 2>&1; then
  echo "train_tokenizer.sh: spm_train is missing; install Debian's sentencepiece package (scripts/setup.sh)" >&2
  exit 1
fi
mkdir -p "$OUT"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

spm_train \
  --input="$TRAIN" \
  --model_prefix="$tmp/tokenizer" \
  --vocab_size="$VOCAB" \
  --model_type=bpe \
  --character_coverage=1.0 \
  --byte_fallback=true \
  --split_digits=true \
  --normalization_rule_name=identity \
  --remove_extra_whitespaces=false \
  --add_dummy_prefix=true \
  --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 \
  --max_sentence_length=8192 \
  --num_threads=2 \
  --minloglevel=1

mv "$tmp/tokenizer.model" "$OUT/tokenizer.model"
printf '%s: %d bytes, cksum %s\n' "$OUT/tokenizer.model" "$(wc -c < "$OUT/tokenizer.model")" \
  "$(cksum < "$OUT/tokenizer.model" | cut -d' ' -f1)"
