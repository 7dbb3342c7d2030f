# Two commands set everything up on a fresh machine:
#   make demo   install, then stylize examples/ with the shipped default model
#   make test   install, then run the whole test suite (make test-fast skips the slow tests)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast onnx-assets train-content clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c constraints.txt torch==2.13.0
	$(BIN)/pip install --quiet -c constraints.txt -e ".[torch,test]"
	$(BIN)/semstyle weights fetch
	$(MAKE) onnx-assets
	touch $(STAMP)

# The shipped models as ONNX graphs inside the package, for the torch-free install
# (pip install "semstyle[runtime]"); built from the shipped safetensors, checked against PyTorch.
onnx-assets:
	$(BIN)/semstyle export --onnx shipped -o src/semstyle/assets/onnx

# The training configs' content folder (content_dir = "data/train_content"): links to the shared
# photos and the committed Debian photos, so a fresh clone trains without copying images.
train-content:
	mkdir -p data/train_content
	for f in ../shared/data/content/*.jpg data/train_photos/*.jpg; do \
		ln -sfn "$$(realpath --relative-to=data/train_content "$$f")" data/train_content/; done

demo: install
	mkdir -p out
	$(BIN)/semstyle stylize examples/chicago.jpg --style examples/starry_night.jpg -o out/demo.png

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) out .pytest_cache
