#!/usr/bin/env python3
# Makes the committed PyTorch checkpoint fixtures under fixtures/torch/. Run by hand (not in CI):
#     .venv-torch/bin/python tools/make_torch_fixtures.py
# Made with (Python 3.11, CPU only; no pretrained weights are downloaded):
# torch==2.15.0 torchvision==0.29.2 safetensors==0.7.0 onnx==1.23.2 numpy==2.4.6
#
# Two narrow torchvision ResNets (tools/make_hdf5_fixtures.py's narrow_resnet) of BasicBlocks at
# width 2, one with a transfer-learning head ending in LogSoftmax. Each takes one real Adam step
# (so a checkpoint's optimizer state is what training leaves), then goes to eval mode and has
# every floating tensor rounded to a value float16 and bfloat16 both hold exactly, so that the
# float16 and bfloat16 files read back as the very float32 the ONNX export carries. Each model is
# saved the ways people save state_dicts (below), every file is loaded back with torch.load
# (weights_only=True but for the protocol 1 and 4 files, which that mode refuses) and must equal
# what was saved, and the TorchScript ONNX export must hold every floating tensor as an
# initializer of the same name; the script exits non-zero otherwise. (The bench venv has no
# ONNX Runtime: the Swift tests run the exports against PyTorch's outputs instead.)
# fixtures/torch/bad/ holds the hostile corpus, hand-made with zipfile and pickle.
"""Builds the PyTorch checkpoint fixtures (.pth zip and legacy, checkpoints, hostile files)."""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import torch
from torch import nn
from torchvision.models.resnet import BasicBlock

# The helpers below need neither onnxruntime nor h5py, which the two fixture modules import at
# the top and the bench venv lacks; without onnxruntime the exports are checked by the Swift
# tests (they run the imported graphs against PyTorch's outputs) instead of here.
for missing in ("h5py", "onnxruntime"):
    try:
        __import__(missing)
    except ImportError:
        sys.modules[missing] = types.ModuleType(missing)

sys.path.insert(0, str(Path(__file__).resolve().parent))
# FAILURES is shared, as tools/make_hdf5_fixtures.py shares it.
from make_fixtures import FAILURES, exit_status, export_torchscript  # noqa: E402
from make_hdf5_fixtures import narrow_resnet  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "fixtures" / "torch"
BAD = OUT / "bad"


def fail(message: str) -> None:
    print("FAIL", message)
    FAILURES.append(message)


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------

def models() -> dict[str, nn.Module]:
    # BasicBlocks at width 2: layer1's block without a downsample, the other stages' with one.
    basic = narrow_resnet(BasicBlock, [1, 1, 1, 1], base=2, seed=11)
    # The seed's transfer-learning head on a width-2 trunk.
    head = narrow_resnet(BasicBlock, [1, 1, 1, 1], base=2, seed=12)
    torch.manual_seed(120)
    head.fc = nn.Sequential(nn.Dropout(0.5), nn.Linear(16, 12), nn.ReLU(), nn.Dropout(0.3),
                            nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 5), nn.LogSoftmax(dim=1))
    return {"basic": basic, "fc_head": head}


def adam_step(model: nn.Module, seed: int) -> torch.optim.Adam:
    """One training step, so BatchNorm statistics, num_batches_tracked and Adam's moments are
    what a real checkpoint holds."""
    g = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    loss = model(torch.randn(2, 3, 64, 64, generator=g)).square().mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    model.eval()
    return optimizer


def round_to_half_and_bfloat16(model: nn.Module) -> None:
    """Rounds every floating tensor to bfloat16 and then float16: the result is exact in both
    (at most 8 significant bits, within float16's range), so a reader that widens either to
    float32 gets the float32 state_dict bit for bit."""
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(t.bfloat16().half().float())


# --------------------------------------------------------------------------------------------
# The ways a state_dict is saved
# --------------------------------------------------------------------------------------------

def cast(state: dict, dtype: torch.dtype) -> collections.OrderedDict:
    return collections.OrderedDict((k, v.to(dtype) if v.is_floating_point() else v) for k, v in state.items())


