"""Where ACGPN weights come from: the shipped model (the default), a model folder, a training
run, the released .pth files, an exported params file, or the deterministic recipe (random,
for demos and tests)."""
import functools

from tryon_jax.models import networks
from tryon_jax.models.spec import ModelSpec
from tryon_jax.weights import convert, recipe, shipped
from tryon_jax.weights.params_io import PARAMS_FILE, flatten, load_params, save_params, unflatten  # noqa: F401


@functools.lru_cache(maxsize=2)
def recipe_variables(salt: str = "") -> dict:
    """Random ACGPN weights from the golden recipe: shows the pipeline runs, not a try-on."""
    return convert.acgpn_variables(recipe.acgpn_state_dicts(salt=salt))


def load_variables(acgpn_checkpoints: str | None = None, params: str | None = None,
                   use_recipe: bool = False, workdir: str | None = None,
                   model: str | None = None) -> tuple[dict, str, ModelSpec]:
    """(variables, description, model spec) from at most one source; none: the shipped model."""
    given = [x for x in (acgpn_checkpoints, params, workdir, model) if x] + (["recipe"] if use_recipe else [])
    if len(given) > 1:
        raise ValueError("give one weights source at most: --model DIR (a model folder), --workdir DIR (the latest "
                         "training checkpoint), --acgpn-checkpoints DIR (folder with the released "
                         "latest_net_{U,G1,G2,G}.pth), --params FILE (from python -m tryon_jax.export) or "
                         "--recipe-weights (random weights, for a demo); none: the model this repository ships")
    if workdir:
        from tryon_jax.weights import checkpoint
        steps = checkpoint.steps(workdir)
        if not steps:
            raise FileNotFoundError(f"no training checkpoint in {checkpoint.checkpoint_dir(workdir)} "
                                    "(train first: python main.py --config=... --workdir=DIR)")
        return (checkpoint.restore_generators(workdir, steps[-1]), f"step {steps[-1]} of {workdir}",
                checkpoint.read_spec(workdir))
    if acgpn_checkpoints:
        return (convert.load_acgpn_checkpoints(acgpn_checkpoints), f"ACGPN checkpoints in {acgpn_checkpoints}",
                ModelSpec())
    if params:
        variables, meta = load_params(params)
        missing = [n for n in networks.GENERATORS if n not in variables]
        if missing:
            raise ValueError(f"{params}: missing networks {missing}")
        return variables, f"params {params}", ModelSpec.from_dict(meta.get("model_spec", {}))
    if use_recipe:
        return recipe_variables(), "random recipe weights (not trained: the images show noise)", ModelSpec()
    variables, spec, meta = shipped.load_model(model)
    return variables, f"{'model ' + model if model else 'the shipped model'} ({describe(meta)})", spec


def describe(meta: dict) -> str:
    """A model folder's model.json in a few words: resolution, widths, training."""
    spec, t = meta["model_spec"], meta.get("training", {})
    words = [f"{spec['height']}x{spec['width']}, ngf {spec['ngf']}"]
    if t.get("epochs") is not None:
        words.append(f"{t['epochs']:.1f} epochs of {t.get('data', 'its data')}")
    if t.get("hardware"):
        words.append(f"on {t['hardware']}")
    return ", ".join(words)


def add_arguments(parser) -> None:
    """The weights-source flags shared by the command-line tools."""
    group = parser.add_argument_group("weights (at most one; default: the model this repository ships)")
    group.add_argument("--model", help="a model folder (model.json + float16 weights, as python -m "
                       "tryon_jax.acgpn.train_packed writes)")
    group.add_argument("--workdir", help="training workdir: its latest checkpoint")
    group.add_argument("--acgpn-checkpoints", help="folder with the released latest_net_{U,G1,G2,G}.pth")
    group.add_argument("--params", help="params.npz written by python -m tryon_jax.export")
    group.add_argument("--recipe-weights", action="store_true", help="random recipe weights (demo and tests only)")


def from_args(args) -> tuple[dict, str, ModelSpec]:
    return load_variables(args.acgpn_checkpoints, args.params, args.recipe_weights, args.workdir, args.model)
