#!/usr/bin/env bash
# CLI smoke test: `list`, `validate`, bad input exit codes, a tiny sweep under `mpirun -n 2` (run
# through scripts/quickstart.sh, the README's command),
# `report` in every format, resume without recomputation, and no duplicated rows.
set -euo pipefail
BIN="$1"; MPIRUN="$2"; WORK="$3"; BUILD="${4:-$(dirname "$1")}"
ROOT="${HAWQ_ROOT:?}"
rm -rf "$WORK"; mkdir -p "$WORK"; cd "$ROOT"
fail() { echo "SMOKE FAILED: $*" >&2; exit 1; }

# Every plugin kind the framework promises is registered.
"$BIN" list > "$WORK/list.txt"
for want in "estimator hutchinson" "allocator dp" "quantizer rtn" "model resnet" "dataset fashion_mnist"; do
  grep -qx "$want" "$WORK/list.txt" || fail "hawq-bench list lacks '$want'"
done

# A tiny version of the quickstart: small calibration/evaluation, one budget, one seed.
TINY=(--set calibration.samples=16 --set calibration.batch_size=16 --set evaluation.samples=200
      --set estimation.max_hvps=3 --set 'sweep.budgets=[4]' --set 'sweep.seeds=[0]'
      --set 'sweep.methods=[uniform, hawq_v1]')
"$BIN" validate experiments/quickstart.yaml "${TINY[@]}" > "$WORK/validate.txt"
grep -q "2 points" "$WORK/validate.txt" || fail "validate did not plan 2 points: $(cat "$WORK/validate.txt")"

# Bad input: exit code 2, a message naming the problem, and nothing written.
set +e
"$BIN" experiments/quickstart.yaml --out "$WORK/bad.h5" --set 'sweep.estimators=[hutchinsn]' 2> "$WORK/err.txt"
rc=$?
set -e
[ "$rc" = 2 ] || fail "unknown estimator should exit 2, got $rc"
grep -q "did you mean 'hutchinson'" "$WORK/err.txt" || fail "no suggestion in: $(cat "$WORK/err.txt")"
[ ! -e "$WORK/bad.h5" ] && [ ! -e "$WORK/bad.h5.journal" ] || fail "a failed validation wrote results"

# The sweep under two ranks, through the README's quickstart command itself (its setup step is a
# no-op once the packages are installed, its build step a no-op on this built tree).
BUILD_DIR="$BUILD" bash scripts/quickstart.sh --out "$WORK/tiny.h5" "${TINY[@]}" > "$WORK/run.txt" ||
  fail "scripts/quickstart.sh failed: $(tail -5 "$WORK/run.txt")"
grep -q "hawq_v1" "$WORK/run.txt" || fail "the run did not print the table"
for fmt in markdown csv latex; do "$BIN" report "$WORK/tiny.h5" --format "$fmt" --table points > "$WORK/report.$fmt"; done
rows=$(($(wc -l < "$WORK/report.csv") - 1))
[ "$rows" = 2 ] || fail "expected 2 rows in /summary, found $rows"
grep -c ",ok," "$WORK/report.csv" | grep -qx 2 || fail "points did not finish ok: $(cat "$WORK/report.csv")"

# Resume: the same command again runs nothing new and keeps exactly the same rows.
"$MPIRUN" -n 2 --oversubscribe "$BIN" experiments/quickstart.yaml --out "$WORK/tiny.h5" "${TINY[@]}" --quiet 2> "$WORK/resume.txt"
grep -q "2 of 2 points already recorded" "$WORK/resume.txt" || fail "resume did not skip finished points: $(cat "$WORK/resume.txt")"
"$BIN" report "$WORK/tiny.h5" --format csv --table points > "$WORK/report2.csv"
cmp -s "$WORK/report.csv" "$WORK/report2.csv" || fail "resume changed the results"

# Numbers depend only on the point and threads_per_rank, never on the rank count or schedule:
# one rank gives exactly the same rows (all columns but the wall time).
"$BIN" experiments/quickstart.yaml --out "$WORK/one.h5" "${TINY[@]}" --quiet
"$BIN" report "$WORK/one.h5" --format csv --table points > "$WORK/report1.csv"
cut -d, -f1-11 "$WORK/report.csv" > "$WORK/a.csv"; cut -d, -f1-11 "$WORK/report1.csv" > "$WORK/b.csv"
cmp -s "$WORK/a.csv" "$WORK/b.csv" || fail "1 rank and 2 ranks disagree: $(diff "$WORK/a.csv" "$WORK/b.csv")"

# A different experiment base is refused without --force, and the results stay intact.
set +e
"$BIN" experiments/quickstart.yaml --out "$WORK/tiny.h5" "${TINY[@]}" --set evaluation.samples=100 2> "$WORK/err2.txt"
rc=$?
set -e
[ "$rc" = 2 ] || fail "a changed experiment base should exit 2, got $rc"
grep -q "belongs to a different experiment" "$WORK/err2.txt" || fail "no ownership message: $(cat "$WORK/err2.txt")"
"$BIN" report "$WORK/tiny.h5" --format csv --table points > "$WORK/report3.csv"
cmp -s "$WORK/report.csv" "$WORK/report3.csv" || fail "a refused run damaged the results"
# The estimators table reads the stored estimate back.
"$BIN" report "$WORK/tiny.h5" --table estimators > "$WORK/est.md"
grep -q "| hutchinson *| layer " "$WORK/est.md" || fail "estimators table lacks the estimate: $(cat "$WORK/est.md")"

# Kernel benchmark results join a results file as /kernels/ and survive the next rebuild; a
# malformed file is refused with exit 2 and the results file is left as it was.
"$BIN" import-kernels kernels/results/h100_2026-11-25.json --into "$WORK/tiny.h5" > "$WORK/imp.txt"
grep -q "/kernels/" "$WORK/imp.txt" || fail "import-kernels printed: $(cat "$WORK/imp.txt")"
if command -v h5ls > /dev/null; then
  h5ls -r "$WORK/tiny.h5" | grep -q "/kernels/.*/rows/us" || fail "no /kernels/<key>/rows/us dataset: $(h5ls -r "$WORK/tiny.h5" | head)"
fi
"$BIN" report "$WORK/tiny.h5" --format csv --table points > "$WORK/report4.csv"
cmp -s "$WORK/report.csv" "$WORK/report4.csv" || fail "importing kernels changed the points"
printf '{"card": "x", "rows": [{"n": 1}]}' > "$WORK/badk.json"
cp "$WORK/tiny.h5" "$WORK/before.h5"
set +e
"$BIN" import-kernels "$WORK/badk.json" --into "$WORK/tiny.h5" 2> "$WORK/err4.txt"
rc=$?
set -e
[ "$rc" = 2 ] || fail "a malformed kernels file should exit 2, got $rc"
grep -q "badk.json" "$WORK/err4.txt" || fail "no file name in: $(cat "$WORK/err4.txt")"
cmp -s "$WORK/tiny.h5" "$WORK/before.h5" || fail "a refused import changed the results file"
echo "smoke ok"
