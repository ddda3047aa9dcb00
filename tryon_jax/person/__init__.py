"""People's photos -> ACGPN's person inputs: photo loading, pose (BlazePose), the human parser
(inference, training, packing, calibration), framing like VITON and the folder writer."""
