"""Accuracy of every finalized global model on a task's test set, for the auditor's report.

The task is passed in (anything with `model_spec()` and `evaluate(state)`, e.g. `peer.learning.tasks.Task`), so the
auditor needs no training code; each model blob is fetched by CID and checked against the hash the chain
finalized before it is decoded.
"""
from __future__ import annotations

from typing import Any, Protocol

import consensus
from ledger_tools.audit.history import LedgerHistory
from ledger_tools.blob_caps import ModelBlobError, fetch_model


class EvaluationTask(Protocol):
    def model_spec(self) -> Any: ...

    def evaluate(self, state: Any) -> Any: ...


class ModelSpecMismatch(ValueError):
    """The task builds another model than the federation's (its model spec hash differs)."""


def evaluate_models(history: LedgerHistory, store: Any, task: EvaluationTask) -> tuple[dict[int, dict[str, float]],
                                                                                       list[str]]:
    """round (0 = genesis) -> {"accuracy", "loss"}, and one problem line per model that could not be evaluated."""
    if task.model_spec().spec_hash() != history.params.model_spec_hash:
        raise ModelSpecMismatch("the task builds another model than this federation's (model spec hash differs)")
    models = [(0, history.params.genesis_model_hash, history.params.genesis_model_cid)]
    models += [(rec.round, rec.finalization.aggregate_hash, rec.finalization.aggregate_cid)
               for rec in history.finalized()]
    metrics, problems = {}, []
    for r, digest, cid in models:
        try:
            result = task.evaluate(consensus.decode(fetch_model(store, cid, digest, task.model_spec())))
        except ModelBlobError as exc:
            problems.append(f"model of round {r} not evaluated: {exc}")
            continue
        metrics[r] = {"accuracy": result.accuracy, "loss": result.loss}
    return metrics, problems
