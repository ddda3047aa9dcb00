"""Inception Score (sbarratt/inception-score-pytorch protocol) and the Frechet distance, in float64."""
import numpy as np


def inception_score(probs, splits: int = 1) -> tuple[float, float]:
    """(mean, population std) over ``splits`` parts of exp(mean_i KL(p_i || p_y)); trailing rows
    that do not fill a split are dropped; p and p_y are renormalised to sum 1 as scipy.stats.entropy does."""
    p = np.asarray(probs, np.float64)
    size = p.shape[0] // splits
    if size < 1:
        raise ValueError(f"{p.shape[0]} images cannot make {splits} splits")
    scores = []
    for k in range(splits):
        part = p[k * size:(k + 1) * size]
        py = part.mean(axis=0)
        pn = part / part.sum(axis=1, keepdims=True)
        qn = py / py.sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.where(pn > 0, pn * np.log(pn / qn), 0.0).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def statistics(features) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features, np.float64)
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu_a, sigma_a, mu_b, sigma_b) -> float:
    """||mu_a - mu_b||^2 + tr(S_a) + tr(S_b) - 2 tr((S_a S_b)^1/2), with the trace of the matrix
    square root from the symmetric form S_a^1/2 S_b S_a^1/2 (stable for singular covariances)."""
    mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
    sigma_a, sigma_b = np.asarray(sigma_a, np.float64), np.asarray(sigma_b, np.float64)
    w, v = np.linalg.eigh(sigma_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = root_a @ sigma_b @ root_a
    eig = np.linalg.eigvalsh((inner + inner.T) / 2)
    tr_sqrt = np.sqrt(np.clip(eig, 0, None)).sum()
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2 * tr_sqrt)


def fid(features_a, features_b) -> float:
    return frechet_distance(*statistics(features_a), *statistics(features_b))
