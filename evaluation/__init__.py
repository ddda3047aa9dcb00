"""Evaluation of try-on results: metrics, difficulty splits, batch checkpoint evaluation."""
