"""Shared helpers of the golden tests: where the golden folders are, the recipe weights they
were made with, NCHW->NHWC, and a comparison log that refuses to pass when nothing was compared."""
import functools
import json
import os
from pathlib import Path

import numpy as np
import pytest

from tryon_jax.weights import convert, recipe

REPO = Path(__file__).resolve().parents[2]


def golden_dir(env: str, name: str) -> Path:
    """$env, else ../shared/golden/<name> next to the repository."""
    value = os.environ.get(env)
    return Path(value) if value else REPO.parent / "shared" / "golden" / name


def require(folder: Path, *files: str) -> Path:
    if not folder.is_dir():
        pytest.skip(f"golden folder {folder} is absent")
    for f in files:
        if not (folder / f).exists():
            pytest.skip(f"golden file {folder / f} is absent")
    return folder


@functools.lru_cache(maxsize=None)
def load_json(path: Path):
    with open(path) as f:
        return json.load(f)


@functools.lru_cache(maxsize=None)
def load_npz(path: Path) -> dict:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


_GRIDS = ("tps_grid", "grid", "grid_identity_points")  # already (B, H, W, 2)


def nhwc(a: np.ndarray, name: str = "") -> np.ndarray:
    """NCHW golden array -> NHWC; sampling grids and other ranks unchanged."""
    if a.ndim != 4 or name.rsplit("/", 1)[-1] in _GRIDS:
        return a
    return a.transpose(0, 2, 3, 1)


def manifest_state_dicts(folder: Path, networks) -> dict[str, dict[str, np.ndarray]]:
    """Rebuild the golden weights from the folder's manifest (keys, shapes, salt) and overrides."""
    manifest = load_json(folder / "manifest.json")
    salt = manifest.get("salt", "")
    overrides = load_npz(folder / "overrides.npz") if (folder / "overrides.npz").exists() else {}
    out = {}
    for net in networks:
        entries = manifest["networks"][net]["state_dict"]
        sd = {}
        for e in entries:
            key = f"{net}/{e['key']}"
            if key in overrides:
                sd[e["key"]] = overrides[key]
            elif not str(e.get("init", "")).startswith("computed"):  # computed buffers are rebuilt by the code
                sd[e["key"]] = recipe.recipe_array(net, e["key"], e["shape"], salt)
        out[net] = sd
    return out


@functools.lru_cache(maxsize=None)
def acgpn_golden_variables(folder: Path, networks: tuple[str, ...]) -> dict:
    return convert.acgpn_variables(manifest_state_dicts(folder, networks))


class Comparisons:
    """Collects max-abs comparisons; ``check()`` fails on any violation or on zero comparisons."""

    def __init__(self):
        self.rows, self.failures = [], []

    def close(self, name, got, want, atol, rtol=0.0, stat="max"):
        got = np.asarray(got, np.float64)
        want = np.asarray(want, np.float64)
        if got.shape != want.shape:
            self.failures.append(f"{name}: shape {got.shape} != golden {want.shape}")
            return
        diff = np.abs(got - want)
        if stat == "max":
            err, bound = float(diff.max(initial=0)), atol + rtol * float(np.abs(want).max(initial=0))
        elif stat == "p99.9":
            err, bound = float(np.quantile(diff, 0.999)) if diff.size else 0.0, atol
        elif stat == "mean":
            err, bound = float(diff.mean()) if diff.size else 0.0, atol
        else:
            raise ValueError(stat)
        self.rows.append((name, stat, err, bound))
        if not err <= bound:
            self.failures.append(f"{name}: {stat} abs error {err:.3g} > tolerance {bound:.3g}")

    def check(self, minimum: int = 1):
        report = "\n".join(f"  {n:50s} {s:6s} {e:.3g} <= {b:.3g}" for n, s, e, b in self.rows)
        print(f"compared {len(self.rows)} arrays\n{report}")
        assert len(self.rows) >= minimum, f"only {len(self.rows)} golden comparisons made (expected >= {minimum})"
        assert not self.failures, "\n".join(self.failures)
