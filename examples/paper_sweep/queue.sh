#!/bin/sh
# The asked runs of examples/paper_sweep, one after the other on 2 Numba threads, in the order
# below. Run it from the top of a separate clone of the commit README.rst names, with its own
# virtual environment in .venv (so work on main goes on):
#
#     git clone REPO runs-clone && cd runs-clone && git checkout COMMIT
#     python3 -m venv .venv && .venv/bin/pip install -e .
#     mkdir -p runs/paper-sweep && cp MAIN/examples/paper_sweep/sweep.json \
#         MAIN/examples/paper_sweep/results.csv runs/paper-sweep/
#     setsid nohup sh MAIN/examples/paper_sweep/queue.sh > /dev/null 2>&1 &
#
# Every line is one `pa-ci sweep` into the same folder: a run already in results.csv is skipped,
# an interrupted one resumes from its checkpoint, so starting the script again continues where
# it stopped. What finished (and what failed) goes to runs/queue.log.
set -u
MODEL=examples/base_model/base-avg/model.npz
OUT=runs/paper-sweep
LOG=runs/queue.log
export NUMBA_NUM_THREADS=2
mkdir -p runs
run() {  # scope rate method seed
    echo "$(date -u +%FT%TZ) start $1 $2 $3 s$4" >> "$LOG"
    if .venv/bin/pa-ci sweep "$MODEL" --rates "$2" --scopes "$1" --methods "$3" --seeds "$4" \
        --finetune-average 0.5 --workers 1 -o "$OUT" >> runs/sweep.out 2>> runs/sweep.err; then
        echo "$(date -u +%FT%TZ) done  $1 $2 $3 s$4" >> "$LOG"
    else
        echo "$(date -u +%FT%TZ) FAILED $1 $2 $3 s$4 (rc $?)" >> "$LOG"
    fi
}
run whole 0.7 pa 1
run whole 0.7 magnitude 1
run whole 0.85 pa 1
run whole 0.85 magnitude 1
run whole 0.55 pa 1
run whole 0.55 magnitude 1
run decoder 0.85 pa 1
run decoder 0.85 magnitude 1
run decoder 0.7 pa 1
run decoder 0.7 magnitude 1
run whole 0.7 pa 2
run whole 0.7 magnitude 2
run whole 0.7 pa 3
run whole 0.7 magnitude 3
echo "$(date -u +%FT%TZ) queue ended" >> "$LOG"
