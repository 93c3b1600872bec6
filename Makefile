# make test: create .venv, install bl_keras with its test extras, run the tests (not the slow ones:
# make test-slow).
# make demo: the main job on its built-in default (trains a small bL-ResNet on generated data).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test test-slow demo install clean

install: $(STAMP)

$(STAMP): setup.py Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[cpu,test]"
	# The conversion tests write real PyTorch checkpoints; the CPU build of this version is the
	# one to use (a plain "torch" requirement would pull the CUDA build).
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	# The detection tests run KerasHub beside tensorflow-cpu: keras-hub without tensorflow-text
	# (used by its text tokenizers only; it requires the `tensorflow` distribution, which would
	# land beside tensorflow-cpu), with its other requirements; pycocotools for mAP. pip then
	# reports tensorflow-text as a missing requirement of keras-hub: expected.
	$(BIN)/python -m pip install --quiet --no-deps "keras-hub==0.32.0"
	$(BIN)/python -m pip install --quiet regex rich packaging tokenizers sentencepiece \
		"kagglehub!=1.0.1" "kagglesdk==0.1.28" "pycocotools>=2.0.8"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# Tests marked slow (whole training runs, minutes each); CI runs them after `make test`.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

demo: $(STAMP)
	$(BIN)/python -m train.imagenet --flagfile=configs/demo.flags

clean:
	rm -rf $(VENV) build *.egg-info
