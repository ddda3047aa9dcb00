"""The safe .pth reader: real torch files load exactly, hostile and broken ones are refused
without running anything. Fixtures: ../shared/golden/torch_files (or $TRYON_TORCH_FILES), plus
files built here."""
import os
import pickle
import tempfile
import zipfile

import numpy as np
import pytest

from tests.golden import golden
from tryon_jax.weights.convert import read_torch_checkpoint
from tryon_jax.weights.torch_pickle import CheckpointError

FOLDER = golden.golden_dir("TRYON_TORCH_FILES", "torch_files")
FIXTURES = sorted(p.name for p in FOLDER.glob("*.pth")) if FOLDER.is_dir() else []


def _expected(name):
    return golden.load_json(FOLDER / f"{name}.json")["expected_reader_behaviour"]


def _check_content(got, want, where="root"):
    """Compare a loaded object with the fixture's 'content' description."""
    if isinstance(want, dict) and ("__tensor__" in want or {"dtype", "shape", "sum"} <= set(want)):
        t = want.get("__tensor__", want)
        assert isinstance(got, np.ndarray), f"{where}: expected a tensor"
        assert str(got.dtype) == t["dtype"], f"{where}: dtype {got.dtype} != {t['dtype']}"
        assert list(got.shape) == t["shape"], where
        flat = got.reshape(-1)
        if t["dtype"] in ("bool",):
            assert int(flat.sum()) == t["sum"], where
        elif t["dtype"].startswith(("int", "uint")):
            assert sum(int(v) for v in flat) == t["sum"], where
            assert sum(int(v) ** 2 for v in flat) == t["sumsq"], where
        else:
            f64 = flat.astype(np.float64)
            np.testing.assert_allclose(f64.sum(), t["sum"], rtol=1e-9, atol=1e-9, err_msg=where)
            np.testing.assert_allclose((f64 * f64).sum(), t["sumsq"], rtol=1e-9, atol=1e-9, err_msg=where)
        first = flat[:4].astype(np.float64).tolist() if flat.dtype != bool else flat[:4].tolist()
        np.testing.assert_allclose(first, t["first_values"], rtol=0, atol=0, err_msg=where)
        return
    if isinstance(want, dict) and "__type__" in want:
        kind = want["__type__"]
        if kind in ("dict", "OrderedDict"):
            assert isinstance(got, dict), f"{where}: expected a dict"
            keys = [k["value"] if isinstance(k, dict) and "__key_type__" in k else k for k, _ in want["items"]]
            assert list(got.keys()) == keys, f"{where}: keys differ"
            for k, (_, v) in zip(keys, want["items"]):
                _check_content(got[k], v, f"{where}.{k}")
            return
        if kind in ("list", "tuple"):
            assert isinstance(got, list if kind == "list" else tuple), f"{where}: expected a {kind}"
            assert len(got) == len(want["items"]), where
            for i, (g, w) in enumerate(zip(got, want["items"])):
                _check_content(g, w, f"{where}[{i}]")
            return
        raise AssertionError(f"{where}: unknown content type {kind}")
    if isinstance(want, dict):  # a plain mapping of names to described values
        assert isinstance(got, dict) and list(got) == list(want), f"{where}: keys differ"
        for k, v in want.items():
            _check_content(got[k], v, f"{where}.{k}")
        return
    assert got == want, f"{where}: {got!r} != {want!r}"


@pytest.mark.parametrize("name", FIXTURES or ["absent"])
def test_fixture(name, tmp_path, monkeypatch):
    if name == "absent":
        pytest.skip(f"torch file fixtures not found in {FOLDER}")
    marker = os.path.join(tempfile.gettempdir(), "pwned_marker")  # where the payloads would write
    existed = os.path.exists(marker)
    expected = _expected(name)
    monkeypatch.chdir(tmp_path)
    if expected.startswith("load ok"):
        obj = read_torch_checkpoint(FOLDER / name)
        _check_content(obj, golden.load_json(FOLDER / f"{name}.json")["content"])
    else:
        with pytest.raises(CheckpointError) as info:
            read_torch_checkpoint(FOLDER / name)
        assert name in str(info.value), "the error must name the file"
    assert os.path.exists(marker) == existed


def _zip_pth(path, pkl: bytes, records: dict[str, bytes] | None = None):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/byteorder", "little")
        for k, v in (records or {}).items():
            z.writestr(f"archive/data/{k}", v)


def test_refuses_unknown_globals_built_here(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > pwned.txt",))
    for proto in (0, 2, 4, 5):
        path = tmp_path / f"evil{proto}.pth"
        _zip_pth(path, pickle.dumps({"x": Evil()}, protocol=proto))
        with pytest.raises(CheckpointError, match="os.system|posix.system|nt.system"):
            read_torch_checkpoint(path)
    assert not (tmp_path / "pwned.txt").exists()


def test_views_share_storage_and_are_bounds_checked():
    from tryon_jax.weights import torch_pickle
    base = np.arange(6, dtype=np.float32)
    ref = torch_pickle._StorageRef("0", torch_pickle._StorageType("FloatStorage"), 6)
    view = torch_pickle._Tensor(ref, 1, (2, 2), (1, 2))
    out = torch_pickle._materialize({"a": view}, {"0": base}, "x")
    np.testing.assert_array_equal(out["a"], [[1, 3], [2, 4]])
    beyond = torch_pickle._Tensor(ref, 4, (2, 2), (1, 2))
    with pytest.raises(CheckpointError, match="exceeds"):
        torch_pickle._materialize({"a": beyond}, {"0": base}, "x")


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "random.pth"
    path.write_bytes(os.urandom(256))
    with pytest.raises(CheckpointError, match="random.pth"):
        read_torch_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        read_torch_checkpoint(tmp_path / "missing.pth")
