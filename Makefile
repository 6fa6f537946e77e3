# Graft: `make demo` and `make test` do all the set-up a fresh Debian machine needs.
SWIFT      ?= swift
PY         := .venv/bin/python
GRAFT      := .build/release/graft
MATERIAL   := .build-fixtures/resnet50

.PHONY: all deps venv fixtures build demo test bench clean

all: build

deps:
	@bash tools/install_deps.sh

venv: deps
	@bash tools/setup_venv.sh

# The full-size ResNet-50: committed graph, deterministic weights, ONNX Runtime references.
fixtures: venv
	@$(PY) tools/materialize_resnet50.py fixtures/resnet50/resnet50_bn.onnx $(MATERIAL)

build: deps
	$(SWIFT) build -c release --product graft

demo: build fixtures
	$(GRAFT) summary $(MATERIAL)/resnet50_bn.onnx --format table
	$(GRAFT) infer $(MATERIAL)/resnet50_bn.onnx --input $(MATERIAL)/input_b1.npy

test: build fixtures
	GRAFT_ONNX_BACKEND_DATA="$$($(PY) -c 'import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), "backend/test/data"))')" \
		$(SWIFT) test -c release

# Side by side with ONNX Runtime on the same model, same cores, alternating rounds.
bench: build fixtures
	$(PY) tools/bench_vs_ort.py $(MATERIAL)/resnet50_bn.onnx --batch 1 --threads 2
	$(PY) tools/bench_vs_ort.py $(MATERIAL)/resnet50_bn.onnx --batch 1 --threads 1
	$(PY) tools/bench_vs_ort.py $(MATERIAL)/resnet50_bn.onnx --batch 8 --threads 2 --runs 5

clean:
	rm -rf .build .build-fixtures