def strided(state: dict) -> collections.OrderedDict:
    """The last Linear's weight and bias as views of one storage (the weight transposed, the bias
    at an offset), and conv1's weight channels-last: three tensors whose storage is not their
    row-major layout."""
    out = collections.OrderedDict(state)
    weight_key = [k for k in state if k.startswith("fc") and k.endswith(".weight")][-1]
    bias_key = weight_key[:-len("weight")] + "bias"
    w, b = state[weight_key], state[bias_key]
    shared = torch.cat([w.t().flatten(), b])
    out[weight_key] = shared[:w.numel()].view(w.shape[1], w.shape[0]).t()
    out[bias_key] = shared[w.numel():]
    out["conv1.weight"] = state["conv1.weight"].contiguous(memory_format=torch.channels_last)
    assert not out[weight_key].is_contiguous() and out[bias_key].storage_offset() == w.numel()
    assert not out["conv1.weight"].is_contiguous()
    return out


def save_all(name: str, model: nn.Module, optimizer: torch.optim.Adam) -> None:
    state = model.state_dict()
    files = {
        f"{name}.pth": (state, {}),
        f"{name}_legacy.pth": (state, {"_use_new_zipfile_serialization": False}),
        f"{name}_protocol4.pth": (state, {"pickle_protocol": 4}),
        f"{name}_f16.pth": (cast(state, torch.float16), {}),
        f"{name}_bf16.pth": (cast(state, torch.bfloat16), {}),
        f"{name}_checkpoint.pth": ({"epoch": 1, "model_state_dict": state,
                                    "optimizer_state_dict": optimizer.state_dict()}, {}),
        f"{name}_data_parallel.pth": (collections.OrderedDict(("module." + k, v) for k, v in state.items()), {}),
        f"{name}_strided.pth": (strided(state), {}),
    }
    for file, (obj, options) in files.items():
        torch.save(obj, OUT / file, **options)
        check_reload(OUT / file, obj)


def check_reload(path: Path, saved) -> None:
    # torch's weights-only unpickler reads only protocol 2's opcodes (no FRAME, no text INT): it
    # refuses the protocol 1 and 4 files its own torch.save wrote, which the full unpickler (safe
    # here: the file was just made) reads.
    loaded = torch.load(path, weights_only="protocol" not in path.name)
    flat_saved = saved["model_state_dict"] if "model_state_dict" in saved else saved
    flat_loaded = loaded["model_state_dict"] if "model_state_dict" in loaded else loaded
    same = list(flat_saved) == list(flat_loaded) and all(
        torch.equal(flat_saved[k], flat_loaded[k]) and flat_saved[k].dtype == flat_loaded[k].dtype
        for k in flat_saved)
    print(f"{'ok  ' if same else 'FAIL'} {path.name:34s} {path.stat().st_size:7d} bytes, loaded back by torch.load")
    if not same:
        fail(f"{path.name}: torch.load gives other tensors")


def check_initializers(path: Path, state: dict) -> None:
    """The TorchScript export without constant folding names its initializers by state_dict key."""
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}
    for key, tensor in state.items():
        if not tensor.is_floating_point():
            continue
        if key not in inits:
            fail(f"{path.name}: no initializer '{key}'")
        elif not np.array_equal(inits[key], tensor.numpy()):
            fail(f"{path.name}: initializer '{key}' differs from the state_dict")


def make_good() -> None:
    rng = np.random.Generator(np.random.PCG64(0))
    # The same input as fixtures/hdf5/input_b1.npy (same generator), which the tests read.
    x = torch.from_numpy(rng.standard_normal((1, 3, 224, 224), dtype=np.float32))
    for seed, (name, model) in enumerate(models().items()):
        optimizer = adam_step(model, seed=100 + seed)
        round_to_half_and_bfloat16(model)
        state = model.state_dict()
        for t in state.values():
            if t.is_floating_point() and not (torch.equal(t.half().float(), t) and torch.equal(t.bfloat16().float(), t)):
                fail(f"{name}: a tensor is not exact in float16 and bfloat16")
        with torch.no_grad():
            y = model(x).numpy()
        np.save(OUT / f"{name}.output_b1.npy", y.astype(np.float32))
        export_torchscript(model, x, OUT / f"{name}.onnx", 17, bn=True, dynamic=True)
        check_initializers(OUT / f"{name}.onnx", state)
        save_all(name, model, optimizer)
        if name == "fc_head":
            torch.jit.save(torch.jit.trace(model, x), OUT / "fc_head_torchscript.pt")


