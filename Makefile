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

# make demo DEMO_OUT=dir writes everything under dir/image, dir/video, dir/audio (default: each demo's own folder,
# results/demo, outputs/demo/video, outputs/demo/audio). Progress goes to stderr: bars on a terminal, lines in a log.
DEMO_OUT ?=

demo: venv
	$(PY) -m tokenmerge.image.demo $(if $(DEMO_OUT),--out $(DEMO_OUT)/image)
	@if [ -f video/weights/clip_vit.safetensors ]; then $(PY) -m tokenmerge.video.demo $(if $(DEMO_OUT),--out $(DEMO_OUT)/video); \
	else echo "video demo skipped: video/weights/clip_vit.safetensors is not trained yet (python -m tokenmerge.video.train_embedded)"; fi
	@if [ -f audio/weights/speech_vit_tome.safetensors ]; then $(PY) -m tokenmerge.audio.demo $(if $(DEMO_OUT),--out $(DEMO_OUT)/audio); \
	else echo "audio demo skipped: audio/weights/*.safetensors are not trained yet (python -m tokenmerge.audio.train_embedded)"; fi

# pytest exits 5 when it collects no tests: fail loudly rather than pass an empty suite.
test: venv
	@$(PY) -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing, so an empty suite cannot pass." >&2; exit 1; fi; \
	exit $$rc

lint: venv
	$(VENV)/bin/ruff check core image video audio tests benchmarks
	$(VENV)/bin/ruff format --check core image video audio tests benchmarks

benchmark: venv
	$(PY) benchmarks/merge_overhead.py

clean:
	rm -rf $(VENV) results
