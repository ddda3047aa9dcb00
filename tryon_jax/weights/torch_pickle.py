"""Read PyTorch .pth files (zip and legacy formats) without torch and without running pickle code.

A restricted unpickler resolves only the globals a tensor checkpoint needs (OrderedDict, the
tensor/parameter rebuild functions and the typed storage names) to functions of this module.
Every other global, including those hidden inside persistent ids, is refused before anything
runs. Storages are read once and tensors are built as strided views of them, then copied.
"""
import io
import os
import pickle
import struct
import zipfile
from collections import OrderedDict

import ml_dtypes
import numpy as np

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_, "ComplexFloatStorage": np.complex64, "ComplexDoubleStorage": np.complex128,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_LEGACY_HEAD = b"\x80\x02\x8a\x0a" + _LEGACY_MAGIC.to_bytes(10, "little")  # PROTO 2, LONG1 magic


class CheckpointError(ValueError):
    """A .pth file that is refused (unsafe content) or cannot be read (truncated, corrupt)."""


class _StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Tensor:
    """A tensor waiting for its storage bytes: (storage key, offset, size, stride)."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)


class _StorageRef:
    def __init__(self, key, stype, numel, view=None):
        self.key, self.stype, self.numel, self.view = key, stype, numel, view


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    if not isinstance(storage, _StorageRef):
        raise pickle.UnpicklingError("tensor rebuilt from something that is not a storage")
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    if not isinstance(data, _Tensor):
        raise pickle.UnpicklingError("parameter rebuilt from something that is not a tensor")
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, path, persistent):
        super().__init__(file)
        self._path, self._persistent = path, persistent

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        hint = ""
        if module.startswith("torch.nn"):
            hint = "; whole-module checkpoints are not supported, save model.state_dict() instead"
        raise CheckpointError(f"{self._path}: pickle references global {module}.{name}, which a "
                              f"weights file does not need; refusing to load it{hint}")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
            raise CheckpointError(f"{self._path}: unexpected persistent id {pid!r}")
        stype, key, _, numel = pid[1:5]
        if not isinstance(stype, _StorageType) or not isinstance(numel, int) or numel < 0:
            raise CheckpointError(f"{self._path}: malformed storage reference {pid!r}")
        view = pid[5] if len(pid) > 5 else None
        return self._persistent(_StorageRef(str(key), stype, numel, view))


def _unpickle(data_or_file, path, persistent=lambda ref: ref):
    file = io.BytesIO(data_or_file) if isinstance(data_or_file, bytes) else data_or_file
    try:
        return _RestrictedUnpickler(file, path, persistent).load()
    except CheckpointError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError,
            AttributeError, struct.error, MemoryError, RecursionError) as e:
        raise CheckpointError(f"{path}: truncated or corrupt pickle in .pth file ({type(e).__name__}: {e})") from e


def _materialize(obj, storages, path):
    """Replace _Tensor placeholders by numpy arrays; OrderedDicts become dicts (order kept)."""
    if isinstance(obj, _Tensor):
        ref = obj.storage
        base = storages[ref.key]
        if ref.view is not None:
            view_key, offset, count = ref.view
            base = storages[str(view_key)][offset:offset + count]
        count = int(np.prod(obj.size)) if obj.size else 1
        if count == 0:
            return np.zeros(obj.size, base.dtype)
        last = obj.offset + sum((s - 1) * st for s, st in zip(obj.size, obj.stride))
        if obj.offset < 0 or min(obj.stride, default=0) < 0 or last >= base.size:
            raise CheckpointError(f"{path}: tensor view exceeds its storage {ref.key!r}")
        item = base.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(base[obj.offset:], shape=obj.size,
                                               strides=tuple(s * item for s in obj.stride), writeable=False)
        return np.array(view)
    if isinstance(obj, dict):
        return {k: _materialize(v, storages, path) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_materialize(v, storages, path) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_materialize(v, storages, path) for v in obj)
    return obj


def _read_zip(path):
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise CheckpointError(f"{path}: truncated or corrupt .pth (zip central directory not found)") from e
    with archive:
        names = archive.namelist()
        pkls = sorted((n for n in names if n == "data.pkl" or n.endswith("/data.pkl")), key=len)
        if not pkls:
            raise CheckpointError(f"{path}: zip file has no data.pkl record; not a torch checkpoint")
        prefix = pkls[0][: -len("data.pkl")]
        order = "little"
        if prefix + "byteorder" in names:
            order = archive.read(prefix + "byteorder").decode().strip()
        refs: dict[str, _StorageRef] = {}

        def remember(ref):
            known = refs.setdefault(ref.key, ref)
            if known.stype.dtype != ref.stype.dtype:
                raise CheckpointError(f"{path}: storage {ref.key!r} referenced with two dtypes")
            return ref

        obj = _unpickle(_read_member(archive, prefix + "data.pkl", path), path, remember)
        storages = {}
        for key, ref in refs.items():
            name = f"{prefix}data/{key}"
            if name not in names:
                raise CheckpointError(f"{path}: record {name!r} is missing (truncated or corrupt .pth)")
            raw = _read_member(archive, name, path)
            want = ref.numel * ref.stype.dtype.itemsize
            if len(raw) != want:
                raise CheckpointError(f"{path}: record {name!r} has {len(raw)} bytes, its storage needs {want}")
            storages[key] = _as_array(raw, ref.stype.dtype, order)
    return _materialize(obj, storages, path)


def _read_member(archive, name, path):
    try:
        return archive.read(name)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise CheckpointError(f"{path}: cannot read record {name!r} (truncated or corrupt .pth: {e})") from e


def _as_array(raw: bytes, dtype: np.dtype, order: str) -> np.ndarray:
    if order not in ("little", "big"):
        raise CheckpointError(f"unknown byteorder {order!r}")
    array = np.frombuffer(raw, dtype=dtype.newbyteorder("<" if order == "little" else ">") if dtype.itemsize > 1
                          else dtype)
    return array.astype(dtype, copy=False) if array.dtype != dtype else array


def _read_legacy(path):
    with open(path, "rb") as f:
        if f.read(len(_LEGACY_HEAD)) != _LEGACY_HEAD:
            raise CheckpointError(f"{path}: not a torch checkpoint (neither a zip file nor the legacy format)")
        f.seek(0)
        magic = _unpickle(f, path)
        if magic != _LEGACY_MAGIC:
            raise CheckpointError(f"{path}: not a torch checkpoint (neither a zip file nor the legacy magic number)")
        protocol = _unpickle(f, path)
        if protocol != _LEGACY_PROTOCOL:
            raise CheckpointError(f"{path}: unsupported legacy protocol version {protocol!r}")
        sys_info = _unpickle(f, path)
        if not isinstance(sys_info, dict) or not sys_info.get("little_endian", True):
            raise CheckpointError(f"{path}: big-endian legacy checkpoints are not supported")
        refs: dict[str, _StorageRef] = {}
        obj = _unpickle(f, path, lambda ref: refs.setdefault(ref.key, ref) and ref)
        keys = _unpickle(f, path)
        if not isinstance(keys, list):
            raise CheckpointError(f"{path}: corrupt legacy storage list")
        storages = {}
        for key in keys:
            key = str(key)
            if key not in refs:
                raise CheckpointError(f"{path}: storage {key!r} is listed but never referenced")
            dtype = refs[key].stype.dtype
            head = f.read(8)
            if len(head) != 8:
                raise CheckpointError(f"{path}: truncated .pth (storage {key!r} header missing)")
            count = int.from_bytes(head, "little", signed=True)
            raw = f.read(count * dtype.itemsize)
            if count < 0 or len(raw) != count * dtype.itemsize:
                raise CheckpointError(f"{path}: truncated .pth (storage {key!r} needs {count * dtype.itemsize} "
                                      f"bytes, {len(raw)} left)")
            storages[key] = _as_array(raw, dtype, "little")
        missing = set(refs) - set(storages)
        if missing:
            raise CheckpointError(f"{path}: storages {sorted(missing)} are referenced but not in the file")
    return _materialize(obj, storages, path)


def read_torch_checkpoint(path) -> dict:
    """Read a .pth file written by torch.save; tensors come back as numpy arrays.

    A state_dict file gives ``dict[str, np.ndarray]``; nested checkpoints keep their structure
    (dicts, lists, tuples, numbers, strings). Raises CheckpointError naming the file for
    anything unsafe (globals other than tensor rebuilding), truncated or inconsistent.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] == b"PK":
        return _read_zip(path)
    return _read_legacy(path)
