"""The error types of the consensus package."""
from __future__ import annotations


class CodecError(ValueError):
    """A blob or tensor set is not (or cannot become) a canonical update: the one error of the codec."""


class AggregationError(ValueError):
    """A rule cannot run on these inputs (unknown rule, bad parameter, too few valid updates for f)."""
