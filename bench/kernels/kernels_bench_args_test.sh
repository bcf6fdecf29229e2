#!/usr/bin/env bash
# CTest for kernels_bench's argument checks (run from the source root): every bad argument is
# refused with exit 2 and a message naming the option and the offending value, before any device
# work, so the test means the same with or without a GPU. Usage: kernels_bench_args_test.sh BINARY SCRATCH_DIR
set -u
bin=$1 dir=$2
fail() { echo "FAIL: $*"; exit 1; }
refused() {  # refused EXPECTED_TEXT ARGS...: exit 2 and EXPECTED_TEXT in the message
  local want=$1
  shift
  local out rc
  out=$("$bin" --out "$dir/kb_args_out" "$@" 2>&1)
  rc=$?
  [ $rc -eq 2 ] || fail "'$*' exited $rc, expected 2: $out"
  echo "$out" | grep -qF -- "$want" || fail "'$*': message does not say '$want': $out"
}
refused "unknown variant 'u5'" --variants u4,u5
refused "'0' is not a batch size" --ms 1,0
refused "'2x' is not a batch size" --ms 2x
refused "'129' is not a batch size" --ms 129
refused "'100x4096' is not NxK" --shapes 100x4096
refused "'4096x4100' is not NxK" --shapes 4096x4096,4096x4100
refused "'abc' is not NxK" --shapes abc
refused "missing_allocation.txt" --allocation "$dir/missing_allocation.txt"
printf '# variant: broken\n0 q_proj 0 4096 5\n' > "$dir/broken_allocation.txt"
refused "broken_allocation.txt:2: width 5" --allocation "$dir/broken_allocation.txt"
sed 's/^# variant: .*/# variant: u4/' configs/hardware/h100_llama7b_layerwise.txt > "$dir/taken_allocation.txt"
refused "variant name 'u4' is taken" --allocation "$dir/taken_allocation.txt"
refused "variant name 'hawq_v3' is taken" --allocation configs/hardware/h100_llama7b_layerwise.txt \
  --allocation configs/hardware/h100_llama7b_layerwise.txt
refused "'-1' is not a launch count" --calls -1
refused "'64k' is not a launch count" --calls 64k
refused "usage: kernels_bench" --no-such-option
[ ! -e "$dir/kb_args_out" ] || fail "an output folder was created for refused arguments"
echo "kernels_bench: bad arguments refused"
