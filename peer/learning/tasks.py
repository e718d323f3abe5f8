"""Learning tasks a federation can run: the data a peer trains on and the model architecture all peers share.

Built-in, offline tasks (scikit-learn's bundled datasets):

- ``digits``         — 8×8 handwritten digits (1,797 samples, 10 classes), MLP 64→64→10.
- ``breast_cancer``  — Wisconsin diagnostic (569 samples, 2 classes), standardized, logistic regression.
- ``digits-5m``, ``digits-11m``, ``digits-25m`` — the digits data under a wide two-hidden-layer MLP of 4.9M,
  11.0M (ResNet-18-sized) and 24.9M parameters: for measuring rounds at real model sizes (the bytes matter,
  the accuracy does not).

and ``csv:PATH:LABEL`` (:class:`CsvTask`): an institution's own table, numeric features standardized,
label classes mapped to 0..k-1, MLP d→32→k.

The architecture is fixed by the task (``build_model`` is deterministic), so every peer's state_dict has
the same names and shapes; ``model_spec()`` is what the federation records on chain (its hash).
For the built-in tasks the train/test split is a fixed-seed stratified split, identical on every peer:
peers partition the *train* part (see :mod:`peer.learning.partition`) and all evaluate on the same test part.
"""
from __future__ import annotations

import csv
import hashlib
import inspect
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from peer.errors import PeerError

#: Seed of the shared train/test split; changing it changes every peer's test set.
SPLIT_SEED = 0
TEST_FRACTION = 0.2

StateDict = dict[str, torch.Tensor]


class TaskError(PeerError):
    """A task can't be built: unknown task id, unreadable or malformed data (message names the problem)."""


@dataclass(frozen=True)
class TaskData:
    """Features (float32, n×d) and integer labels (int64, n) of one split or one peer's shard."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if self.x.ndim != 2 or self.y.ndim != 1 or self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"TaskData shapes disagree: x {tuple(self.x.shape)}, y {tuple(self.y.shape)}")

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, indices: Sequence[int] | np.ndarray) -> "TaskData":
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        return TaskData(self.x[idx], self.y[idx])

    @property
    def labels(self) -> np.ndarray:
        return self.y.numpy()


@dataclass(frozen=True)
class EvalResult:
    accuracy: float
    loss: float
    num_samples: int


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def model_spec_from_state(task_id: str, state: Mapping[str, torch.Tensor]):
    """The one place that builds a `consensus.ModelSpec` (names + shapes, and the task id if supported)."""
    import consensus

    names_and_shapes = [(name, tuple(int(s) for s in t.shape)) for name, t in state.items()]
    params = inspect.signature(consensus.ModelSpec).parameters
    for key in ("task_id", "task"):
        if key in params:
            return consensus.ModelSpec(names_and_shapes, **{key: task_id})
    return consensus.ModelSpec(names_and_shapes)


def _stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    counts = np.bincount(y)
    can_stratify = len(counts) > 1 and counts[counts > 0].min() >= 2 and len(y) * test_fraction >= len(counts)
    train, test = train_test_split(
        idx, test_size=test_fraction, random_state=seed, stratify=y if can_stratify else None
    )
    return np.sort(train), np.sort(test)


class Task(ABC):
    """A learning task: data, model architecture, genesis weights, evaluation."""

    task_id: str
    num_features: int
    num_classes: int

    @abstractmethod
    def build_model(self) -> nn.Module:
        """A freshly initialised model (weights depend on torch's RNG; use `genesis_state` for fixed ones)."""

    @abstractmethod
    def _load(self) -> tuple[TaskData, TaskData]:
        """(train, test) splits."""

    @cached_property
    def _splits(self) -> tuple[TaskData, TaskData]:
        return self._load()

    @property
    def train_data(self) -> TaskData:
        return self._splits[0]

    @property
    def test_data(self) -> TaskData:
        return self._splits[1]

    def genesis_state(self, seed: int = 0) -> StateDict:
        """Deterministic initial weights (float32, contiguous), independent of the global RNG state."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = self.build_model()
        return {k: v.detach().to(torch.float32).clone().contiguous() for k, v in model.state_dict().items()}

    def model_spec(self):
        """`consensus.ModelSpec` of this task's architecture (its hash goes on chain)."""
        return model_spec_from_state(self.task_id, self.genesis_state())

    def check_state(self, state: Mapping[str, torch.Tensor]) -> None:
        """Raise TaskError unless `state` has exactly this task's tensor names and shapes."""
        expected = {k: tuple(v.shape) for k, v in self.genesis_state().items()}
        got = {k: tuple(v.shape) for k, v in state.items()}
        if expected != got:
            raise TaskError(f"model state does not match task {self.task_id!r}: expected {expected}, got {got}")

    def model_from_state(self, state: Mapping[str, torch.Tensor]) -> nn.Module:
        model = self.build_model()
        model.load_state_dict({k: torch.as_tensor(v, dtype=torch.float32) for k, v in state.items()})
        return model

    @torch.no_grad()
    def evaluate(self, state: Mapping[str, torch.Tensor], data: TaskData | None = None) -> EvalResult:
        """Accuracy and mean cross-entropy of `state` on `data` (default: the task's test split)."""
        data = self.test_data if data is None else data
        if len(data) == 0:
            return EvalResult(accuracy=float("nan"), loss=float("nan"), num_samples=0)
        model = self.model_from_state(state).eval()
        logits = model(data.x)
        loss = nn.functional.cross_entropy(logits, data.y).item()
        accuracy = (logits.argmax(dim=1) == data.y).float().mean().item()
        return EvalResult(accuracy=accuracy, loss=loss, num_samples=len(data))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.task_id!r})"


