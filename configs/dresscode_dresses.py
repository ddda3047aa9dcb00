"""ACGPN for dresses on Dress Code's dresses persons: the garment is the dress (7), the layout may
redraw arms and legs, and a worn top and bottoms are replaced; see configs/dresscode_lower.py."""
from configs import dresscode_lower


def get_config():
    return dresscode_lower.get_config("dresses")
