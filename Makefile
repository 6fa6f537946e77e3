# Graft: `make demo` and `make test` do all the set-up a fresh Debian machine needs.
SWIFT      ?= swift
PY         := .venv/bin/python
GRAFT      := .build/release/graft
MATERIAL   := .build-fixtures/resnet50
FASHION    := .build-fixtures/fashion
INT8       := .build-fixtures/resnet50_int8/resnet50_int8_qdq.onnx
TORCH_PY   := $(or $(TORCH_PYTHON),.venv-torch/bin/python)

.PHONY: all deps venv torch-venv fixtures build install demo test fuzz bench clean

all: build

deps:
	@bash tools/install_deps.sh

venv: deps
	@bash tools/setup_venv.sh

# PyTorch, torchvision and safetensors (about 5 GB, made on first use): the references for
# checkpoints; TORCH_PYTHON=/path/to/python uses one that already has the pinned versions.
torch-venv:
	@TORCH_PYTHON="$(TORCH_PYTHON)" bash tools/setup_torch_venv.sh

# The full-size ResNet-50: committed graph, deterministic weights, ONNX Runtime references, and
# the same model saved by PyTorch as .pth (zip, legacy, a training checkpoint) and safetensors.
# The trained Fashion-MNIST ResNet: the test split, ONNX Runtime's f32 and int8 logits, test
# images by class; and ONNX Runtime's int8 QDQ form of the ResNet-50 for the benchmark.
fixtures: venv torch-venv
	@$(PY) tools/materialize_resnet50.py fixtures/resnet50/resnet50_bn.onnx $(MATERIAL)
	@$(TORCH_PY) tools/materialize_resnet50_checkpoints.py $(MATERIAL)
	@$(PY) tools/materialize_fashion.py fixtures/fashion/fashion_resnet.onnx $(FASHION) \
		--resnet50 $(MATERIAL)/resnet50_bn.onnx --resnet50-out $(dir $(INT8))

build: deps
	$(SWIFT) build -c release --product graft

# Puts graft on the PATH: $(PREFIX)/bin/graft and, beside it, the resources SwiftPM bundles (the
# ImageNet class names); it uses the Swift toolchain's runtime libraries.
PREFIX ?= /usr/local
install: build
	install -D -m 755 $(GRAFT) $(DESTDIR)$(PREFIX)/bin/graft
	install -D -m 644 .build/release/Graft_GraftTrain.resources/imagenet_classes.txt \
		$(DESTDIR)$(PREFIX)/bin/Graft_GraftTrain.resources/imagenet_classes.txt
	@echo "installed $(DESTDIR)$(PREFIX)/bin/graft"

# The whole flow offline. The bundled ResNet-50 has random weights, whose features cannot tell
# pictures apart, so the head is trained on the small fixture trunk; with the pretrained
# ResNet-50 (tools/export_resnet50.py --pretrained) the same train command works on it.
DEMO := .build-demo
demo: build fixtures
	@rm -rf $(DEMO) && mkdir -p $(DEMO)
	$(GRAFT) summary $(MATERIAL)/resnet50_bn.onnx --format table
	$(GRAFT) infer $(MATERIAL)/resnet50_bn.onnx --input $(MATERIAL)/input_b1.npy
	$(GRAFT) infer $(MATERIAL)/resnet50.pth --input $(MATERIAL)/input_b1.npy --top-k 3
	$(GRAFT) convert $(MATERIAL)/resnet50_bn.onnx $(DEMO)/resnet50_lean.onnx --report
	$(GRAFT) demo-data $(DEMO)/data --per-class 60
	$(GRAFT) train fixtures/tiny/ts_opset17_dynamic.onnx --data $(DEMO)/data --out $(DEMO)/grafted.onnx --epochs 15 --head 64,32
	$(GRAFT) summary $(DEMO)/grafted.onnx
	$(GRAFT) evaluate $(DEMO)/grafted.onnx --data $(DEMO)/data
	$(GRAFT) infer $(DEMO)/grafted.onnx $(DEMO)/data/train/cat.1.jpg $(DEMO)/data/train/dog.2.jpg
	$(GRAFT) convert $(DEMO)/grafted.onnx $(DEMO)/grafted.h5

test: build fixtures
	GRAFT_ONNX_BACKEND_DATA="$$($(PY) -c 'import onnx, os; print(os.path.join(os.path.dirname(onnx.__file__), "backend/test/data"))')" \
		GRAFT_TORCH_PYTHON="$(TORCH_PY)" $(SWIFT) test -c release
	ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1:max_allocation_size_mb=8192 GRAFT_FUZZ_CASES=1000 $(SWIFT) test --sanitize=address --scratch-path .build-asan --filter 'GraftONNXTests|GraftHDF5Tests|GraftFuzzTests'

# A long fuzzing run with a fresh seed (GRAFT_FUZZ_CASES, GRAFT_FUZZ_SEED to repeat one;
# GRAFT_FUZZ_ONLY=N with both to replay case N); the input of the case that was running when it
# crashed is left in .build-fuzz/last.*.
fuzz: deps
	@mkdir -p .build-fuzz
	GRAFT_FUZZ_CASES=$${GRAFT_FUZZ_CASES:-100000} GRAFT_FUZZ_SEED=$${GRAFT_FUZZ_SEED:-$$(date +%s)} GRAFT_FUZZ_LAST=$(CURDIR)/.build-fuzz/last \
		$(SWIFT) test -c release --filter GraftFuzzTests

# Side by side with ONNX Runtime and OpenVINO (f32, OpenVINO's default precision, int8 QDQ) on
# the same model, same cores, rotating rounds; then transfer learning (trunk feature extraction,
# one head epoch) against PyTorch the same way, with the PyTorch venv of the tests.
bench: build fixtures
	$(PY) tools/bench_peers.py $(MATERIAL)/resnet50_bn.onnx --int8 $(INT8) --batch 1 --threads 2
	$(PY) tools/bench_peers.py $(MATERIAL)/resnet50_bn.onnx --int8 $(INT8) --batch 1 --threads 1
	$(PY) tools/bench_peers.py $(MATERIAL)/resnet50_bn.onnx --int8 $(INT8) --batch 8 --threads 2 --runs 5
	$(TORCH_PY) tools/bench_train_vs_torch.py $(MATERIAL)/resnet50_bn.onnx --threads 2

clean:
	rm -rf .build .build-fixtures .build-demo
