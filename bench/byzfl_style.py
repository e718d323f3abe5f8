"""Float torch aggregators written the way ByzFL writes them, as a second baseline for bench.aggregators.

Not ByzFL's code: small implementations of the same approach (stack the flat updates into one (n, d) float32
tensor, pairwise distances with torch.cdist, coordinate-wise statistics with torch.sort / torch.median,
neighbour selection with torch.topk), using torch's own intra-op threads. They match ByzFL's conventions:
Krum scores n-f-1 neighbours, trimmed mean cuts f per side, NNM mixes each update with its n-f nearest.
Timed from float32 numpy arrays to the aggregate tensor, like Flower's functions in the same bench.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch


def _stack(vectors: Sequence[np.ndarray]) -> torch.Tensor:
    return torch.stack([torch.from_numpy(v) for v in vectors])


def _krum_scores(x: torch.Tensor, f: int) -> torch.Tensor:
    n = x.shape[0]
    dist = torch.cdist(x, x) ** 2
    return torch.topk(dist, n - f, dim=1, largest=False).values.sum(dim=1)  # includes the 0 to itself


def average(vectors: Sequence[np.ndarray], f: int) -> torch.Tensor:
    return _stack(vectors).mean(dim=0)


def krum(vectors: Sequence[np.ndarray], f: int) -> torch.Tensor:
    x = _stack(vectors)
    return x[torch.argmin(_krum_scores(x, f))]


def multi_krum(vectors: Sequence[np.ndarray], f: int) -> torch.Tensor:
    x = _stack(vectors)
    chosen = torch.argsort(_krum_scores(x, f))[: x.shape[0] - f]
    return x[chosen].mean(dim=0)


def _trimmed(x: torch.Tensor, f: int) -> torch.Tensor:
    n = x.shape[0]
    return torch.sort(x, dim=0).values[f:n - f].mean(dim=0)


def trimmed_mean(vectors: Sequence[np.ndarray], f: int) -> torch.Tensor:
    return _trimmed(_stack(vectors), f)


def median(vectors: Sequence[np.ndarray], f: int) -> torch.Tensor:
    return torch.median(_stack(vectors), dim=0).values  # lower middle value for even n


def nnm_trimmed_mean(vectors: Sequence[np.ndarray], f: int) -> torch.Tensor:
    x = _stack(vectors)
    n = x.shape[0]
    nearest = torch.topk(torch.cdist(x, x), n - f, dim=1, largest=False).indices
    mixed = torch.stack([x[row].mean(dim=0) for row in nearest])
    return _trimmed(mixed, f)


RULES: dict[str, Callable[[Sequence[np.ndarray], int], torch.Tensor]] = {
    "fedavg": average, "krum": krum, "multi_krum": multi_krum, "trimmed_mean": trimmed_mean, "median": median,
    "nnm+trimmed_mean": nnm_trimmed_mean,
}
