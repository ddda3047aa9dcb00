"""What every part shares and that knows no model: atomic files and pictures, the device mesh
and batch layout, what a person sees of a run (metrics, pictures, messages)."""
