"""Checkpoints of a workdir with orbax: atomic, keep-N, one item per part of the state.

Items: ``generators`` (the Flax variables of G1, G2, U, G; all evaluation and export need)
and, from training, the rest of the train state. Evaluation restores ``generators`` only.
"""
import os

import jax
import numpy as np
import orbax.checkpoint as ocp

GENERATORS = "generators"


def checkpoint_dir(workdir: str) -> str:
    return os.path.join(os.path.abspath(workdir), "checkpoints")


def manager(workdir: str, max_to_keep: int | None = None, create: bool = True) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=create)
    return ocp.CheckpointManager(checkpoint_dir(workdir), options=options)


def save_generators(workdir: str, step: int, variables: dict, max_to_keep: int | None = None) -> None:
    with manager(workdir, max_to_keep) as mngr:
        mngr.save(step, args=ocp.args.Composite(**{GENERATORS: ocp.args.StandardSave(variables)}))
        mngr.wait_until_finished()


def steps(workdir: str) -> list[int]:
    if not os.path.isdir(checkpoint_dir(workdir)):
        return []
    with manager(workdir, create=False) as mngr:
        return sorted(mngr.all_steps())


def restore_generators(workdir: str, step: int) -> dict:
    """The generators' variables saved at ``step`` (numpy arrays)."""
    with manager(workdir, create=False) as mngr:
        if step not in mngr.all_steps():
            raise FileNotFoundError(f"no checkpoint for step {step} in {checkpoint_dir(workdir)} "
                                    f"(steps: {sorted(mngr.all_steps())})")
        restored = mngr.restore(step, args=ocp.args.Composite(**{GENERATORS: ocp.args.StandardRestore()}))
    return jax.tree_util.tree_map(np.asarray, restored[GENERATORS])
