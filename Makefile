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

# The main job on the bundled data: build the default dataset, print its reference VSTOI,
# and write a vocoded WAV so you can listen to what a CI user gets.
demo: $(VENV)/.installed
	$(PACI) dataset build
	mkdir -p $(DEMO)
	$(PACI) vocode pa_ci/bundled/speech/cmu_arctic/cmu_arctic_us_aew_a0001.wav -o $(DEMO)/vocoded_aew_a0001.wav --plot $(DEMO)/signal_chain_aew_a0001.png
	@echo "listen: $(DEMO)/vocoded_aew_a0001.wav   look: $(DEMO)/signal_chain_aew_a0001.png"

test: $(VENV)/.installed
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) tests/bench_vstoi.py

clean:
	rm -rf $(VENV) $(DEMO) build *.egg-info
