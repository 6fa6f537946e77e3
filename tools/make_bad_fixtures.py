#!/usr/bin/env python3
# Writes the small malformed, unsupported or hostile inputs of fixtures/bad/ (ONNX models,
# HDF5 state_dicts, .npy arrays), each with the error Graft must give for it (the tests,
# Tests/GraftCLITests/BadInputTests.swift and SafetyTests.swift, hold the expected messages).
#
#     .venv/bin/python tools/make_bad_fixtures.py      # onnx==1.23.2, h5py==3.16.0, numpy==2.4.6
#                                                     # (tools/requirements-test.txt)
"""Write fixtures/bad/*.onnx, *.h5, *.npy."""

from pathlib import Path

import h5py
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures" / "bad"


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
    more_onnx(x, y)
    hdf5()
    npy()
    print("wrote", ", ".join(sorted(p.name for p in OUT.iterdir() if p.suffix in (".onnx", ".data", ".h5", ".npy", ".bin"))))


def external(name, location, offset=0, length=None, shape=(1, 4)):
    """A float32 initializer whose data is said to lie in `location`."""
    t = numpy_helper.from_array(np.zeros(shape, np.float32), name)
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    entries = [("location", location), ("offset", str(offset))]
    if length is not None:
        entries.append(("length", str(length)))
    for key, value in entries:
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    return t


def more_onnx(x, y):
    add = [helper.make_node("Add", ["x", "w"], ["y"], name="add")]
    # No opset of the default domain at all, and opset 0.
    no_opset = model([helper.make_node("Relu", ["x"], ["y"], name="act")], [x], [y])
    del no_opset.opset_import[:]
    no_opset.opset_import.append(helper.make_opsetid("com.example", 1))
    onnx.save(no_opset, OUT / "missing_opset.onnx")
    onnx.save(model([helper.make_node("Relu", ["x"], ["y"], name="act")], [x], [y], opset=0), OUT / "opset_zero.onnx")
    # Dims that are negative, that multiply past any file, and past what raw_data holds.
    negative = helper.make_tensor("w", TensorProto.FLOAT, [1, 4], b"\0" * 16, raw=True)
    negative.dims[1] = -4
    onnx.save(model(add, [x], [y], [negative]), OUT / "negative_dims.onnx")
    huge = helper.make_tensor("w", TensorProto.FLOAT, [1, 4], b"\0" * 16, raw=True)
    huge.dims[:] = [1 << 40, 1 << 40]
    onnx.save(model(add, [x], [y], [huge]), OUT / "huge_dims.onnx")
    past = helper.make_tensor("w", TensorProto.FLOAT, [1, 4], b"\0" * 16, raw=True)
    past.dims[:] = [65536, 65536]
    onnx.save(model(add, [x], [y], [past]), OUT / "dims_past_raw_data.onnx")
    long = helper.make_tensor("w", TensorProto.FLOAT, [1, 4], b"\0" * 16, raw=True)
    long.raw_data = b"\0" * 20
    onnx.save(model(add, [x], [y], [long]), OUT / "long_raw_data.onnx")
    # A declared input no one could hold.
    onnx.save(model([helper.make_node("Relu", ["x"], ["y"], name="act")], [tensor("x", [1 << 20, 1 << 20])], [y]),
              OUT / "huge_input.onnx")
    # External data: an absolute location, a missing file, a short file, an offset past its
    # end, a length that does not match, dims that multiply past the file.
    (OUT / "weights.bin").write_bytes(b"\0" * 8)
    for name, t in {
        "absolute_external_data.onnx": external("w", "/etc/passwd"),
        "missing_external_data.onnx": external("w", "missing.bin"),
        "short_external_data.onnx": external("w", "weights.bin"),
        "external_offset_past_end.onnx": external("w", "weights.bin", offset=1 << 40),
        "external_length_mismatch.onnx": external("w", "weights.bin", length=8),
        "external_dims_past_file.onnx": external("w", "weights.bin", shape=(1, 4)),
    }.items():
        if name == "external_dims_past_file.onnx":
            t.dims[:] = [1 << 16, 1 << 16]
        onnx.save(model(add, [x], [y], [t]), OUT / name)
    # Data-dependent sizes that would allocate terabytes: ConstantOfShape, Pad, Conv padding;
    # a Reshape to a target that multiplies past any tensor.
    shape = numpy_helper.from_array(np.array([1 << 20, 1 << 20], np.int64), "shape")
    onnx.save(model([helper.make_node("ConstantOfShape", ["shape"], ["c"], name="fill"),
                     helper.make_node("Add", ["x", "c"], ["y"], name="add")], [x], [y], [shape]), OUT / "huge_constant_of_shape.onnx")
    pads = numpy_helper.from_array(np.array([0, 0, 0, 1 << 40], np.int64), "pads")
    onnx.save(model([helper.make_node("Pad", ["x", "pads"], ["y"], name="pad")], [x], [y], [pads]), OUT / "huge_pad.onnx")
    target = numpy_helper.from_array(np.array([1 << 40, 1 << 40], np.int64), "target")
    onnx.save(model([helper.make_node("Reshape", ["x", "target"], ["y"], name="reshape")], [x], [y], [target]), OUT / "huge_reshape.onnx")
    image = tensor("image", [1, 1, 4, 4])
    kernel = numpy_helper.from_array(np.ones((1, 1, 1, 1), np.float32), "kernel")
    onnx.save(model([helper.make_node("Conv", ["image", "kernel"], ["y"], name="conv", pads=[1 << 30] * 4)],
                    [image], [tensor("y", [1, 1, 4, 4])], [kernel]), OUT / "huge_conv_pads.onnx")


