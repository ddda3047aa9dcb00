"""tryon-jax: ACGPN virtual try-on in JAX/Flax."""
from setuptools import find_packages, setup

INSTALL_REQUIRES = [
    "jax==0.10.2",
    "jaxlib==0.10.2",
    "flax==0.12.8",
    "optax==0.2.8",
    "orbax-checkpoint==0.12.8",
    "tensorflow-datasets==4.9.10",
    "grain==0.2.18",
    "numpy==2.4.6",
    "scipy==1.17.1",
    "pillow==13.0.0",
    "opencv-python-headless==5.0.0.93",
    "ml-collections==1.1.0",
    "aiohttp==3.14.5",
    "tqdm==4.70.1",
    "tensorboardX==2.6.5",
    "absl-py==2.5.1",
    "ml-dtypes==0.6.0",
    "flatbuffers==25.12.19",
    "importlib-resources==7.1.0",
    "ai-edge-litert==2.3.0",
]

setup(
    name="tryon-jax",
    version="0.1.0",
    description="ACGPN virtual try-on (CVPR 2020) reimplemented in JAX/Flax, PyTorch-exact.",
    python_requires=">=3.11",
    packages=find_packages(include=["tryon_jax", "tryon_jax.*", "configs", "evaluation", "evaluation.*", "crawler"])
    + ["tryon_datasets", "tryon_datasets.viton", "tryon_datasets.musinsa", "tryon_datasets.dresscode"],
    # datasets/ is installed as tryon_datasets so that it never shadows Hugging Face `datasets`.
    package_dir={"tryon_datasets": "datasets"},
    package_data={"tryon_datasets.viton": ["difficulty/*.txt", "difficulty/*.npz", "dummy_data/**/*"],
                  "tryon_datasets.dresscode": ["dummy_data/**/*"],
                  "tryon_jax.person": ["blazepose/*", "weights/*"], "tryon_jax.serving": ["web/*"],
                  "tryon_jax": ["shipped/*"]},
    install_requires=INSTALL_REQUIRES,
    extras_require={"test": ["pytest==9.2.0", "selenium==4.51.0"]},
)
