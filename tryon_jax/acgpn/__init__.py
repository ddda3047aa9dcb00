"""ACGPN as a system: the four-stage inference graph, the training objective (forward and every
loss term), training batches, the training step and loop."""