# --------------------------------------------------------------------------------------------
# Rarer forms of the format, on a toy state_dict
# --------------------------------------------------------------------------------------------

def toy_state() -> collections.OrderedDict:
    return collections.OrderedDict([("fc.weight", torch.arange(6.0).view(3, 2)), ("fc.bias", torch.ones(3)),
                                    ("steps", torch.tensor([1, 2, -3]))])


def big_endian(entries: list[tuple[str, bytes]], state: dict) -> list[tuple[str, bytes]]:
    """What torch.save writes on a big-endian machine: byteorder 'big', every storage swapped."""
    sizes = {f"archive/data/{i}": t.element_size() for i, t in enumerate(state.values())}
    out = []
    for name, data in entries:
        if name == "archive/byteorder":
            data = b"big"
        elif name in sizes:
            data = np.frombuffer(data, dtype=f"<u{sizes[name]}").byteswap().tobytes()
        out.append((name, data))
    return out


def zip64_everywhere(entries: list[tuple[str, bytes]]) -> bytes:
    """A zip archive whose every size and offset is in ZIP64 fields: local and central extra
    fields, the ZIP64 end record and its locator, the classic end record saturated."""
    local, central = bytearray(), bytearray()
    for name, data in entries:
        crc, encoded, offset = zipfile.crc32(data), name.encode(), len(local)
        local += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF, len(encoded), 20)
        local += encoded + struct.pack("<HHQQ", 1, 16, len(data), len(data)) + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                               len(encoded), 28, 0, 0, 0, 0, 0xFFFFFFFF)
        central += encoded + struct.pack("<HHQQQ", 1, 24, len(data), len(data), offset)
    end64 = len(local) + len(central)
    tail = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(entries), len(entries), len(central), len(local))
    tail += struct.pack("<IIQI", 0x07064B50, 0, end64, 1)
    tail += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return bytes(local + central + tail)


def make_toys() -> None:
    state = toy_state()
    saved = torch_saved(state)
    files = {
        "toy.pth": None,
        "toy_big_endian.pth": lambda: write_zip(OUT / "toy_big_endian.pth", big_endian(saved, state)),
        "toy_zip64.pth": lambda: (OUT / "toy_zip64.pth").write_bytes(zip64_everywhere(saved)),
        "toy_protocol1.pth": lambda: torch.save(state, OUT / "toy_protocol1.pth", pickle_protocol=1),
        "toy_legacy_protocol1.pth": lambda: torch.save(state, OUT / "toy_legacy_protocol1.pth", pickle_protocol=1,
                                                       _use_new_zipfile_serialization=False),
    }
    for file, make in files.items():
        if make is None:
            torch.save(state, OUT / file)
        else:
            make()
        check_reload(OUT / file, state)


# --------------------------------------------------------------------------------------------
# The hostile corpus
# --------------------------------------------------------------------------------------------

def write_zip(path: Path, entries: list[tuple[str, bytes]], deflate: tuple[str, ...] = ()) -> None:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries:
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED if name in deflate else zipfile.ZIP_STORED
            z.writestr(info, data)


def archive(root: str, pickle_bytes: bytes, storages: dict[str, bytes] | None = None) -> list[tuple[str, bytes]]:
    """The entries torch.save writes, around a hand-made data.pkl."""
    entries = [(f"{root}/data.pkl", pickle_bytes), (f"{root}/byteorder", b"little")]
    entries += [(f"{root}/data/{k}", v) for k, v in (storages or {}).items()]
    return entries + [(f"{root}/version", b"3\n")]


