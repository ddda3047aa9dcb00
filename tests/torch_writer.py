"""Writes state dicts in torch's zip format (no torch needed) by emitting the pickle opcodes
that torch.save produces, so tests can exercise the reader and the checkpoint loader on
files with many tensors."""
import io
import pickle
import struct
import zipfile

import numpy as np

_STORAGE = {np.dtype(np.float32): "FloatStorage", np.dtype(np.float64): "DoubleStorage",
            np.dtype(np.int64): "LongStorage", np.dtype(np.float16): "HalfStorage"}


def _str(s: str) -> bytes:
    b = s.encode()
    return pickle.BINUNICODE + struct.pack("<I", len(b)) + b


def _int(n: int) -> bytes:
    return pickle.BININT + struct.pack("<i", n)


def _tuple(items: list[bytes]) -> bytes:
    return pickle.MARK + b"".join(items) + pickle.TUPLE


def state_dict_pickle(names_and_arrays: list[tuple[str, np.ndarray]]) -> bytes:
    out = [pickle.PROTO + b"\x02", pickle.GLOBAL + b"collections\nOrderedDict\n", pickle.EMPTY_TUPLE, pickle.REDUCE,
           pickle.MARK]
    for i, (name, a) in enumerate(names_and_arrays):
        stride = [s // a.itemsize for s in a.strides] if a.size else [1] * a.ndim
        pid = _tuple([_str("storage"), pickle.GLOBAL + f"torch\n{_STORAGE[a.dtype]}\n".encode(), _str(str(i)),
                      _str("cpu"), _int(a.size)])
        args = _tuple([pid + pickle.BINPERSID, _int(0), _tuple([_int(s) for s in a.shape]),
                       _tuple([_int(s) for s in stride]), pickle.NEWFALSE,
                       pickle.GLOBAL + b"collections\nOrderedDict\n" + pickle.EMPTY_TUPLE + pickle.REDUCE])
        out += [_str(name), pickle.GLOBAL + b"torch._utils\n_rebuild_tensor_v2\n", args, pickle.REDUCE]
    out += [pickle.SETITEMS, pickle.STOP]
    return b"".join(out)


def save_state_dict(path, state_dict: dict[str, np.ndarray], prefix: str = "archive") -> None:
    items = [(k, np.ascontiguousarray(v)) for k, v in state_dict.items()]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{prefix}/data.pkl", state_dict_pickle(items))
        z.writestr(f"{prefix}/byteorder", "little")
        for i, (_, a) in enumerate(items):
            z.writestr(f"{prefix}/data/{i}", a.astype(a.dtype.newbyteorder("<")).tobytes())
        z.writestr(f"{prefix}/version", "3\n")
    with open(path, "wb") as f:
        f.write(buf.getvalue())
