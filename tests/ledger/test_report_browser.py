"""The HTML audit report opens in headless Chromium without errors and shows its plots."""
from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import consensus
from fedledger.cli import app
from fedledger.errors import UserError
from helpers.ledger_history import make_history
from peer.learning.tasks import get_task

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def test_report_renders_in_headless_chromium(anvil, ipfs_store, dev_keys, tmp_path):
    task = get_task("breast_cancer")
    h = make_history(anvil.rpc_url, ipfs_store, dev_keys[0].private_key, n_members=4, seed=7, account_seed="report",
                     task=task)
    for _ in range(3):
        h.run_round()
    out = tmp_path / "report.html"
    base = ["audit", "--rpc", h.rpc_url, "--contract", h.address, "--ipfs", h.store.api_url,
            "--cache-dir", str(tmp_path / "cache"), "report", "--out", str(out)]
    res = CliRunner().invoke(app, [*base, "--task", "digits"])
    assert isinstance(res.exception, UserError) and "builds another model" in res.exception.message
    res = CliRunner().invoke(app, [*base, "--task", "breast_cancer"])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    # self-contained: nothing loaded from elsewhere (the endpoint URLs appear only as provenance text)
    assert not re.search(r"(src|href|url)\s*[=(]\s*['\"]?https?://", text) and "<link" not in text
    assert f"<td>Ethereum RPC</td><td class='mono'>{h.rpc_url}</td>" in text
    assert text.count("data:image/png;base64,") == 4  # accuracy/loss, contribution, rewards, gas
    assert "id='plot-metrics'" in text and "id='no-exclusions'" in text  # nobody excluded: said, not plotted
    for r in (1, 3):  # the accuracy column is the finalized model's, evaluated on the task's test split
        accuracy = task.evaluate(consensus.decode(h.outcomes[r].new_model)).accuracy
        row = text.split("id='rounds'")[1].split(f"<tr><td>{r}</td><td>finalized</td>")[1].split("</tr>")[0]
        assert row.endswith(f"<td>{accuracy:.3f}</td>")

    profile = tmp_path / "profile"
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", out.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-plots-loaded="4"' in dom.stdout  # every embedded PNG decoded
    assert "Uncaught" not in dom.stderr

    shot = tmp_path / "shot.png"
    run = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={shot}",
                          "--window-size=1200,2400", out.as_uri()], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.std() > 20  # not blank
    non_white = (pixels < 240).any(axis=2).mean()
    assert non_white > 0.05, f"only {non_white:.1%} of the page is drawn"
    colours = len(np.unique(pixels.reshape(-1, 3)[::37], axis=0))
    assert colours > 50  # plots, not only text
