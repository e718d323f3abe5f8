"""Nearest Neighbour Mixing (Allouah, Farhadkhani, Guerraoui, Gupta, Pinot, Stephan, "Fixing by Mixing:
A Recipe for Optimal Byzantine ML under Heterogeneity", AISTATS 2023), composable as "nnm+<rule>".

Each update i is replaced by the exact mean (rounded half to even) of its n-f nearest updates, itself
included, nearest by exact squared distance with ties broken by lowest canonical index; the inner rule then
runs on the mixed updates with the same f, and peer i receives the inner rule's score of mixed update i.
ByzFL's `NNM` does the same in float (torch.topk/argsort tie order); Flower has no NNM.
"""
from __future__ import annotations

from consensus.aggregators.base import RuleInput
from consensus.feasibility import require_feasible
from consensus.intmath import mix_rows, sq_distances


def nnm(inp: RuleInput) -> RuleInput:
    require_feasible("nnm", inp.n, inp.f)
    dist = sq_distances(inp.rows, inp.workers)
    keep = inp.n - inp.f
    groups = [sorted(range(inp.n), key=lambda j: (dist[i][j], j))[:keep] for i in range(inp.n)]
    return RuleInput(mix_rows(inp.rows, groups, inp.workers), inp.weights, inp.f, inp.workers, mixed=True)
