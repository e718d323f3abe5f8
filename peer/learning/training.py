"""Local training of one round: FedAvg (McMahan et al. 2017) / FedProx (Li et al. 2020) local objectives,
optionally with record-level DP-SGD (see :mod:`peer.learning.privacy`).

`train_local` starts from the round's global weights and returns the peer's new weights; the caller forms the
update `w_local - M(r-1)` and encodes it canonically. Training is deterministic in `seed` on a given machine
(the canonical integer codec, not float training, is what makes aggregation bit-exact across machines).
"""
from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from peer.learning.privacy import DPConfig, DPStep, epsilon_spent, merge_history
from peer.learning.tasks import StateDict, Task, TaskData


@dataclass(frozen=True)
class LocalResult:
    """Outcome of one round of local training.

    `epsilon`/`delta`: privacy spent so far by this peer's data (cumulative over `privacy_history`);
    ε = inf and δ = 0 when trained without DP.
    """

    state: StateDict
    num_samples: int
    epsilon: float
    delta: float
    train_loss: float
    steps: int = 0
    seconds: float = 0.0
    privacy_history: tuple[DPStep, ...] = field(default_factory=tuple)

    def update(self, global_state: Mapping[str, torch.Tensor]) -> StateDict:
        """`w_local - w_global` per tensor (float32), the thing that gets encoded and committed."""
        return {k: (v - global_state[k].to(torch.float32)).contiguous() for k, v in self.state.items()}


def _check_args(epochs: int, batch_size: int, lr: float, prox_mu: float, data: TaskData) -> None:
    if epochs < 0 or batch_size < 1 or not lr > 0 or prox_mu < 0:
        raise ValueError(f"bad hyper-parameters: epochs={epochs} batch_size={batch_size} lr={lr} prox_mu={prox_mu}")
    if len(data) == 0:
        raise ValueError("no local training data")


def _prox_grads(params: Mapping[str, torch.Tensor], anchor: Mapping[str, torch.Tensor], mu: float) -> dict:
    """Gradient of the FedProx term mu/2·||w - w_global||² (data-independent, so added after DP noise)."""
    return {k: mu * (p.detach() - anchor[k]) for k, p in params.items()}


def train_local(
    task: Task,
    global_state: Mapping[str, torch.Tensor],
    data: TaskData,
    *,
    epochs: int = 1,
    batch_size: int = 32,
    lr: float = 0.05,
    momentum: float = 0.9,
    prox_mu: float = 0.0,
    dp: DPConfig | None = None,
    prior_privacy: Sequence[DPStep] = (),
    seed: int = 0,
) -> LocalResult:
    """Train `task`'s model from `global_state` on `data` (the peer's private shard) with SGD.

    - `prox_mu > 0` adds FedProx's proximal term mu/2·||w − w_global||² to the local objective.
    - `dp` enables DP-SGD: Poisson sampling with rate batch_size/len(data), per-record clipping, Gaussian
      noise; ⌈len(data)/batch_size⌉ steps per epoch. `prior_privacy` is this peer's history from earlier
      rounds; the result's ε is cumulative over it and this round.
    """
    _check_args(epochs, batch_size, lr, prox_mu, data)
    task.check_state(global_state)
    started = time.perf_counter()
    gen = torch.Generator().manual_seed(int(seed))
    model = task.model_from_state(global_state).train()
    anchor = {k: v.detach().to(torch.float32).clone() for k, v in global_state.items()}
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    n = len(data)
    steps_per_epoch = max(1, math.ceil(n / batch_size))
    losses: list[float] = []

    if dp is None:
        for _ in range(epochs):
            order = torch.randperm(n, generator=gen)
            for s in range(steps_per_epoch):
                idx = order[s * batch_size : (s + 1) * batch_size]
                optimizer.zero_grad(set_to_none=True)
                loss = nn.functional.cross_entropy(model(data.x[idx]), data.y[idx])
                losses.append(loss.item())
                if prox_mu > 0:
                    loss = loss + 0.5 * prox_mu * sum(
                        ((p - anchor[k]) ** 2).sum() for k, p in model.named_parameters()
                    )
                loss.backward()
                optimizer.step()
        # a non-private round releases the data without a bound: ε is infinite from here on
        history = tuple(merge_history(prior_privacy))
        epsilon, delta = math.inf, 0.0
    else:
        losses = _train_dp_sgd(model, anchor, data, optimizer, gen, epochs, steps_per_epoch, batch_size, prox_mu, dp)
        sample_rate = min(1.0, batch_size / n)
        this_round = [(dp.noise_multiplier, sample_rate, epochs * steps_per_epoch)] if epochs else []
        history = tuple(merge_history([*prior_privacy, *this_round]))
        epsilon, delta = epsilon_spent(history, dp.delta), dp.delta

    state = {k: v.detach().to(torch.float32).clone().contiguous() for k, v in model.state_dict().items()}
    for k, v in state.items():
        if not torch.isfinite(v).all():
            raise FloatingPointError(f"training diverged: non-finite weights in {k!r} (lower lr?)")
    return LocalResult(
        state=state,
        num_samples=n,
        epsilon=epsilon,
        delta=delta,
        train_loss=float(sum(losses) / len(losses)) if losses else float("nan"),
        steps=epochs * steps_per_epoch,
        seconds=time.perf_counter() - started,
        privacy_history=history,
    )


