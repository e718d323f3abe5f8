"""bench.robustness_byzfl --report-only: rebuilding the doc from result files wherever they are."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from bench import robustness_byzfl

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"


def _cells(path: Path, rule: str) -> list[str]:
    return [line for line in path.read_text().splitlines() if json.loads(line)["rule"] == rule]


def test_more_seeds_outside_the_repository_is_pooled(tmp_path: Path) -> None:
    """Regression: a --more-seeds directory outside the repository (a scratch run in /tmp) crashed the report with
    pathlib's ValueError after the whole bench had run, instead of pooling its seeds."""
    out, more = tmp_path / "run", tmp_path / "more"
    out.mkdir()
    more.mkdir()
    lines = _cells(RESULTS / "robustness_byzfl.jsonl", "centered_clipping")
    (out / "robustness_byzfl.jsonl").write_text("\n".join(lines) + "\n")
    shutil.copy(RESULTS / "robustness_byzfl_more_seeds" / "robustness_byzfl.jsonl", more)
    doc = tmp_path / "doc.md"
    assert robustness_byzfl.main(["--report-only", "--no-best", "--rules", "centered_clipping", "--out", str(out),
                                  "--more-seeds", str(more), "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert f"## The same pairs over more seeds (`{more / 'robustness_byzfl.jsonl'}`)" in text
    assert "| centered_clipping | ipm | 30 % | 11 |" in text