def unicode(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


class Storage:
    """Stands for a storage in a hand-made pickle: pickled as torch.save's persistent id."""

    def __init__(self, key: str, numel: int):
        self.key, self.numel = key, numel


class StoragePickler(pickle.Pickler):
    def __init__(self, file, legacy: bool):
        super().__init__(file, protocol=2)
        self.legacy = legacy

    def persistent_id(self, obj):
        if not isinstance(obj, Storage):
            return None
        pid = ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel)
        return pid + (None,) if self.legacy else pid


def tensor_pickle(storage: Storage, offset: int, size: tuple, stride: tuple, legacy=False) -> bytes:
    class View:
        def __reduce__(self):
            return torch._utils._rebuild_tensor_v2, (storage, offset, size, stride, False, collections.OrderedDict())
    buffer = io.BytesIO()
    StoragePickler(buffer, legacy).dump(collections.OrderedDict([("fc.weight", View())]))
    return buffer.getvalue()


def legacy_file(count: int, data: bytes) -> bytes:
    """The legacy format by hand (a storage keyed '0', not a memory address as torch.save would,
    so that the file is the same every time): magic number, protocol version, system
    information, objects, storage keys, then the storage's element count and elements."""
    system = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
    return (pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2) + pickle.dumps(1001, protocol=2)
            + pickle.dumps(system, protocol=2) + tensor_pickle(Storage("0", 6), 0, (3, 2), (2, 1), legacy=True)
            + pickle.dumps(["0"], protocol=2) + struct.pack("<q", count) + data)


class PosixSystem:
    def __reduce__(self):
        return os.system, ("touch /tmp/graft-pwned-posix-system",)


class Eval:
    def __reduce__(self):
        return eval, ("__import__('os').system('touch /tmp/graft-pwned-eval')",)


class Evil:
    """Pickled by protocol 2 as GLOBAL '__main__ Evil' + NEWOBJ + BUILD."""

    def __init__(self):
        self.command = "touch /tmp/graft-pwned-main-evil"


def torch_saved(obj) -> list[tuple[str, bytes]]:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as z:
        return [(i.filename, z.read(i)) for i in z.infolist()]