def _train_dp_sgd(
    model: nn.Module,
    anchor: Mapping[str, torch.Tensor],
    data: TaskData,
    optimizer: torch.optim.Optimizer,
    gen: torch.Generator,
    epochs: int,
    steps_per_epoch: int,
    batch_size: int,
    prox_mu: float,
    dp: DPConfig,
) -> list[float]:
    """DP-SGD steps; per-record gradients via torch.func (vmap over grad), no opacus hooks needed."""
    n = len(data)
    q = min(1.0, batch_size / n)
    expected_batch = q * n
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def record_loss(params: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, (params, buffers), (x.unsqueeze(0),))
        return nn.functional.cross_entropy(out, y.unsqueeze(0))

    linear_only = _linear_only(model)
    per_record_grads = vmap(grad(record_loss), in_dims=(None, 0, 0))
    losses: list[float] = []
    for _ in range(epochs * steps_per_epoch):
        mask = torch.rand(n, generator=gen) < q
        idx = mask.nonzero().squeeze(1)
        params = {k: p.detach() for k, p in model.named_parameters()}
        if len(idx) and linear_only:
            summed, loss = _clipped_sum_linear(model, data.x[idx], data.y[idx], dp.max_grad_norm)
            losses.append(loss)
        elif len(idx):
            xb, yb = data.x[idx], data.y[idx]
            grads = per_record_grads(params, xb, yb)
            norms = torch.sqrt(sum(g.reshape(len(idx), -1).pow(2).sum(dim=1) for g in grads.values()))
            factors = (dp.max_grad_norm / (norms + 1e-12)).clamp(max=1.0)
            summed = {k: torch.einsum("b,b...->...", factors, g) for k, g in grads.items()}
            with torch.no_grad():
                losses.append(nn.functional.cross_entropy(functional_call(model, (params, buffers), (xb,)), yb).item())
        else:
            summed = {k: torch.zeros_like(p) for k, p in params.items()}
        prox = _prox_grads(params, anchor, prox_mu) if prox_mu > 0 else None
        for k, p in model.named_parameters():
            noise = torch.normal(0.0, dp.noise_multiplier * dp.max_grad_norm, size=p.shape, generator=gen)
            g = (summed[k] + noise) / expected_batch
            if prox is not None:
                g = g + prox[k]
            p.grad = g
        optimizer.step()
    return losses


def _linear_only(model: nn.Module) -> bool:
    """True when every parameter belongs to an nn.Linear (our MLP / logistic tasks): fast exact clipping applies."""
    owned = {id(p) for m in model.modules() if isinstance(m, nn.Linear) for p in m.parameters(recurse=False)}
    return all(id(p) in owned for p in model.parameters())


def _clipped_sum_linear(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, max_norm: float
) -> tuple[dict[str, torch.Tensor], float]:
    """Σ_i clip(∇ℓ_i) for a model whose parameters are all in Linear layers, without per-record gradients.

    For a Linear layer with input a_i and output-gradient b_i of record i, ∇W ℓ_i = b_i a_iᵀ and ∇b ℓ_i = b_i,
    so ||∇ℓ_i||² = Σ_layers ||b_i||²·(||a_i||² + 1) ("ghost" norms, Goodfellow 2015; Li et al. 2022), and the
    clipped sum is Σ_layers (c ⊙ B)ᵀ A — two matrix products instead of a per-record gradient tensor.
    """
    captured: dict[nn.Linear, list[torch.Tensor]] = {}
    hooks = []

    def forward_hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        slot = [inputs[0].detach()]
        captured[module] = slot
        output.register_hook(lambda g: slot.append(g.detach()))

    for module in model.modules():
        if isinstance(module, nn.Linear):
            hooks.append(module.register_forward_hook(forward_hook))
    try:
        model.zero_grad(set_to_none=True)
        out = model(x)
        # reduction="sum": row i of each output gradient is record i's own gradient
        loss = nn.functional.cross_entropy(out, y, reduction="sum")
        loss.backward()
    finally:
        for h in hooks:
            h.remove()
    model.zero_grad(set_to_none=True)
    sq_norms = torch.zeros(len(y), dtype=torch.float32)
    for module, (a, b) in captured.items():
        per_record = b.pow(2).sum(1) * (a.pow(2).sum(1) + (1.0 if module.bias is not None else 0.0))
        sq_norms += per_record
    factors = (max_norm / (sq_norms.sqrt() + 1e-12)).clamp(max=1.0)
    names = {id(p): k for k, p in model.named_parameters()}
    summed: dict[str, torch.Tensor] = {}
    for module, (a, b) in captured.items():
        cb = b * factors[:, None]
        summed[names[id(module.weight)]] = cb.T @ a
        if module.bias is not None:
            summed[names[id(module.bias)]] = cb.sum(0)
    return summed, loss.item() / len(y)


