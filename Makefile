# pa-ci: two commands matter on a fresh machine, `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PACI   := $(VENV)/bin/pa-ci
DEMO   ?= demo-output

.PHONY: demo test bench install clean

# The virtual environment, with the package (editable) and its test + plot extras.
$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,plot]'
	touch $@

install: $(VENV)/.installed

# The main job on the bundled data: build the default dataset, evaluate the shipped FRAE codec
# on its test split (coded VSTOI vs the uncoded reference), code a bundled file through the
# codec at 6 bits per frame, and write WAVs so you can listen (ACE alone, and ACE + codec).
DEMO_WAV := pa_ci/bundled/speech/cmu_arctic/cmu_arctic_us_aew_a0001.wav
demo: $(VENV)/.installed
	$(PACI) dataset build
	$(PACI) eval
	mkdir -p $(DEMO)
	$(PACI) vocode $(DEMO_WAV) -o $(DEMO)/ace_aew_a0001.wav --plot $(DEMO)/signal_chain_aew_a0001.png
	$(PACI) encode $(DEMO_WAV) -o $(DEMO)/aew_a0001.frae
	$(PACI) decode $(DEMO)/aew_a0001.frae -o $(DEMO)/codec_aew_a0001.wav
	rm -rf $(DEMO)/train-run
	$(PACI) train --iters 10 --init pa_ci/bundled/models/frae-default.npz --tiny -o $(DEMO)/train-run
	@echo "listen: $(DEMO)/ace_aew_a0001.wav (ACE) and $(DEMO)/codec_aew_a0001.wav (ACE + FRAE codec)"
	@echo "look:   $(DEMO)/signal_chain_aew_a0001.png"

test: $(VENV)/.installed
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) tests/bench_vstoi.py
	$(PY) tests/bench_spsa.py

clean:
	rm -rf $(VENV) $(DEMO) build *.egg-info
