"""The shape of an ACGPN model: resolution, widths and which network makes the final image.

``ModelSpec()`` is the faithful ACGPN at 256x192 (the released checkpoints); smaller widths
and resolutions give the CPU demo, ``image_generator='local_enhancer'`` the pix2pixHD
GlobalGenerator + LocalEnhancer image generator of configs/hd.py, ``garment`` the body region
it dresses (tops by default; bottoms and dresses for Dress Code). The spec is hashable (a
static jit argument) and saved next to training checkpoints as JSON.
"""
import dataclasses
import json

from tryon_jax.models import garment as garment_lib

IMAGE_GENERATORS = ("refine", "local_enhancer")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    height: int = 256
    width: int = 192
    ngf: int = 64  # Refine / U-Net base width (64 in ACGPN)
    ndf: int = 64  # discriminator base width
    num_d: int = 2  # discriminator scales
    n_layers_d: int = 3
    image_generator: str = "refine"  # or "local_enhancer" (pix2pixHD, configs/hd.py)
    hd_ngf: int = 32  # LocalEnhancer width (its global generator uses 2x)
    hd_n_blocks_global: int = 9
    hd_n_blocks_local: int = 3
    garment: str = "upper"  # the region it dresses: upper, lower or dresses (tryon_jax.models.garment)

    def __post_init__(self):
        if self.height % 16 or self.width % 16:
            raise ValueError(f"model height and width must be multiples of 16 (U-Net), got {self.height}x{self.width}")
        if self.height * 3 != self.width * 4 or self.height < 64 or self.height & (self.height - 1):
            raise ValueError("model resolution must be 4:3 with a power-of-two height >= 64 (64x48, 128x96, "
                             f"256x192, 512x384, ...) for the STN localisation net, got {self.height}x{self.width}")
        if self.image_generator not in IMAGE_GENERATORS:
            raise ValueError(f"image_generator must be one of {IMAGE_GENERATORS}, got {self.image_generator!r}")
        garment_lib.region(self.garment)
        for name in ("ngf", "ndf", "num_d", "n_layers_d", "hd_ngf"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def faithful(self) -> bool:
        """True for the original ACGPN shapes (the released checkpoints load into it)."""
        return self == ModelSpec()

    @property
    def released_shapes(self) -> bool:
        """True when the released checkpoints' parameters fit (any garment region)."""
        return dataclasses.replace(self, garment="upper").faithful

    @property
    def region(self) -> garment_lib.GarmentRegion:
        return garment_lib.region(self.garment)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, values) -> "ModelSpec":
        values = dict(values)
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown model spec fields {sorted(unknown)}")
        return cls(**values)


DEFAULT = ModelSpec()
