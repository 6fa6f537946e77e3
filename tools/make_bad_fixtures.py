#!/usr/bin/env python3
# Writes the small malformed or unsupported ONNX models of fixtures/bad/, each with the error
# Graft must give for it (the tests hold the expected messages).
#
#     .venv/bin/python tools/make_bad_fixtures.py      # onnx==1.23.2 (tools/requirements-test.txt)
"""Write fixtures/bad/*.onnx."""

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = Path(__file__).resolve().parent.parent / "fixtures" / "bad"


def model(nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(nodes, "bad", inputs, outputs, list(initializers))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="make_bad_fixtures")
    m.ir_version = 8
    return m


def tensor(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    x, y = tensor("x", [1, 4]), tensor("y", [1, 4])
    cases = {
        # An op outside the supported set.
        "unsupported_op.onnx": model([helper.make_node("Einsum", ["x", "x"], ["y"], name="mix", equation="ij,ij->ij")], [x], [y]),
        # A supported op with an attribute Graft does not know.
        "unsupported_attribute.onnx": model([helper.make_node("Relu", ["x"], ["y"], name="act", alpha=0.5)], [x], [y]),
        # An opset newer than Graft's translators follow.
        "future_opset.onnx": model([helper.make_node("Relu", ["x"], ["y"], name="act")], [x], [y], opset=99),
        # A node reading a value nothing produces.
        "dangling_input.onnx": model([helper.make_node("Add", ["x", "ghost"], ["y"], name="add")], [x], [y]),
        # Two nodes feeding each other.
        "cycle.onnx": model([helper.make_node("Add", ["x", "b"], ["a"], name="first"),
                             helper.make_node("Relu", ["a"], ["b"], name="second"),
                             helper.make_node("Identity", ["a"], ["y"], name="out")], [x], [y]),
        # A string tensor, a type Graft does not compute with.
        "string_initializer.onnx": model([helper.make_node("Identity", ["x"], ["y"], name="id")], [x], [y],
                                         [helper.make_tensor("names", TensorProto.STRING, [1], [b"cat"])]),
    }
    for name, m in cases.items():
        onnx.save(m, OUT / name)
    # raw_data shorter than the dims say (onnx.helper refuses to build it, so cut it after).
    short = helper.make_tensor("w", TensorProto.FLOAT, [1, 4], b"\0" * 16, raw=True)
    short.raw_data = b"\0" * 8
    onnx.save(model([helper.make_node("Add", ["x", "w"], ["y"], name="add")], [x], [y], [short]), OUT / "short_raw_data.onnx")
    # External data whose location escapes the model's folder.
    w = numpy_helper.from_array(np.zeros((1, 4), np.float32), "w")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../../etc/passwd"), ("offset", "0"), ("length", "16")):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    onnx.save(model([helper.make_node("Add", ["x", "w"], ["y"], name="add")], [x], [y], [w]), OUT / "escaping_external_data.onnx")
    print("wrote", ", ".join(sorted(p.name for p in OUT.glob("*.onnx"))))


if __name__ == "__main__":
    main()
