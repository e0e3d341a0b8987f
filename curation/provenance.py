"""Which model actually wrote a run's text: the name each response carried, and whether it was simulated.

A recipe names the model it *asks* for (`llm.endpoints.<role>.model`); a server answers with its own
name in every chat.completion's `model` field (vLLM: `--served-model-name`, an API: the resolved
snapshot). Only the second says where the data came from, so stage rows record it (`served_model`),
the manifest sums it per stage, and publish puts it in the cards, publish.json and the `model_*`
columns.

The simulated endpoint (sim_endpoint/) is not a model. It says so in every response: its `model`
field names it ("videorft-simulated-endpoint (not a model)" unless reconfigured) and its
`system_fingerprint` is always "videorft-simulated-endpoint" (it also sends an
`X-Videorft-Simulated: true` header, which the response cache does not keep; the body markers
survive the cache, so a rerun served from it is still recognised).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

# The markers the simulated endpoint puts in every response body (sim_endpoint/server.py).
SIMULATED_FINGERPRINT = "videorft-simulated-endpoint"
SIMULATED_NAME_MARKERS = ("videorft-simulated-endpoint", "(not a model)")
LLM_STAGES: tuple[str, ...] = ("caption", "draft", "revise")


def response_is_simulated(raw: Mapping[str, Any] | None) -> bool:
    """True when a chat.completion body comes from the simulated endpoint."""
    if not raw:
        return False
    if raw.get("system_fingerprint") == SIMULATED_FINGERPRINT:
        return True
    return is_simulated_name(str(raw.get("model") or ""))


def is_simulated_name(name: str | None) -> bool:
    return bool(name) and any(m in str(name) for m in SIMULATED_NAME_MARKERS)


def stage_provenance(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Manifest entries of one LLM stage from its rows' `served_model` / `simulated` columns.

    `served_models`: model name -> rows it answered (rows without an answer are not counted);
    `simulated`: whether any row was answered by the simulated endpoint.
    """
    served: Counter = Counter()
    simulated = False
    for row in rows:
        name = row.get("served_model")
        if name:
            served[str(name)] += 1
        simulated = simulated or bool(row.get("simulated")) or is_simulated_name(name)
    return {"served_models": dict(served.most_common()), "simulated": simulated}


def run_provenance(stages: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """What a run's LLM stages were asked for and what answered, from the manifest's `stages`.

    {"simulated": bool, "models": {stage: {"requested": name, "served": [names, most rows first]}}}
    """
    models: dict[str, dict[str, Any]] = {}
    simulated = False
    for stage in LLM_STAGES:
        entry = stages.get(stage) or {}
        if not entry.get("model") and not entry.get("served_models"):
            continue  # a stage that did not run, or a manifest from before models were recorded
        served = list((entry.get("served_models") or {}).keys())
        models[stage] = {"requested": entry.get("model") or "", "served": served}
        simulated = simulated or bool(entry.get("simulated")) or any(is_simulated_name(s) for s in served)
    return {"simulated": simulated, "models": models}
