"""ACGPN for tops on Dress Code's upper-body persons (full-body framing); see configs/dresscode_lower.py."""
from configs import dresscode_lower


def get_config():
    return dresscode_lower.get_config("upper")
