#!/usr/bin/env bash
# A schedule derived from the sensitivity analysis against global magnitude and PA pruning at the
# same overall sparsity (same number of pruned matrix weights) and the same SPSA budget.
#   bash examples/sensitivity_schedule/run.sh OUT [TARGET]     (about 20 min on 2 cores)
# MODEL=FILE analyses and prunes FILE instead of the shipped model (the committed figures:
# MODEL=examples/base_model/stage0/model.npz, the model shipped when they were made).
set -euo pipefail
OUT=${1:?usage: run.sh OUT [TARGET_SPARSITY]}
TARGET=${2:-0.6}
HERE=$(cd "$(dirname "$0")" && pwd)
PACI=${PACI:-pa-ci}
PY=${PY:-python}
SEEDS="1 2 3"
MODEL=${MODEL:-}          # empty: the shipped model
BUDGET="--epochs 6 --epoch-iters 50 --batch-size 25"          # 300 SPSA iterations
mkdir -p "$OUT"

# 1. Per-tensor analysis on the train split; levels for the target with the smallest tolerance.
$PACI sensitivity $MODEL --range 0 0.95 0.05 --target-sparsity "$TARGET" -o "$OUT/analysis" --json \
    > "$OUT/analysis.json.tmp" && mv "$OUT/analysis.json.tmp" "$OUT/analysis/result.json"
# 2. A gradual (AGP) variant ending at the same levels, and the equal global rate.
RATE=$($PY "$HERE/derive_agp.py" "$OUT/analysis" "$OUT/agp.yaml" --events 4 \
       | $PY -c "import json,sys; print(repr(json.load(sys.stdin)['rate']))")
echo "global rate with the same number of pruned weights: $RATE"

# 3. The two schedules, 2 runs at a time with one Numba thread each.
export NUMBA_NUM_THREADS=1
for s in $SEEDS; do
  $PACI prune $MODEL --schedule "$OUT/analysis/proposed_schedule.yaml" $BUDGET --seed "$s" \
      -o "$OUT/sensitivity-s$s" --resume --json > "$OUT/sensitivity-s$s.json" 2>/dev/null &
  $PACI prune $MODEL --schedule "$OUT/agp.yaml" $BUDGET --seed "$s" \
      -o "$OUT/agp-s$s" --resume --json > "$OUT/agp-s$s.json" 2>/dev/null &
  wait
done
unset NUMBA_NUM_THREADS
# 4. Global magnitude and PA (150 PA + 150 fine-tuning; magnitude fine-tunes 300) at that rate.
$PACI sweep $MODEL --rates "$RATE" --scopes whole --methods magnitude,pa --seeds "${SEEDS// /,}" \
    --pa-iters 150 --finetune-iters 150 --batch-size 25 --workers 2 -o "$OUT/global" --json \
    > "$OUT/global.json"
$PY "$HERE/table.py" "$OUT"
