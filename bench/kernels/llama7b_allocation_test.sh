#!/usr/bin/env bash
# CTest for llama7b_allocation (run from the source root): regenerates the committed HAWQ-V3
# allocations from the committed latency table and compares them byte for byte, then checks that
# bad input is refused. Usage: llama7b_allocation_test.sh BINARY SCRATCH_DIR
set -u
bin=$1 dir=$2
fail() { echo "FAIL: $*"; exit 1; }
"$bin" configs/hardware/h100_latency.yaml "$dir/layerwise.txt" || fail "layer-wise run"
cmp "$dir/layerwise.txt" configs/hardware/h100_llama7b_layerwise.txt || fail "layer-wise allocation differs"
"$bin" configs/hardware/h100_latency.yaml "$dir/rowblocks.txt" --block-rows 1024 --name hawq_v3_rows ||
  fail "row-block run"
cmp "$dir/rowblocks.txt" configs/hardware/h100_llama7b_rowblocks.txt || fail "row-block allocation differs"
# A missing table: non-zero exit, the file named, nothing written.
rm -f "$dir/none.txt"
out=$("$bin" configs/hardware/missing.yaml "$dir/none.txt" 2>&1) && fail "missing table accepted"
echo "$out" | grep -q "missing.yaml" || fail "message does not name the table: $out"
[ ! -e "$dir/none.txt" ] || fail "output written for a missing table"
# Bad arguments: exit 2.
"$bin" configs/hardware/h100_latency.yaml "$dir/none.txt" --block-rows 100 > /dev/null 2>&1
[ $? -eq 2 ] || fail "--block-rows 100 (not a multiple of 16) accepted"
"$bin" configs/hardware/h100_latency.yaml "$dir/none.txt" --bits 9 > /dev/null 2>&1
[ $? -eq 2 ] || fail "--bits 9 accepted"
# An infeasible budget: non-zero exit with the allocator's explanation.
out=$("$bin" configs/hardware/h100_latency.yaml "$dir/none.txt" --latency 0.2 2>&1) && fail "infeasible budget accepted"
echo "$out" | grep -qi "budget" || fail "infeasible budget message: $out"
echo "llama7b_allocation: committed allocations reproduced; bad input refused"