def hdf5():
    """Hostile state_dicts made from fixtures/hdf5/tiny.h5 (torchvision BasicBlock [1, 1, 1, 1], 3 classes)."""
    with h5py.File(ROOT / "fixtures" / "hdf5" / "tiny.h5", "r") as f:
        tiny = {k: f[k][()] for k in f.keys()}

    def write(name, replace):
        with h5py.File(OUT / name, "w") as f:
            for key, value in tiny.items():
                if key not in replace:
                    f.create_dataset(key, data=value)
            for key, make in replace.items():
                make(f, key)

    # Data outside the file: an external link, external raw storage, a virtual dataset.
    write("hdf5_external_link.h5", {"conv1.weight": lambda f, k: f.__setitem__(k, h5py.ExternalLink("elsewhere.h5", "/conv1.weight"))})
    weight = tiny["conv1.weight"]
    (OUT / "conv1.bin").write_bytes(weight.tobytes())
    write("hdf5_external_storage.h5", {"conv1.weight": lambda f, k: f.create_dataset(
        k, shape=weight.shape, dtype=weight.dtype, external=[("conv1.bin", 0, weight.nbytes)])})

    def virtual(f, k):
        layout = h5py.VirtualLayout(shape=weight.shape, dtype=weight.dtype)
        layout[...] = h5py.VirtualSource("elsewhere.h5", "/conv1.weight", shape=weight.shape)
        f.create_virtual_dataset(k, layout)
    write("hdf5_virtual_dataset.h5", {"conv1.weight": virtual})
    # A weight declared but never written (it would read as fill values), and one declared
    # with a shape no file could hold (2**31 classes: 128 GiB of fc.weight).
    fc = tiny["fc.weight"]
    write("hdf5_unwritten_dataset.h5", {"fc.weight": lambda f, k: f.create_dataset(k, shape=fc.shape, dtype=fc.dtype)})
    write("hdf5_huge_dataset.h5", {
        "fc.weight": lambda f, k: f.create_dataset(k, shape=(1 << 31, fc.shape[1]), dtype=fc.dtype),
        "fc.bias": lambda f, k: f.create_dataset(k, shape=(1 << 31,), dtype=fc.dtype),
    })

    # Groups that link back to themselves twice: a walk that would never end.
    def cycle(f, k):
        group = f.create_group("loop")
        group["a"] = h5py.SoftLink("/loop")
        group["b"] = h5py.SoftLink("/loop")
    write("hdf5_link_cycle.h5", {"loop": cycle})

    # No cycle, but 2**40 paths: 40 groups, each linked twice from the one before.
    def fanout(f, k):
        groups = [f.create_group(f"g{i}") for i in range(40)]
        for parent, child in zip(groups, groups[1:]):
            parent["a"] = child
            parent["b"] = child
    write("hdf5_link_fanout.h5", {"fanout": fanout})


def npy():
    """.npy inputs for fixtures/tiny models ([1, 3, 64, 64] float32) that are wrong one way each."""
    x = np.zeros((1, 3, 8, 8), np.float32)  # the types are refused before the shape is looked at
    np.save(OUT / "int64_input.npy", x.astype(np.int64))
    np.save(OUT / "int16_input.npy", x.astype(np.int16))
    np.save(OUT / "wrong_shape_input.npy", np.zeros((1, 3, 32, 32), np.float32))
    np.save(OUT / "fortran_input.npy", np.asfortranarray(np.zeros((2, 3), np.float32)))
    good = (OUT / "wrong_shape_input.npy").read_bytes()
    (OUT / "truncated_input.npy").write_bytes(good[:200])
    header = b"{'descr': '<f4', 'fortran_order': False, }"
    header += b" " * (64 - 10 - len(header) - 1) + b"\n"
    (OUT / "no_shape_input.npy").write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header)


if __name__ == "__main__":
    main()
