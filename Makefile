# One-command setup: every target creates or reuses .venv, reinstalling only when the dependency
# spec (pyproject.toml, constraints.txt) changed; a hash-named stamp file records what is installed.
PYTHON ?= python3
VENV := .venv
SPEC_HASH := $(shell cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(SPEC_HASH)
PY := $(VENV)/bin/python

.PHONY: venv demo test lint benchmark clean

venv: $(STAMP)

$(STAMP):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

# The main job: image, video and audio demos and one report, outputs/demo/report.md (make demo DEMO_OUT=dir writes
# under dir). Finished modalities are reused and interrupted sweeps resume; DEMO_ARGS=--fresh starts over.
# Progress goes to stderr: bars on a terminal, lines in a log.
DEMO_OUT ?= outputs/demo
DEMO_ARGS ?=

demo: venv
	$(PY) -m tokenmerge.app.demo --out $(DEMO_OUT) $(DEMO_ARGS)

# pytest exits 5 when it collects no tests: fail loudly rather than pass an empty suite.
test: venv
	@$(PY) -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing, so an empty suite cannot pass." >&2; exit 1; fi; \
	exit $$rc

lint: venv
	$(VENV)/bin/ruff check api app core adapters experiments image video audio tests benchmarks
	$(VENV)/bin/ruff format --check api app core adapters experiments image video audio tests benchmarks

benchmark: venv
	$(PY) benchmarks/merge_overhead.py

clean:
	rm -rf $(VENV) results
