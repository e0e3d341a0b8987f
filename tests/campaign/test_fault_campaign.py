"""The fault campaign (benchmarks/fault_campaign.py) as tests.

Reduced (`make test`, about a minute): every transport fault kind at 10% in one run, two SIGKILLs
of the CLI mid-run, a run store on a tmpfs that fills up; after each, a rerun to completion and
the invariants: no lost rows, no duplicate ids, a manifest that matches the tables, nothing paid
twice beyond what a kill or a full disk made impossible to store.
Full (`-m slow`): each kind at 5%, 20% and 50%, two chains of a kill in every stage, the full disk.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import fault_campaign as fc  # noqa: E402


def _assert_holds(results: list[dict]) -> None:
    failing = [f for f in fc.figures(results) if f["holds"] is False]
    detail = json.dumps(
        [
            {k: r.get(k) for k in ("scenario", "problems", "rc", "kills", "sim", "sim_total", "stderr")}
            for r in results
        ],
        indent=1,
        default=str,
    )
    assert not failing, f"{failing}\n{detail[-6000:]}"


@pytest.mark.integration
def test_reduced_fault_campaign(tmp_path):
    results = fc.campaign(quick=True, work=tmp_path)
    _assert_holds(results)
    by_name = {r["scenario"]: r for r in results}
    faults = by_name["faults-all-10pct"]
    assert all(faults["sim_total"][k] > 0 for k in fc.FAULT_KINDS), faults["sim_total"]
    assert sum(k["killed"] for k in by_name["kills"]["kills"]) == 2, by_name["kills"]["kills"]
    disk = by_name["full-disk"]
    if not disk.get("skipped"):
        assert disk["first_rc"] != 0 and disk["saw_enospc"], disk
    # The bad corpus: every bad annotation row and bad video is accounted for with a reason.
    rows = faults["rows"]
    assert rows["sources"] == by_name["kills"]["rows"]["sources"]
    assert faults["failed"]["extract"] == 4  # zero-byte, truncated, not a video, missing


@pytest.mark.slow
def test_full_fault_campaign(tmp_path):
    results = fc.campaign(quick=False, work=tmp_path)
    _assert_holds(results)
    kills = [k for r in results if "kills" in r for k in r["kills"]]
    assert sum(k["killed"] for k in kills) >= 10, kills
