"""The people's-photos contract's import path (DESIGN.md): tryon_jax.preprocess.person. The
code lives in tryon_jax.person."""
