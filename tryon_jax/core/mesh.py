"""The device mesh (one axis, 'data') and how states and batches are laid out on it, plus the
per-example random keys that make a global batch give the same result on any layout."""
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P


def make_mesh() -> Mesh:
    """Every device of every process on the axis 'data'."""
    return Mesh(np.array(jax.devices()), ("data",))


def param_sharding(mesh: Mesh, x, shard: bool) -> NamedSharding:
    """Replicated, or (``shard``) split along the last axis that divides by the mesh size."""
    if shard and hasattr(x, "shape"):
        for axis in reversed(range(len(x.shape))):
            if x.shape[axis] % mesh.size == 0 and x.shape[axis] >= mesh.size:
                spec = [None] * len(x.shape)
                spec[axis] = "data"
                return NamedSharding(mesh, P(*spec))
    return NamedSharding(mesh, P())


def state_shardings(mesh: Mesh, state, shard: bool):
    return jax.tree.map(lambda x: param_sharding(mesh, x, shard), state)


def global_batch(local: dict, mesh: Mesh) -> dict:
    """This process's share of the batch -> global arrays sharded over 'data'."""
    sharding = NamedSharding(mesh, P("data"))
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in local.items()}


def example_keys(step_key: jax.Array, batch_size: int) -> jax.Array:
    """One key per example of the global batch: fold_in(step_key, index)."""
    return jax.vmap(lambda i: jax.random.fold_in(step_key, i))(jnp.arange(batch_size))