def _standardize(train_x: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mean = train_x.mean(axis=0)
    std = train_x.std(axis=0)
    std[std == 0] = 1.0  # constant columns stay 0 rather than NaN
    return [((a - mean) / std).astype(np.float32) for a in (train_x, *others)]


def _to_data(x: np.ndarray, y: np.ndarray) -> TaskData:
    return TaskData(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), torch.from_numpy(y.astype(np.int64)))


class DigitsTask(Task):
    """scikit-learn `load_digits`; pixels scaled to [0, 1]; MLP 64→hidden→10."""

    def __init__(self, hidden: int = 64) -> None:
        self.hidden = hidden
        self.task_id = "digits" if hidden == 64 else f"digits:h{hidden}"
        self.num_features, self.num_classes = 64, 10

    def build_model(self) -> nn.Module:
        return _mlp([64, self.hidden, 10])

    def _load(self) -> tuple[TaskData, TaskData]:
        from sklearn.datasets import load_digits

        ds = load_digits()
        x, y = (ds.data / 16.0).astype(np.float32), ds.target.astype(np.int64)
        train, test = _stratified_split(y, TEST_FRACTION, SPLIT_SEED)
        return _to_data(x[train], y[train]), _to_data(x[test], y[test])


class WideDigitsTask(DigitsTask):
    """The digits data under a wide MLP 64→h1→h2→10, sized to a parameter count (see `WIDE_DIGITS`)."""

    def __init__(self, task_id: str) -> None:
        super().__init__()
        self.task_id = task_id
        self.hidden_layers = WIDE_DIGITS[task_id]

    def build_model(self) -> nn.Module:
        return _mlp([64, *self.hidden_layers, 10])


#: task id -> hidden widths; parameters = 65·h1 + (h1+1)·h2 + 10·h2 + 10.
WIDE_DIGITS: dict[str, tuple[int, int]] = {
    "digits-5m": (1536, 3072),    #  4,852,234
    "digits-11m": (2816, 3840),   # 11,038,730
    "digits-25m": (4096, 6000),   # 24,908,250
}


class BreastCancerTask(Task):
    """scikit-learn `load_breast_cancer`; features standardized with train-split statistics; logistic regression."""

    task_id = "breast_cancer"
    num_features, num_classes = 30, 2

    def build_model(self) -> nn.Module:
        return nn.Sequential(nn.Linear(30, 2))

    def _load(self) -> tuple[TaskData, TaskData]:
        from sklearn.datasets import load_breast_cancer

        ds = load_breast_cancer()
        y = ds.target.astype(np.int64)
        train, test = _stratified_split(y, TEST_FRACTION, SPLIT_SEED)
        x_train, x_test = _standardize(ds.data[train].astype(np.float64), ds.data[test].astype(np.float64))
        return _to_data(x_train, y[train]), _to_data(x_test, y[test])


