"""Checkpoints of a workdir with orbax: atomic, keep-N, one item per part of the state.

Items: ``generators`` (the Flax variables of G1, G2, U, G; all evaluation and export need),
``train_state`` (discriminators, optimizer states, step) and ``data`` (each process's grain
iterator position). Evaluation and export restore ``generators`` only. The model's shapes
are in WORKDIR/model_spec.json.
"""
import json
import os

import jax
import numpy as np
import orbax.checkpoint as ocp

from tryon_jax.core.files import atomic_write
from tryon_jax.models.spec import ModelSpec

GENERATORS = "generators"
TRAIN_STATE = "train_state"
DATA = "data"
SPEC_FILE = "model_spec.json"


def checkpoint_dir(workdir: str) -> str:
    return os.path.join(os.path.abspath(workdir), "checkpoints")


def manager(workdir: str, max_to_keep: int | None = None, create: bool = True,
            async_save: bool = False) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=create,
                                           enable_async_checkpointing=async_save)
    return ocp.CheckpointManager(checkpoint_dir(workdir), options=options)


def save_train(mngr: ocp.CheckpointManager, step: int, generators: dict, train_state: dict, data_iterator) -> None:
    """Saves one training checkpoint (atomically: orbax writes a temporary folder, then renames)."""
    import grain
    mngr.save(step, args=ocp.args.Composite(**{
        GENERATORS: ocp.args.StandardSave(generators), TRAIN_STATE: ocp.args.StandardSave(train_state),
        DATA: grain.checkpoint.CheckpointSave(data_iterator)}))


def restore_train(mngr: ocp.CheckpointManager, step: int, generators_target, train_state_target,
                  data_iterator) -> tuple[dict, dict]:
    """Restores a training checkpoint onto the targets' shardings and moves the data iterator
    to where it was; returns (generators, train_state)."""
    import grain
    restored = mngr.restore(step, args=ocp.args.Composite(**{
        GENERATORS: ocp.args.StandardRestore(generators_target),
        TRAIN_STATE: ocp.args.StandardRestore(train_state_target),
        DATA: grain.checkpoint.CheckpointRestore(data_iterator)}))
    return restored[GENERATORS], restored[TRAIN_STATE]


def write_spec(workdir: str, spec: ModelSpec) -> None:
    """Records the model's shapes; refuses a workdir trained with other shapes."""
    path = os.path.join(workdir, SPEC_FILE)
    if os.path.isfile(path):
        saved = read_spec(workdir)
        if saved != spec:
            raise ValueError(f"{path}: this workdir holds a model with other shapes ({saved}); the config asks for "
                             f"{spec}. Use another --workdir or the same config.model.")
        return
    if jax.process_index() == 0:
        with atomic_write(path, "w") as f:
            f.write(spec.to_json())


def read_spec(workdir: str) -> ModelSpec:
    """The model shapes of a training workdir (ACGPN's own when the file is absent)."""
    path = os.path.join(workdir, SPEC_FILE)
    if not os.path.isfile(path):
        return ModelSpec()
    try:
        with open(path) as f:
            return ModelSpec.from_dict(json.load(f))
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path}: not a model spec ({e})") from e


def save_generators(workdir: str, step: int, variables: dict, max_to_keep: int | None = None) -> None:
    with manager(workdir, max_to_keep) as mngr:
        mngr.save(step, args=ocp.args.Composite(**{GENERATORS: ocp.args.StandardSave(variables)}))
        mngr.wait_until_finished()


def steps(workdir: str) -> list[int]:
    if not os.path.isdir(checkpoint_dir(workdir)):
        return []
    with manager(workdir, create=False) as mngr:
        return sorted(mngr.all_steps())


def restore_generators(workdir: str, step: int, item: str = GENERATORS) -> dict:
    """The generators' variables (or another item) saved at ``step`` as numpy arrays, whatever
    devices and processes saved them."""
    with manager(workdir, create=False) as mngr:
        if step not in mngr.all_steps():
            raise FileNotFoundError(f"no checkpoint for step {step} in {checkpoint_dir(workdir)} "
                                    f"(steps: {sorted(mngr.all_steps())})")
    path = os.path.join(checkpoint_dir(workdir), str(step), item)
    here = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    with ocp.StandardCheckpointer() as checkpointer:
        metadata = checkpointer.metadata(path).item_metadata
        target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=here), metadata)
        restored = checkpointer.restore(path, target)
    return jax.tree_util.tree_map(np.asarray, restored)
