# pa-ci: two commands matter on a fresh machine, `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PACI   := $(VENV)/bin/pa-ci
DEMO   ?= demo-output

.PHONY: demo test bench install clean

# The virtual environment, with the package (editable) and its test, plot and dist extras
# (dist: the suite tests the Dask path of `pa-ci sweep` against a LocalCluster).
$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,plot,dist]'
	touch $@

install: $(VENV)/.installed

# The main job on the bundled data: prune 70 % of the shipped FRAE codec's matrix weights (scope
# whole) by the paper's proposed protocol (pruning-aware training, Eq. 5/6, then prune, then
# fine-tune) and by its baseline (prune, fine-tune), with short schedules, and print the
# comparison (test split VSTOI right after pruning and after fine-tuning; examples/demo/ holds
# what this printed for us); then the pruned model's sparsity table, its decoder as a sparse
# export against the 32 kB budget, and WAVs so you can listen (ACE alone, ACE + codec, ACE +
# pruned codec).
DEMO_WAV := pa_ci/bundled/speech/cmu_arctic/cmu_arctic_us_aew_a0001.wav
DEMO_PA  := $(DEMO)/prune-0.70/runs/whole-pa-linear-r0.7-s0
demo: $(VENV)/.installed
	$(PACI) dataset build
	$(PACI) eval
	rm -rf $(DEMO)/prune-0.70
	$(PACI) sweep --rates 0.7 --scopes whole --methods magnitude,pa --seeds 0 \
	    --pa-iters 60 --finetune-iters 30 --batch-size 25 --workers 2 -o $(DEMO)/prune-0.70
	$(PACI) report $(DEMO_PA)
	$(PACI) export $(DEMO_PA) --part decoder -o $(DEMO)/decoder-0.70.pacx
	$(PACI) vocode $(DEMO_WAV) -o $(DEMO)/ace_aew_a0001.wav --plot $(DEMO)/signal_chain_aew_a0001.png
	$(PACI) encode $(DEMO_WAV) -o $(DEMO)/aew_a0001.frae
	$(PACI) decode $(DEMO)/aew_a0001.frae -o $(DEMO)/codec_aew_a0001.wav
	$(PACI) encode $(DEMO_WAV) --model $(DEMO_PA) -o $(DEMO)/aew_a0001_pruned.frae
	$(PACI) decode $(DEMO)/aew_a0001_pruned.frae --model $(DEMO_PA) -o $(DEMO)/codec_pruned_aew_a0001.wav
	rm -rf $(DEMO)/sensitivity $(DEMO)/schedule
	$(PACI) sensitivity --range 0 0.9 0.3 --target-sparsity 0.5 -o $(DEMO)/sensitivity
	$(PACI) schedule $(DEMO)/sensitivity/proposed_schedule.yaml --epochs 2 --epoch-iters 15 \
	    --batch-size 25 -o $(DEMO)/schedule
	@echo "listen: $(DEMO)/ace_aew_a0001.wav (ACE), $(DEMO)/codec_aew_a0001.wav (ACE + codec),"
	@echo "        $(DEMO)/codec_pruned_aew_a0001.wav (ACE + codec with 70 % of its weights pruned)"
	@echo "look:   $(DEMO)/prune-0.70/*.png, $(DEMO)/signal_chain_aew_a0001.png,"
	@echo "        $(DEMO)/sensitivity/sensitivity.png"

test: $(VENV)/.installed
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) tests/bench_vstoi.py
	$(PY) tests/bench_spsa.py
	$(PY) tests/bench_table.py

clean:
	rm -rf $(VENV) $(DEMO) build *.egg-info