def fedavg_states(states: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float] | None = None) -> StateDict:
    """Float weighted average of states (simulations and tests only; the protocol aggregates in `consensus`)."""
    if not states:
        raise ValueError("nothing to average")
    w = torch.tensor([1.0] * len(states) if weights is None else [float(x) for x in weights], dtype=torch.float64)
    w = w / w.sum()
    return {
        k: sum(wi * s[k].to(torch.float64) for wi, s in zip(w, states)).to(torch.float32) for k in states[0]
    }


def train_batched(
    task: Task,
    global_state: Mapping[str, torch.Tensor],
    shards: Sequence[TaskData],
    seeds: Sequence[int],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    momentum: float,
) -> list[StateDict]:
    """`train_local` (plain SGD with momentum, no DP, no FedProx) for many peers at once.

    The same algorithm — per-peer seeded shuffles, mini-batches of `batch_size` (last one smaller), mean
    cross-entropy per batch, SGD with momentum — but all peers step together through `torch.func.vmap`, so a
    20-peer round costs a few vectorised steps instead of hundreds of tiny ones. Peers with fewer batches sit
    out the extra steps. Results equal `train_local`'s up to float rounding (not bit-identical); the
    robustness bench uses it, the protocol and the ledger runs use `train_local`.
    """
    model = task.model_from_state(global_state)
    names = [n for n, _ in model.named_parameters()]
    p_count = len(shards)
    params = {n: global_state[n].to(torch.float32).unsqueeze(0).repeat(p_count, *([1] * global_state[n].ndim))
              for n in names}
    bufs = {n: torch.zeros_like(v) for n, v in params.items()}
    steps = [max(1, math.ceil(len(d) / batch_size)) for d in shards]
    max_steps = max(steps)
    dim = shards[0].x.shape[1]
    # Index plan: for each epoch and step, each peer's batch (padded to batch_size, mask for real samples).
    xs = torch.zeros(epochs * max_steps, p_count, batch_size, dim)
    ys = torch.zeros(epochs * max_steps, p_count, batch_size, dtype=torch.int64)
    mask = torch.zeros(epochs * max_steps, p_count, batch_size)
    active = torch.zeros(epochs * max_steps, p_count)
    for j, (d, seed) in enumerate(zip(shards, seeds)):
        gen = torch.Generator().manual_seed(int(seed))
        n = len(d)
        for e in range(epochs):
            order = torch.randperm(n, generator=gen)
            for s in range(steps[j]):
                idx = order[s * batch_size: (s + 1) * batch_size]
                t = e * max_steps + s
                xs[t, j, : len(idx)] = d.x[idx]
                ys[t, j, : len(idx)] = d.y[idx]
                mask[t, j, : len(idx)] = 1.0
                active[t, j] = 1.0

    def batch_loss(p: dict, x: torch.Tensor, y: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, p, (x,))
        ce = torch.nn.functional.cross_entropy(logits, y, reduction="none")
        return (ce * m).sum() / m.sum().clamp(min=1.0)

    step_grads = vmap(grad(batch_loss))
    for t in range(epochs * max_steps):
        g = step_grads(params, xs[t], ys[t], mask[t])
        a = active[t]
        for n in names:
            shape = (p_count,) + (1,) * (params[n].ndim - 1)
            on = a.reshape(shape)
            new_buf = momentum * bufs[n] + g[n]
            bufs[n] = torch.where(on > 0, new_buf, bufs[n])
            params[n] = torch.where(on > 0, params[n] - lr * bufs[n], params[n])
    out = []
    for j in range(p_count):
        state = {k: v.to(torch.float32).clone() for k, v in global_state.items()}
        for n in names:
            state[n] = params[n][j].detach().clone().contiguous()
        out.append(state)
    return out
