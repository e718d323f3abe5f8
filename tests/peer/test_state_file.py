"""A malformed `state.json` (issue 12, finding 5): valid JSON of the wrong shape is one StateError, not a traceback.

The table runs in process against `PeerState`; a real `fedledger peer run` (on a deployed federation) then shows
that the error reaches the operator as one line naming the file, with a hint.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from peer.loop.state import PeerState, Phase, RoundRecord, StateError

FED = "0x" + "ab" * 20
ME = "0x" + "cd" * 20
GOOD_RECORD = {"round": 1, "phase": "committed", "cid": "bafkrei", "num_samples": 10, "excluded": [],
               "timings": {"train": 1.5}, "equivocations": {}}


def _doc(**changes) -> dict:
    doc = {"version": 1, "federation": FED, "address": ME, "meta": {}, "rounds": {"1": GOOD_RECORD}}
    doc.update(changes)
    return doc


#: (case, file content, words the one error line contains)
BAD_STATES = [
    ("top-level list", "[]", "top level is list"),
    ("top-level null", "null", "top level is NoneType"),
    ("null federation", _doc(federation=None), "'federation' and 'address' must be strings"),
    ("null rounds", _doc(rounds=None), "'rounds' must be an object"),
    ("rounds list", _doc(rounds=[GOOD_RECORD]), "'rounds' must be an object"),
    ("round key abc", _doc(rounds={"abc": GOOD_RECORD}), "round key \"abc\" is not a round number"),
    ("negative round key", _doc(rounds={"-1": {**GOOD_RECORD, "round": -1}}), "is not a round number"),
    ("huge round key", _doc(rounds={"9" * 30: GOOD_RECORD}), "is not a round number"),
    ("record null", _doc(rounds={"1": None}), "round 1: a round record must be an object"),
    ("record without round", _doc(rounds={"1": {"phase": "new"}}), "lacks 'round'"),
    ("record of another round", _doc(rounds={"1": {**GOOD_RECORD, "round": 2}}), "holds the record of round 2"),
    ("phase bogus", _doc(rounds={"1": {**GOOD_RECORD, "phase": "bogus"}}), "unknown phase \"bogus\""),
    ("phase null", _doc(rounds={"1": {**GOOD_RECORD, "phase": None}}), "unknown phase null"),
    ("samples string", _doc(rounds={"1": {**GOOD_RECORD, "num_samples": "ten"}}), "'num_samples'"),
    ("samples bool", _doc(rounds={"1": {**GOOD_RECORD, "num_samples": True}}), "'num_samples'"),
    ("samples huge", _doc(rounds={"1": {**GOOD_RECORD, "num_samples": 10**100}}), "'num_samples'"),
    ("samples negative", _doc(rounds={"1": {**GOOD_RECORD, "num_samples": -5}}), "'num_samples'"),
    ("cid number", _doc(rounds={"1": {**GOOD_RECORD, "cid": 5}}), "'cid'"),
    ("excluded null items", _doc(rounds={"1": {**GOOD_RECORD, "excluded": [None]}}), "'excluded'"),
    ("timings list", _doc(rounds={"1": {**GOOD_RECORD, "timings": [1]}}), "'timings'"),
    ("epsilon infinite", json.dumps(_doc(rounds={"1": {"round": 1, "epsilon": 0.25}})).replace("0.25", "1e999"),
     "'epsilon'"),
    ("meta list", _doc(meta=[]), "'meta' must be an object"),
    ("privacy history shape", _doc(meta={"privacy_history": [1, 2]}), "privacy_history"),
    ("future version", _doc(version=99), "version 99"),
    ("huge bare number", '{"federation": 1' + "0" * 5000 + "}", "is unreadable"),
    ("deep nesting", "[" * 100_000, "nested more than"),
    ("not utf-8", b"\xff\xfe{}", "not UTF-8"),
    ("not json", "{", "not valid JSON"),
]


def _write(state_dir, content) -> None:
    node = state_dir / "node"
    node.mkdir(parents=True, exist_ok=True)
    data = content if isinstance(content, (str, bytes)) else json.dumps(content)
    (node / "state.json").write_bytes(data if isinstance(data, bytes) else data.encode())


@pytest.mark.parametrize("case,content,needle", BAD_STATES, ids=[c[0] for c in BAD_STATES])
def test_malformed_state_is_one_state_error(tmp_path, case, content, needle):
    _write(tmp_path, content)
    with pytest.raises(StateError) as err:
        PeerState(tmp_path, federation=FED, address=ME)
    message = str(err.value)
    assert needle in message, message
    assert str(tmp_path / "node" / "state.json") in message and "\n" not in message
    if "belongs to" not in message and "cannot read" not in message:
        assert "restore it from a backup" in message  # the hint


def test_good_state_round_trips_and_unknown_fields_are_ignored(tmp_path):
    state = PeerState(tmp_path, federation=FED, address=ME)
    rec = state.record(3)
    state.advance(rec, Phase.VOTED, digest="ab" * 32, timings={"vote": 0.5}, excluded=[ME])
    state.meta["privacy_history"] = [[1.0, 0.5, 3]]
    state.save()
    again = PeerState(tmp_path, federation=FED, address=ME)
    assert again.rounds[3] == rec and again.meta == state.meta
    doc = json.loads(again.path.read_text())
    doc["rounds"]["3"]["added_by_a_newer_peer"] = {"x": 1}
    again.path.write_text(json.dumps(doc))
    assert PeerState(tmp_path, federation=FED, address=ME).rounds[3] == rec
    assert RoundRecord.from_json({"round": 4}).phase is Phase.NEW


def test_peer_run_prints_one_state_error_line(local_federation):
    """`fedledger peer run` on a deployed federation with a wrong-shaped state file: one line + hint, exit 1."""
    fed = local_federation(2)
    peer = fed.peers[0]
    # the file's binding (federation, address) is right, so only the shape is wrong: `[]` etc. are in the table
    for content in (_doc(federation=fed.contract, address=peer.address, rounds={"abc": {"round": 1}}),):
        _write(peer.state_dir, content)
        out = subprocess.run([sys.executable, "-m", "fedledger.cli", "peer", "run", "--config", str(peer.config_path),
                              "--max-rounds", "1", "--no-gossip"], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "COLUMNS": "1000"})
        assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
        assert "Traceback" not in out.stderr
        lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: peer state ") and "malformed" in lines[0], lines
