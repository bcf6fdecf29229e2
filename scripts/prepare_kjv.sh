#!/usr/bin/env bash
# Writes the King James Bible train/test split used by the tiny LLaMA model and the `text` dataset.
#
#   scripts/prepare_kjv.sh [OUT_DIR]        (default: data/kjv under the repository root)
#
# Source: Debian's bible-kjv package (`bible gen1:1-rev22:21` prints the whole text, 4.3 MB).
# Its output is a chapter heading ("Genesis 1", "1 Samuel 3"), a blank line, then verses that start
# with a right-aligned verse number and wrap at ~80 columns. We drop headings and verse numbers and
# write ONE VERSE PER LINE (wrapped lines joined with a space); the `text` dataset then treats each
# non-empty line as one row and joins rows with "\n\n" as GPTQ does.
#
# Split (documented in docs/LLAMA.md): chapters are numbered 0..1188 in canonical order; every
# 20th chapter (index % 20 == 19: Genesis 20, Genesis 40, Exodus 10, ...) goes to test.txt (59
# chapters, about 5% of the text), all others to train.txt. The test set thus samples every part of
# the book while never sharing a chapter with the training text. The script is deterministic, and it
# prints the sizes and a checksum so runs can be compared.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/data/kjv}"

if ! command -v bible >/dev/null 2>&1; then
  echo "prepare_kjv.sh: the 'bible' program is missing; install Debian's bible-kjv package (scripts/setup.sh)" >&2
  exit 1
fi
mkdir -p "$OUT"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

bible gen1:1-rev22:21 > "$tmp/raw.txt"

# A heading is a non-empty line with blank lines (or the start) before and after it. A verse starts
# with optional spaces, its number and a space; other non-empty lines continue the current verse.
awk -v train="$tmp/train.txt" -v test="$tmp/test.txt" '
  { line[NR] = $0 }
  END {
    chapter = -1; verse = ""; verses = 0
    for (i = 1; i <= NR; i++) {
      s = line[i]
      if (s == "") continue
      if ((i == 1 || line[i-1] == "") && line[i+1] == "") {   # chapter heading
        flush(); chapter++; continue
      }
      if (chapter < 0) { print "prepare_kjv.sh: text before the first heading" > "/dev/stderr"; exit 1 }
      if (match(s, /^ *[0-9]+ /)) {                            # a new verse
        flush(); verse = substr(s, RLENGTH + 1)
      } else {                                                 # wrapped continuation
        verse = verse " " s
      }
    }
    flush()
    if (chapter + 1 != 1189 || verses != 31102) {
      printf "prepare_kjv.sh: parsed %d chapters and %d verses, expected 1189 and 31102\n", chapter + 1, verses > "/dev/stderr"
      exit 1
    }
  }
  function flush() {
    if (verse == "") return
    gsub(/[ \t]+$/, "", verse); gsub(/  +/, " ", verse)
    print verse > ((chapter % 20 == 19) ? test : train)
    verse = ""; verses++
  }
' "$tmp/raw.txt"

mv "$tmp/train.txt" "$OUT/train.txt"
mv "$tmp/test.txt" "$OUT/test.txt"
for f in train test; do
  printf '%s: %d verses, %d bytes, cksum %s\n' "$OUT/$f.txt" "$(wc -l < "$OUT/$f.txt")" \
    "$(wc -c < "$OUT/$f.txt")" "$(cksum < "$OUT/$f.txt" | cut -d' ' -f1)"
done
