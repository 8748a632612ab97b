#!/bin/sh
# The asked runs of examples/paper_sweep (and of examples/paper_sweep/longer_pa, issue item 4),
# one after the other on 2 Numba threads, in the order below. Run it from the top of a separate
# clone of the commit README.rst names, with its own virtual environment in .venv (so work on
# main goes on):
#
#     git clone REPO runs-clone && cd runs-clone && git checkout COMMIT
#     python3 -m venv .venv && .venv/bin/pip install -e .
#     mkdir -p runs/paper-sweep runs/longer-pa
#     cp MAIN/examples/paper_sweep/sweep.json MAIN/examples/paper_sweep/results.csv runs/paper-sweep/
#     cp MAIN/examples/paper_sweep/longer_pa/sweep.json \
#         MAIN/examples/paper_sweep/longer_pa/results.csv runs/longer-pa/   # once they exist
#     cp -r MAIN/examples/paper_sweep/in_progress/paper-sweep/. runs/paper-sweep/runs/  # if there
#     cp -r MAIN/examples/paper_sweep/in_progress/longer-pa/. runs/longer-pa/runs/      # if there
#     cp MAIN/examples/paper_sweep/queue.sh runs/
#     setsid nohup sh runs/queue.sh > /dev/null 2>&1 &
#
# in_progress/ holds the checkpoints of the runs that were unfinished when the last session's
# machine went away (save_progress.sh wrote them); copied back, those runs resume.
#
# Every line is one `pa-ci sweep` into its folder: a run already in that folder's results.csv is
# skipped, an interrupted one resumes from its checkpoint, so starting the script again continues
# where it stopped. What finished (and what failed) goes to runs/queue.log. If a `pa-ci sweep` is
# still running when the script starts (an earlier queue's), it waits for it to end first.
set -u
MODEL=examples/base_model/base-avg/model.npz
LOG=runs/queue.log
export NUMBA_NUM_THREADS=2
mkdir -p runs
while pgrep -f "pa-ci sweep" > /dev/null; do sleep 30; done
run() {  # folder scope rate method seed [more pa-ci sweep options]
    out=$1 scope=$2 rate=$3 method=$4 seed=$5
    shift 5
    echo "$(date -u +%FT%TZ) start $out $scope $rate $method s$seed $*" >> "$LOG"
    if .venv/bin/pa-ci sweep "$MODEL" --rates "$rate" --scopes "$scope" --methods "$method" \
        --seeds "$seed" --finetune-average 0.5 --workers 1 -o "runs/$out" "$@" \
        >> runs/sweep.out 2>> runs/sweep.err; then
        echo "$(date -u +%FT%TZ) done  $out $scope $rate $method s$seed" >> "$LOG"
    else
        echo "$(date -u +%FT%TZ) FAILED $out $scope $rate $method s$seed (rc $?)" >> "$LOG"
    fi
}
# The paper's protocol (1000 PA + 7000 fine-tuning; magnitude: 8000), examples/paper_sweep.
paper() { run paper-sweep "$@"; }
# Item 4, beyond the paper: the same 8000 iterations split 3000 PA + 5000 fine-tuning,
# examples/paper_sweep/longer_pa (against the paper's protocol at whole 0.70, seeds 1-3).
longer() { run longer-pa whole 0.7 pa "$1" --pa-iters 3000 --finetune-iters 5000; }
paper whole 0.7 pa 1
paper whole 0.7 magnitude 1
paper whole 0.85 pa 1
paper whole 0.85 magnitude 1
paper whole 0.55 pa 1
paper whole 0.55 magnitude 1
longer 1
paper decoder 0.85 pa 1
paper decoder 0.85 magnitude 1
paper decoder 0.7 pa 1
paper decoder 0.7 magnitude 1
paper whole 0.7 pa 2
paper whole 0.7 magnitude 2
longer 2
paper whole 0.7 pa 3
paper whole 0.7 magnitude 3
longer 3
echo "$(date -u +%FT%TZ) queue ended" >> "$LOG"
