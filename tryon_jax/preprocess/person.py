"""``PersonPreprocessor().prepare_batch(paths) -> [Person | Exception]`` at the contract's
import path (DESIGN.md); the code lives in tryon_jax.person.preprocessor."""
from tryon_jax.person.preprocessor import Person, PersonError, PersonPreprocessor  # noqa: F401
