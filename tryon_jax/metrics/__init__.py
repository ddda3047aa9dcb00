"""Image and parsing metrics as pure JAX/numpy functions: SSIM, MS-SSIM, Inception Score, FID
(with torchvision's Inception v3) and parsing IoU."""
