"""Where weights come from and how they are stored: the safe .pth reader, torch <-> Flax
conversion, plain params .npz files, the deterministic recipe, orbax training checkpoints."""
