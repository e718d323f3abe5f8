"""Tasks, partitioning and local training (FedAvg, FedProx, DP-SGD)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from peer.learning.partition import dirichlet_partition, iid_partition, label_histogram
from peer.learning.privacy import DPConfig, epsilon_spent, privacy_from_chain, privacy_to_chain
from peer.learning.tasks import BreastCancerTask, CsvTask, DigitsTask, TaskError, get_task
from peer.learning.training import fedavg_states, train_local


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models train faster single-threaded (and don't fight parallel test workers for cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits():
    return DigitsTask()


def test_builtin_tasks_are_deterministic(digits):
    a, b = digits.genesis_state(0), get_task("digits").genesis_state(0)
    assert list(a) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["0.weight"], digits.genesis_state(1)["0.weight"])
    assert tuple(a["0.weight"].shape) == (64, 64) and tuple(a["2.weight"].shape) == (10, 64)
    assert len(digits.train_data) + len(digits.test_data) == 1797
    assert torch.equal(digits.test_data.y, get_task("digits").test_data.y)  # shared test split
    bc = get_task("breast_cancer")
    assert isinstance(bc, BreastCancerTask) and len(bc.test_data) == 114
    assert abs(float(bc.train_data.x.mean())) < 1e-4  # standardized


def test_model_spec_names_and_shapes(digits):
    pytest.importorskip("consensus")
    import consensus

    if not hasattr(consensus, "ModelSpec"):
        pytest.skip("consensus.ModelSpec not built yet")
    spec = digits.model_spec()
    assert spec.spec_hash() == get_task("digits").model_spec().spec_hash()
    assert spec.spec_hash() != get_task("breast_cancer").model_spec().spec_hash()


def test_partitions_are_disjoint_and_cover(digits):
    y = digits.train_data.labels
    for parts in (iid_partition(len(y), 3, seed=1), dirichlet_partition(y, 5, alpha=0.3, seed=1)):
        joined = np.concatenate(parts)
        assert len(joined) == len(y) == len(np.unique(joined))
        assert all(len(p) > 0 for p in parts)
    again = zip(dirichlet_partition(y, 5, 0.3, 7), dirichlet_partition(y, 5, 0.3, 7))
    assert all(np.array_equal(a, b) for a, b in again)
    skewed = label_histogram(y, dirichlet_partition(y, 5, alpha=0.1, seed=0), 10)
    uniform = label_histogram(y, dirichlet_partition(y, 5, alpha=1000.0, seed=0), 10)
    share = lambda h: (h / h.sum(axis=1, keepdims=True)).max(axis=1).mean()  # noqa: E731
    assert share(skewed) > 2 * share(uniform)


def test_three_iid_peers_fedavg_reach_85_percent(digits):
    state = digits.genesis_state(0)
    genesis_acc = digits.evaluate(state).accuracy
    parts = iid_partition(len(digits.train_data), 3, seed=0)
    shards = [digits.train_data.subset(p) for p in parts]
    for rnd in range(6):
        results = [train_local(digits, state, s, epochs=1, lr=0.05, seed=10 * rnd + i) for i, s in enumerate(shards)]
        state = fedavg_states([r.state for r in results], [r.num_samples for r in results])
        if digits.evaluate(state).accuracy >= 0.85:
            break
    assert genesis_acc < 0.2
    assert digits.evaluate(state).accuracy >= 0.85
    assert all(math.isinf(r.epsilon) and r.delta == 0 for r in results)


def test_training_is_deterministic_in_seed(digits):
    g, data = digits.genesis_state(), digits.train_data.subset(range(200))
    a = train_local(digits, g, data, epochs=1, seed=3)
    b = train_local(digits, g, data, epochs=1, seed=3)
    c = train_local(digits, g, data, epochs=1, seed=4)
    assert all(torch.equal(a.state[k], b.state[k]) for k in a.state)
    assert not torch.equal(a.state["0.weight"], c.state["0.weight"])
    assert a.num_samples == 200 and a.steps == 7
    update = a.update(g)
    assert torch.allclose(update["0.bias"], a.state["0.bias"] - g["0.bias"])


def test_fedprox_term_pulls_towards_global(digits):
    g, data = digits.genesis_state(), digits.train_data.subset(range(300))

    def drift(mu):
        r = train_local(digits, g, data, epochs=3, lr=0.05, prox_mu=mu, seed=0)
        return torch.sqrt(sum(((r.state[k] - g[k]) ** 2).sum() for k in g)).item()

    free, prox = drift(0.0), drift(1.0)
    assert prox < 0.8 * free


def test_dp_sgd_reports_finite_epsilon_and_accumulates(digits):
    g, data = digits.genesis_state(), digits.train_data.subset(range(400))
    dp = DPConfig(noise_multiplier=1.1, max_grad_norm=1.0, delta=1e-5)
    first = train_local(digits, g, data, epochs=1, batch_size=50, lr=0.1, dp=dp, seed=0)
    assert math.isfinite(first.epsilon) and 0 < first.epsilon < 10 and first.delta == 1e-5
    assert first.privacy_history == ((1.1, 50 / 400, 8),)
    assert first.epsilon == pytest.approx(epsilon_spent(first.privacy_history, 1e-5))
    second = train_local(digits, first.state, data, epochs=1, batch_size=50, dp=dp,
                         prior_privacy=first.privacy_history, seed=1)
    assert second.privacy_history == ((1.1, 50 / 400, 16),)
    assert second.epsilon > first.epsilon
    assert all(torch.isfinite(v).all() for v in second.state.values())
    # more noise → less privacy spent
    quiet = train_local(digits, g, data, epochs=1, batch_size=50, dp=DPConfig(noise_multiplier=3.0), seed=0)
    assert quiet.epsilon < first.epsilon


def test_dp_sgd_still_learns(digits):
    g = digits.genesis_state()
    r = train_local(digits, g, digits.train_data, epochs=3, batch_size=64, lr=0.2,
                    dp=DPConfig(noise_multiplier=0.8, max_grad_norm=1.0), seed=0)
    assert digits.evaluate(r.state).accuracy > digits.evaluate(g).accuracy + 0.3


def test_privacy_chain_encoding():
    assert privacy_to_chain(math.inf, 0.0) == (2**64 - 1, 0)
    assert privacy_to_chain(1.5, 1e-5) == (1_500_000, 10**13)
    assert privacy_from_chain(1_500_000, 10**13) == (1.5, 1e-5)
    with pytest.raises(ValueError):
        DPConfig(noise_multiplier=0)


def test_bad_hyper_parameters_and_wrong_state(digits):
    g = digits.genesis_state()
    with pytest.raises(ValueError):
        train_local(digits, g, digits.train_data, lr=0)
    with pytest.raises(TaskError, match="does not match"):
        train_local(digits, get_task("breast_cancer").genesis_state(), digits.train_data)


# --- CSV task -----------------------------------------------------------------------------------------------


def _write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_task_trains(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3)) * [1, 10, 100] + [0, 5, 50]
    labels = np.where(x[:, 0] + x[:, 1] / 10 > 0.5, "sick", "healthy")
    rows = "\n".join(f"{a:.4f},{lab},{b:.4f},{c:.4f}" for (a, b, c), lab in zip(x, labels))
    path = _write(tmp_path, "age,diagnosis,bp,chol\n" + rows + "\n")
    task = get_task(f"csv:{path}:diagnosis")
    assert isinstance(task, CsvTask)
    assert task.classes == ["healthy", "sick"] and task.feature_names == ["age", "bp", "chol"]
    assert task.num_features == 3 and len(task.train_data) == 160 and len(task.test_data) == 40
    assert abs(float(task.train_data.x.mean())) < 1e-4
    r = train_local(task, task.genesis_state(), task.train_data, epochs=20, lr=0.05, seed=0)
    assert task.evaluate(r.state).accuracy > 0.85
    # same schema elsewhere → same task id (spec); path is not part of it
    other = CsvTask(_write(tmp_path, "age,diagnosis,bp,chol\n" + rows + "\n", "copy.csv"), "diagnosis")
    assert other.task_id == task.task_id
    # the federation's class list maps labels identically even when a class is absent locally
    fixed = CsvTask(_write(tmp_path, "a,y\n1,b\n2,b\n3,c\n4,c\n", "f.csv"), "y", classes=["a", "b", "c"])
    assert fixed.num_classes == 3 and set(fixed._labels.tolist()) == {1, 2}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        ("\n\n", "empty"),
        ("a,b,label\n", "no data rows"),
        ("a,b,target\n1,2,0\n3,4,1\n", "label column 'label' not found"),
        ("a,b,label\n1,2,0\n3,x,1\n", r"line 3: non-numeric value 'x' in feature column 'b'"),
        ("a,b,label\n1,2,0\n3,4\n", "line 3: 2 fields"),
        ("a,b,label\n1,2,0\n3,nan,1\n", "non-finite"),
        ("a,b,label\n1,2,0\n3,4,0\n", "single class"),
        ("a,b,label\n1,2,\n3,4,1\n", "empty label"),
        ("label\n0\n1\n", "no feature columns"),
    ],
)
def test_bad_csv_is_a_clear_task_error(tmp_path, text, match):
    path = _write(tmp_path, text)
    with pytest.raises(TaskError, match=match):
        CsvTask(path, "label")


def test_csv_task_spec_errors(tmp_path):
    with pytest.raises(TaskError, match="not found"):
        get_task(f"csv:{tmp_path / 'missing.csv'}:y")
    with pytest.raises(TaskError, match="csv:PATH:LABEL"):
        get_task("csv:nolabel")
    with pytest.raises(TaskError, match="unknown task"):
        get_task("mnist")
    with pytest.raises(TaskError, match="not among"):
        CsvTask(_write(tmp_path, "a,y\n1,b\n2,z\n"), "y", classes=["a", "b"])
