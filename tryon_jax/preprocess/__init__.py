"""Preprocessing of user photos: loading (`photo`) and pose estimation (`pose`)."""
