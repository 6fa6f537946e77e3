#!/usr/bin/env bash
# Checks that another package can depend on Graft by version, as SwiftPM resolves it for a user:
# the working tree (tracked and new files, not ignored ones) is copied into a fresh repository
# tagged 0.1.0, a consumer package depending on it with `from: "0.1.0"` (SwiftPM refuses unsafe
# compiler flags in such a dependency) is built in release against the `Graft` library and, through
# its facade, runs a fixture ONNX model and its `.pth` (compared with PyTorch's output) and
# classifies an image.
#
#     tools/check_consumer_package.sh    (prints "consumer: ok ..." and exits 0 when it works)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/graft-consumer.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# The package as it would be published: what git tracks or would add, minus the fixtures (the
# consumer reads the ones it needs from here) and files deleted from the working tree.
mkdir "$WORK/graft"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do [[ -f "$f" && "$f" != fixtures/* ]] && printf '%s\0' "$f"; done \
    | tar --null -T - -cf -) | tar -xf - -C "$WORK/graft"
(cd "$WORK/graft" && git init -q && git add -A \
    && git -c user.name=consumer-check -c user.email=consumer-check@localhost commit -qm "Graft" && git tag 0.1.0)

mkdir -p "$WORK/consumer/Sources/consumer"
cat > "$WORK/consumer/Package.swift" <<SWIFT
// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "consumer",
    dependencies: [.package(url: "file://$WORK/graft", from: "0.1.0")],
    targets: [
        .executableTarget(name: "consumer", dependencies: [.product(name: "Graft", package: "graft")]),
    ]
)
SWIFT
cat > "$WORK/consumer/Sources/consumer/main.swift" <<'SWIFT'
import Foundation
import Graft

// consumer MODEL INPUT.npy EXPECTED.npy IMAGE: runs the model on the input and compares with the
// expected output, then classifies the image.
let arguments = CommandLine.arguments
let model = try Model(contentsOf: URL(fileURLWithPath: arguments[1]))
let input = try Tensor(npyAt: arguments[2]), expected = try Tensor(npyAt: arguments[3])
let output = try model.run([model.inputs[0].name: input])[model.outputs[0].name]!
guard output.shape == expected.shape else { fatalError("shape \(output.shape), expected \(expected.shape)") }
// |Δ| ≤ 1e-4 + 1e-3·|expected| everywhere.
let worst = zip(output.floats, expected.floats).map { abs($0 - $1) / (1e-4 + 1e-3 * abs($1)) }.max() ?? 0
guard worst <= 1 else { fatalError("output differs: worst |Δ|/tolerance \(worst)") }
let top = try model.classify(imageAt: URL(fileURLWithPath: arguments[4]), topK: 3)
guard top.count == 3, top[0].score >= top[1].score else { fatalError("classification: \(top)") }
print("consumer: ok, \(output.shape), worst |Δ|/tolerance \(worst), top class \(top[0].label) \(top[0].score)")
SWIFT

cd "$WORK/consumer"
swift build -c release 2>&1 | tail -n 20
bin="$(swift build -c release --show-bin-path)/consumer"
"$bin" "$ROOT/fixtures/tiny/ts_opset17_bn.onnx" "$ROOT/fixtures/tiny/input_b1.npy" "$ROOT/fixtures/tiny/output_b1.npy" \
    "$ROOT/fixtures/images/gray_123x77.jpg"
"$bin" "$ROOT/fixtures/torch/basic.pth" "$ROOT/fixtures/hdf5/input_b1.npy" "$ROOT/fixtures/torch/basic.output_b1.npy" \
    "$ROOT/fixtures/images/gray_123x77.jpg"