class CsvTask(Task):
    """An institution's own table: one label column, every other column a numeric feature.

    - features are standardized with this file's train-split mean/std (each institution normalizes locally;
      raw values never leave the peer);
    - label values are mapped to 0..k-1 in sorted order. Pass `classes` (the federation-wide list) so a peer
      whose file lacks some class still maps labels exactly like the others;
    - the task id (hence the model spec hash) covers the label name, feature names and classes, never the path,
      so peers with the same schema share one model spec.
    """

    def __init__(
        self,
        path: str | Path,
        label: str,
        *,
        classes: Sequence[str] | None = None,
        hidden: int = 32,
        test_fraction: float = TEST_FRACTION,
    ) -> None:
        self.path, self.label, self.hidden, self.test_fraction = Path(path), label, hidden, test_fraction
        self._fixed_classes = None if classes is None else [str(c) for c in classes]
        header, features, labels = self._read()
        self.feature_names = [h for h in header if h != label]
        self.classes = self._fixed_classes or sorted(set(labels), key=_class_sort_key)
        unknown = sorted(set(labels) - set(self.classes))
        if unknown:
            raise TaskError(
                f"{self.path}: label values {unknown[:5]} are not among the federation's classes {self.classes}"
            )
        if len(self.classes) < 2:
            raise TaskError(f"{self.path}: label column {label!r} has a single class {self.classes}; need at least 2")
        self._features = features
        self._labels = np.array([self.classes.index(v) for v in labels], dtype=np.int64)
        self.num_features, self.num_classes = len(self.feature_names), len(self.classes)
        schema = "|".join([label, ",".join(self.feature_names), ",".join(self.classes), f"h{hidden}"])
        self.task_id = f"csv:{label}:{hashlib.sha256(schema.encode()).hexdigest()[:16]}"

    def _read(self) -> tuple[list[str], np.ndarray, list[str]]:
        try:
            with self.path.open(newline="") as fh:
                rows = [row for row in csv.reader(fh) if any(cell.strip() for cell in row)]
        except FileNotFoundError as exc:
            raise TaskError(f"CSV file not found: {self.path}") from exc
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise TaskError(f"cannot read CSV file {self.path}: {exc}") from exc
        if not rows:
            raise TaskError(f"{self.path}: the CSV file is empty (no header, no rows)")
        header = [h.strip() for h in rows[0]]
        if self.label not in header:
            raise TaskError(f"{self.path}: label column {self.label!r} not found; columns are {header}")
        if len(set(header)) != len(header):
            raise TaskError(f"{self.path}: duplicate column names in header {header}")
        if len(header) < 2:
            raise TaskError(f"{self.path}: no feature columns besides the label {self.label!r}")
        body = rows[1:]
        if not body:
            raise TaskError(f"{self.path}: the CSV file has a header but no data rows")
        label_idx = header.index(self.label)
        features = np.empty((len(body), len(header) - 1), dtype=np.float64)
        labels: list[str] = []
        for line_no, row in enumerate(body, start=2):
            if len(row) != len(header):
                raise TaskError(f"{self.path}, line {line_no}: {len(row)} fields, header has {len(header)}")
            label_value = row[label_idx].strip()
            if not label_value:
                raise TaskError(f"{self.path}, line {line_no}: empty label in column {self.label!r}")
            labels.append(label_value)
            col = 0
            for j, cell in enumerate(row):
                if j == label_idx:
                    continue
                try:
                    value = float(cell)
                except ValueError:
                    raise TaskError(
                        f"{self.path}, line {line_no}: non-numeric value {cell!r} in feature column {header[j]!r}"
                    ) from None
                if not math.isfinite(value):
                    raise TaskError(f"{self.path}, line {line_no}: non-finite value {cell!r} in column {header[j]!r}")
                features[line_no - 2, col] = value
                col += 1
        return header, features, labels

    def build_model(self) -> nn.Module:
        if self.hidden:
            return _mlp([self.num_features, self.hidden, self.num_classes])
        return nn.Sequential(nn.Linear(self.num_features, self.num_classes))

    def _load(self) -> tuple[TaskData, TaskData]:
        y = self._labels
        if len(y) < 2:
            train, test = np.arange(len(y)), np.arange(0)
        else:
            train, test = _stratified_split(y, self.test_fraction, SPLIT_SEED)
        x_train, x_test = _standardize(self._features[train], self._features[test])
        return _to_data(x_train, y[train]), _to_data(x_test, y[test])


def _class_sort_key(value: str) -> tuple[int, float, str]:
    try:
        return (0, float(value), value)  # numeric labels in numeric order ("2" < "10")
    except ValueError:
        return (1, 0.0, value)


BUILTIN_TASKS = {"digits": DigitsTask, "breast_cancer": BreastCancerTask,
                 **{name: partial(WideDigitsTask, name) for name in WIDE_DIGITS}}


def get_task(spec: str) -> Task:
    """Task from its id: ``digits``, ``breast_cancer``, ``digits-{5m,11m,25m}`` or ``csv:PATH:LABEL`` (PATH may
    contain ':')."""
    if spec in BUILTIN_TASKS:
        return BUILTIN_TASKS[spec]()
    if spec.startswith("csv:"):
        path, sep, label = spec[4:].rpartition(":")
        if not sep or not path or not label:
            raise TaskError(f"bad CSV task {spec!r}; expected csv:PATH:LABEL")
        return CsvTask(path, label)
    raise TaskError(f"unknown task {spec!r}; expected one of {sorted(BUILTIN_TASKS)} or csv:PATH:LABEL")
