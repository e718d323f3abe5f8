"""Large models (slow, not in the default suite): the 11M-parameter task's shapes, and one peer process's peak RSS
through collect + aggregate of a 10-peer round stays under 2 GiB (bench.scale_rss measures it; no timing)."""
from __future__ import annotations

import pytest

from peer.learning.tasks import get_task

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def test_wide_digits_tasks_have_the_advertised_sizes() -> None:
    sizes = {name: sum(t.numel() for t in get_task(name).genesis_state().values())
             for name in ("digits-5m", "digits-11m", "digits-25m")}
    assert sizes == {"digits-5m": 4_852_234, "digits-11m": 11_038_730, "digits-25m": 24_908_250}


def test_peak_rss_of_one_peer_in_an_11m_parameter_10_peer_round_is_under_2_gib() -> None:
    from bench.scale_rss import measure

    got = measure("digits-11m", 10, epochs=1)
    assert got["rejected"] == 0 and got["excluded"] == 2  # every update collected; Multi-Krum drops f = 2
    assert got["peak_reset"], "cannot reset the high-water mark here (/proc/self/clear_refs)"
    assert got["peak_collect_aggregate"] <= 2 * 2**30, got