def make_bad() -> None:
    BAD.mkdir(parents=True, exist_ok=True)
    # Code execution: os.system by its public name (hand-made), as pickle names it on Linux
    # (posix.system), builtins.eval by protocol 4's STACK_GLOBAL, an instance of a script's class.
    os_system = (b"\x80\x02}" + unicode("fc.weight") + b"cos\nsystem\n"
                 + unicode("touch /tmp/graft-pwned-os-system") + b"\x85Rs.")
    write_zip(BAD / "os_system.pth", archive("os_system", os_system))
    write_zip(BAD / "posix_system.pth", archive("posix_system", pickle.dumps({"fc.weight": PosixSystem()}, protocol=2)))
    write_zip(BAD / "builtins_eval.pth", archive("builtins_eval", pickle.dumps({"fc.weight": Eval()}, protocol=4)))
    write_zip(BAD / "main_evil.pth", archive("main_evil", pickle.dumps({"fc.weight": Evil()}, protocol=2)))
    # REDUCE on an allowed name that is no function: torch.FloatStorage([1.0, 2.0]).
    reduce_storage = b"\x80\x02}" + unicode("fc.weight") + b"ctorch\nFloatStorage\n]G?\xf0\x00\x00\x00\x00\x00\x00a\x85Rs."
    write_zip(BAD / "reduce_storage_type.pth", archive("reduce_storage_type", reduce_storage))
    # Memo and bounds.
    write_zip(BAD / "memo_unset.pth", archive("memo_unset", b"\x80\x02}" + unicode("fc.weight") + b"h\x07s."))
    write_zip(BAD / "deep_lists.pth", archive("deep_lists", b"\x80\x02" + b"](" * 1500 + b"e" * 1500 + b"."))
    write_zip(BAD / "deep_tuples.pth", archive("deep_tuples", b"\x80\x02)" + b"\x85" * 1500 + b"."))
    write_zip(BAD / "long_stack.pth", archive("long_stack", b"\x80\x02" + b"N" * 70_000 + b"."))
    # Storages that do not hold their tensors.
    four = np.arange(4, dtype=np.float32).tobytes()
    write_zip(BAD / "short_storage.pth",
              archive("short_storage", tensor_pickle(Storage("0", 4), 0, (3, 2), (2, 1)), {"0": four}))
    write_zip(BAD / "offset_past_end.pth",
              archive("offset_past_end", tensor_pickle(Storage("0", 4), 10, (2,), (1,)), {"0": four}))
    write_zip(BAD / "truncated_storage.pth",
              archive("truncated_storage", tensor_pickle(Storage("0", 6), 0, (3, 2), (2, 1)), {"0": four}))
    state = collections.OrderedDict([("fc.weight", torch.arange(6.0).view(3, 2)), ("fc.bias", torch.ones(3))])
    saved = torch_saved(state)   # archive/data.pkl, archive/data/0, archive/data/1, ...
    write_zip(BAD / "missing_storage.pth", [(n, d) for n, d in saved if n != "archive/data/1"])
    write_zip(BAD / "deflated.pth", saved, deflate=("archive/data.pkl",))
    # Entry names that leave the archive.
    write_zip(BAD / "dotdot_entry.pth", saved + [("archive/../../etc/cron.d/graft", b"* * * * * root true\n")])
    write_zip(BAD / "absolute_entry.pth", [("/" + n, d) for n, d in saved])
    # Central directories that lie: its offset past the end; a local header that is not one.
    good = io.BytesIO()
    with zipfile.ZipFile(good, "w") as z:
        for n, d in saved:
            z.writestr(zipfile.ZipInfo(n), d)   # a fixed date: the same bytes every time
    data = bytearray(good.getvalue())
    eocd = data.rfind(b"PK\x05\x06")
    lying = bytearray(data)
    lying[eocd + 16:eocd + 20] = struct.pack("<I", len(data) + 1000)
    (BAD / "directory_past_end.pth").write_bytes(bytes(lying))
    crowded = bytearray(data)
    crowded[eocd + 8:eocd + 12] = struct.pack("<HH", 60000, 60000)
    (BAD / "directory_count_lies.pth").write_bytes(bytes(crowded))
    storage = zipfile.ZipFile(good).getinfo("archive/data/0").header_offset
    spoiled = bytearray(data)
    spoiled[storage:storage + 4] = b"PK\x07\x08"
    (BAD / "bad_local_header.pth").write_bytes(bytes(spoiled))
    renamed = bytearray(data)
    name = storage + 30 + len("archive/data/")
    assert renamed[name:name + 1] == b"0"
    renamed[name:name + 1] = b"7"
    (BAD / "renamed_local_header.pth").write_bytes(bytes(renamed))
    # A legacy file whose storage claims more elements than the file holds.
    (BAD / "legacy_count_past_end.pth").write_bytes(legacy_file(1 << 40, np.arange(6, dtype=np.float32).tobytes()))
    legacy = io.BytesIO(legacy_file(6, np.arange(6, dtype=np.float32).tobytes()))
    assert torch.equal(torch.load(legacy, weights_only=True)["fc.weight"], torch.arange(6.0).view(3, 2))


