"""Training the human parser: the step and loop (grain-fed or from packed shards held on the
devices), on-device augmentation, and calibration of the test-time views and label offsets."""
