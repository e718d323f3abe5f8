"""The error types of the consensus package: one root, `ConsensusError`."""
from __future__ import annotations


class ConsensusError(Exception):
    """Base of every error the protocol core raises."""


class CodecError(ConsensusError, ValueError):
    """A blob or tensor set is not (or cannot become) a canonical update: the one error of the codec."""


class AggregationError(ConsensusError, ValueError):
    """A rule cannot run on these inputs (unknown rule, bad parameter, too few valid updates for f)."""


class RoundNotAggregatable(ConsensusError):
    """Too few valid updates for the federation's rule and f: honest peers do not vote; the round fails."""