def write_readme() -> None:
    (OUT / "README.md").write_text("""# fixtures/torch

Made by `tools/make_torch_fixtures.py` (pinned versions in its header). Two torchvision ResNets
rebuilt narrow by `narrow_resnet` (tools/make_hdf5_fixtures.py), each after one Adam step (lr
1e-3) in train mode, then in eval mode with every floating tensor rounded to a value float16 and
bfloat16 both hold exactly. Every `.pth` loads back in PyTorch with `torch.load(weights_only=True)`
(the protocol 1 and 4 files with `weights_only=False`, the only mode that reads them) to the
tensors saved; every `.onnx` is the TorchScript export (`dynamo=False`, opset 17,
`training=TrainingMode.PRESERVE, do_constant_folding=False`, dynamic batch) whose initializers are
the state_dict's floating tensors by name. The input of both references is `fixtures/hdf5/input_b1.npy`.

- `basic` — `ResNet(BasicBlock, [1, 1, 1, 1])` at width 2, 10 classes (layer1's block without a downsample, the others with one).
- `fc_head` — `ResNet(BasicBlock, [1, 1, 1, 1])` at width 2 with `fc = Sequential(Dropout(0.5), Linear(16, 12), ReLU, Dropout(0.3), Linear(12, 8), ReLU, Linear(8, 5), LogSoftmax(dim=1))`.

For each model `<m>`: `<m>.pth` (`torch.save(model.state_dict())`), `<m>_legacy.pth`
(`_use_new_zipfile_serialization=False`), `<m>_protocol4.pth` (`pickle_protocol=4`), `<m>_f16.pth`
and `<m>_bf16.pth` (floating tensors cast), `<m>_checkpoint.pth` (`{"epoch": 1,
"model_state_dict", "optimizer_state_dict"}` of the Adam step), `<m>_data_parallel.pth` (keys
prefixed `module.`), `<m>_strided.pth` (the last Linear's weight a transposed view and its bias at an
offset, both in one storage; `conv1.weight` channels-last), `<m>.onnx`, `<m>.output_b1.npy`
(PyTorch's output). `fc_head_torchscript.pt` — `torch.jit.save` of the traced `fc_head`.

`toy.pth` — `{"fc.weight": arange(6).view(3, 2), "fc.bias": ones(3), "steps": int64 [1, 2, -3]}`, and
the same as rarer forms of the format: `toy_big_endian.pth` (byteorder `big`, every storage
byte-swapped, as a big-endian machine writes it), `toy_zip64.pth` (every size and offset in ZIP64
fields), `toy_protocol1.pth` and `toy_legacy_protocol1.pth` (`pickle_protocol=1`: text integers).

`bad/` — the hostile corpus, each refused with its own message: `os_system.pth` (GLOBAL `os
system`), `posix_system.pth` (`os.system` as pickle names it), `builtins_eval.pth` (protocol 4
STACK_GLOBAL), each of which would run `touch /tmp/graft-pwned-<name>` in an unrestricted
unpickler; `main_evil.pth` (an instance of a script's class `__main__.Evil`); `reduce_storage_type.pth` (REDUCE on
`torch.FloatStorage`), `memo_unset.pth` (BINGET of an unwritten memo slot), `deep_lists.pth` (lists
nested 1500 deep), `deep_tuples.pth` (tuples nested 1500 deep), `long_stack.pth` (70000 values on the
stack), `short_storage.pth` (a 3x2 view of a 4-element storage), `offset_past_end.pth` (storage offset
10 of 4), `truncated_storage.pth` (a storage entry shorter than its persistent id says),
`missing_storage.pth` (no `archive/data/1`), `deflated.pth` (`data.pkl` compressed),
`dotdot_entry.pth` and `absolute_entry.pth` (entry names leaving the archive),
`directory_past_end.pth` (the central directory's offset past the end),
`directory_count_lies.pth` (60000 entries claimed), `bad_local_header.pth`
(`archive/data/0`'s local header signature spoiled), `renamed_local_header.pth` (its local header
naming `archive/data/7`), `legacy_count_past_end.pth` (a legacy file, made by hand as torch.save
makes it, whose storage claims 2^40 elements).
""")


def main() -> int:
    import torchvision
    print(f"torch {torch.__version__} torchvision {torchvision.__version__} onnx {onnx.__version__} numpy {np.__version__}")
    OUT.mkdir(parents=True, exist_ok=True)
    for p in list(OUT.glob("*")) + list(BAD.glob("*")):
        if p.is_file():
            p.unlink()
    make_good()
    make_toys()
    make_bad()
    write_readme()
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"fixtures/torch: {total} bytes")
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
