"""One module per aggregation rule; RULES maps the protocol's rule names to them."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from consensus.aggregators.arc import arc
from consensus.aggregators.base import RuleInput, RuleOutput
from consensus.aggregators.bucketing import bucketing
from consensus.aggregators.bulyan import bulyan
from consensus.aggregators.centered_clipping import centered_clipping
from consensus.aggregators.dedup import dedup
from consensus.aggregators.fedavg import fedavg
from consensus.aggregators.krum import krum, multi_krum
from consensus.aggregators.median import median
from consensus.aggregators.nnm import nnm
from consensus.aggregators.rescale import rescale
from consensus.aggregators.trimmed_mean import trimmed_mean

Rule = Callable[[RuleInput, dict[str, Any]], RuleOutput]
RULES: dict[str, Rule] = {
    "fedavg": fedavg,
    "krum": krum,
    "multi_krum": multi_krum,
    "trimmed_mean": trimmed_mean,
    "median": median,
    "bulyan": bulyan,
    "centered_clipping": centered_clipping,
}
PRE_AGGREGATORS = {"nnm": nnm, "arc": arc, "bucketing": bucketing, "rescale": rescale,
                   "dedup": dedup}

__all__ = ["PRE_AGGREGATORS", "RULES", "RuleInput", "RuleOutput"]
