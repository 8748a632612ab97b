#!/bin/sh
# Copy what the queue (queue.sh) has made so far from the runs clone into MAIN's
# examples/paper_sweep, before the machine goes away: each sweep folder's results.csv and
# sweep.json, and every unfinished run's folder (its checkpoints; lock files left out) under
# in_progress/FOLDER/KEY, so a later session's clone continues it instead of starting over:
#
#     sh MAIN/examples/paper_sweep/save_progress.sh MAIN        # from the clone's top folder
#
# and in the new clone, before starting queue.sh (its header):
#
#     mkdir -p runs/paper-sweep/runs runs/longer-pa/runs
#     cp -r MAIN/examples/paper_sweep/in_progress/paper-sweep/. runs/paper-sweep/runs/ 2>/dev/null
#     cp -r MAIN/examples/paper_sweep/in_progress/longer-pa/. runs/longer-pa/runs/ 2>/dev/null
#
# A run is copied as it is at that moment: pause it first (kill -STOP) so that no checkpoint is
# half-written, and resume (kill -CONT) or stop it afterwards. Finished runs are not copied
# (their rows are in results.csv).
set -eu
MAIN=$1
DEST=$MAIN/examples/paper_sweep
copy_folder() {  # sweep folder under runs/, its folder in examples/paper_sweep
    src=runs/$1 dst=$DEST/$2
    [ -d "$src" ] || return 0
    mkdir -p "$dst"
    for f in results.csv sweep.json; do [ ! -f "$src/$f" ] || cp "$src/$f" "$dst/"; done
    rm -rf "$DEST/in_progress/$1"
    for run in "$src"/runs/*/; do
        [ -d "$run" ] || continue
        key=$(basename "$run")
        if ! grep -qs ",$key," "$src/results.csv"; then
            mkdir -p "$DEST/in_progress/$1"
            cp -R "$run" "$DEST/in_progress/$1/"
            find "$DEST/in_progress/$1/$key" -name .pa-ci.lock -delete
            echo "in progress: $1/$key"
        fi
    done
}
copy_folder paper-sweep .
copy_folder longer-pa longer_pa
