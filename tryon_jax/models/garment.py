"""Which part of the person a model dresses, in ACGPN's 14 label ids.

ACGPN as published dresses the upper body: the target garment is the upper clothes (4), its
layout generator may redraw the arms (11, 13), and the 'noise' label (7, LIP's dress) is
washed into the clothes. A ``GarmentRegion`` names those ids so that the same four-stage graph
and training forward dress the legs (pants and skirts, 8, with the legs 9 and 10) or the whole
body (a dress, 7). ``UPPER`` reproduces the original bit for bit.

Label ids (tryon_jax/metrics/parsing.py): 0 background, 1 hair, 2 jumpsuit, 3 socks, 4 upper
clothes, 5/6 shoes, 7 'noise' (dress), 8 pants (and skirts in Dress Code), 9/10 legs, 11 left
arm, 12 face, 13 right arm.
"""
import dataclasses

NUM_LABELS = 14


@dataclasses.dataclass(frozen=True)
class GarmentRegion:
    name: str
    garment: tuple[int, ...]  # the worn garment the new one replaces: the clothes mask, the target of G2 and U
    label: int  # the id the garment, its skin and `replaced` take in G1's input (all_clothes_label)
    skin: tuple[int, ...]  # skin the layout generator may redraw, pasted back in this order
    replaced: tuple[int, ...] = ()  # other labels that go with the old garment (G1 sees them as the garment)
    washed: tuple[int, ...] = ()  # labels the training loader turns into `label`

    @property
    def changed(self) -> tuple[int, ...]:
        """Labels of the person a try-on replaces by design (garment, skin, replaced)."""
        return self.garment + self.skin + self.replaced

    @property
    def kept(self) -> tuple[int, ...]:
        """Labels the try-on keeps: the composition keeps the person's pixels there."""
        return tuple(i for i in range(1, NUM_LABELS) if i not in self.changed)


UPPER = GarmentRegion("upper", garment=(4,), label=4, skin=(11, 13), replaced=(7,), washed=(7,))
LOWER = GarmentRegion("lower", garment=(8,), label=8, skin=(9, 10))
DRESSES = GarmentRegion("dresses", garment=(7,), label=7, skin=(11, 13, 9, 10), replaced=(4, 8))
REGIONS = {r.name: r for r in (UPPER, LOWER, DRESSES)}


def region(name: str) -> GarmentRegion:
    if name not in REGIONS:
        raise ValueError(f"unknown garment region {name!r}; expected one of {sorted(REGIONS)}")
    return REGIONS[name]
