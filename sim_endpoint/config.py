"""Settings of the simulated endpoint and the faults it plants, decided by hashing.

Everything random in the simulator is a hash of (seed, what, identity) mapped to [0, 1): the same
sample always gets the same planted faults, the same request on its n-th arrival always gets the
same transport fault, whatever order requests arrive in. Tests compute exactly what was planted
with `plants()` and `transport_fault()`.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Never to be mistaken for a real model: this is what every response's `model` field says.
SIM_MODEL_NAME = "videorft-simulated-endpoint (not a model)"

FAULT_KINDS: tuple[str, ...] = ("server_error", "rate_limited", "hang", "malformed", "truncated")


class FaultRates(BaseModel):
    """Probability of each transport fault per arriving request (they partition [0, 1))."""

    model_config = ConfigDict(extra="forbid")

    server_error: float = Field(default=0.0, ge=0, le=1)  # HTTP 500
    rate_limited: float = Field(default=0.0, ge=0, le=1)  # HTTP 429 with Retry-After
    hang: float = Field(default=0.0, ge=0, le=1)  # no answer for hang_s (past the client's timeout)
    malformed: float = Field(default=0.0, ge=0, le=1)  # 200 with a cut-off JSON body
    truncated: float = Field(default=0.0, ge=0, le=1)  # 200, half the content, finish_reason "length"

    @model_validator(mode="after")
    def _sum_at_most_one(self) -> FaultRates:
        total = sum(getattr(self, k) for k in FAULT_KINDS)
        if total > 1.0 + 1e-9:
            raise ValueError(f"fault rates sum to {total:.3f} > 1")
        return self

    @classmethod
    def spread(cls, total: float) -> FaultRates:
        """`total` fault probability split evenly over every kind (0.2 → 4% each)."""
        return cls(**{k: total / len(FAULT_KINDS) for k in FAULT_KINDS})


class SimConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)  # 0: any free port
    annotations: list[Path] = Field(default_factory=list)  # synthetic annotations.jsonl files
    model_name: str = SIM_MODEL_NAME
    latency_s: float = Field(default=0.0, ge=0)
    jitter_s: float = Field(default=0.0, ge=0)  # latency is uniform in latency_s ± jitter_s
    # Or log-normal with mean latency_s and this sigma (jitter_s ignored): a real server's latency
    # follows the answer's length, and CoT lengths spread widely (sigma 0.5: p5 0.39x, p95 2.0x).
    latency_sigma: float | None = Field(default=None, gt=0, le=2)
    capacity: int = Field(default=64, ge=1)  # requests in service at once; the rest queue
    faults: FaultRates = Field(default_factory=FaultRates)
    # Scripted faults for exact tests: the k-th arrival of every request gets the k-th kind here
    # ("ok" for none); arrivals past the list fall back to the hashed rates above.
    fault_script: list[
        Literal["ok", "server_error", "rate_limited", "hang", "malformed", "truncated", "drop"]
    ] = Field(default_factory=list)
    retry_after_s: float = Field(default=1.0, ge=0)  # what a 429 asks for
    retry_after_http_date: bool = False  # send Retry-After as an HTTP date instead of seconds
    hang_s: float = Field(default=30.0, ge=0)
    # Planted content faults (per sample, see plants()).
    wrong_answer_share: float = Field(default=0.2, ge=0, le=1)
    leak_share: float = Field(default=0.3, ge=0, le=1)
    leak_survives_share: float = Field(default=0.2, ge=0, le=1)
    # "inline": the draft's reasoning is a <think> block in content (R1 without a reasoning
    # parser); "field": it comes in message.reasoning_content (vLLM --reasoning-parser).
    reasoning_mode: Literal["inline", "field"] = "inline"
    seed: int = 0
    # ---- faults of a misconfigured or broken real server (switchable at runtime: POST /sim/configure)
    # Model names served, as vLLM's --served-model-name; a request for another gets vLLM's 404.
    # Empty: any name is accepted (the demo and most tests), and GET /v1/models says so with
    # `"accepts_any_model": true` next to the simulator's own name.
    served_models: list[str] = Field(default_factory=list)
    # What GET /v1/models reports as each model's `root` (vLLM: the weights' path); default
    # "/simulated/<name>". Change it to simulate a new checkpoint under the same name.
    model_roots: dict[str, str] = Field(default_factory=dict)
    # vLLM's --api-key: requests without `Authorization: Bearer <key>` get 401 (None: no check).
    api_key: str | None = None
    # vLLM's max_model_len: a prompt with more (estimated) tokens gets vLLM's 400.
    max_model_len: int | None = Field(default=None, ge=1)
    # Models that take text only: a request with image or video parts gets a 400.
    text_only_models: list[str] = Field(default_factory=list)
    # Accept connections, never answer (chat and /v1/models); /health and /sim/* keep working.
    hang_all: bool = False
    # Close every chat request's connection mid-response.
    drop_all: bool = False
    # Serve GET /v1/models (False: 404, as some OpenAI-compatible servers do).
    models_route: bool = True

    def root_of(self, model: str) -> str:
        return self.model_roots.get(model, f"/simulated/{model}")


@dataclass(frozen=True)
class Plants:
    wrong_answer: bool  # the draft concludes a wrong answer (and the revision keeps it)
    leak_in_draft: bool  # the draft mentions captions / metadata / timestamps / key elements
    leak_survives_revision: bool  # ... and the revision keeps that leakage (implies leak_in_draft)


def unit_hash(*parts: object) -> float:
    """A deterministic number in [0, 1) from the parts."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def plants(sample_id: str, cfg: SimConfig) -> Plants:
    """What the simulator plants in this sample's draft and revision; pure."""
    leak = unit_hash(cfg.seed, "leak", sample_id) < cfg.leak_share
    return Plants(
        wrong_answer=unit_hash(cfg.seed, "wrong", sample_id) < cfg.wrong_answer_share,
        leak_in_draft=leak,
        leak_survives_revision=leak and unit_hash(cfg.seed, "survives", sample_id) < cfg.leak_survives_share,
    )


def transport_fault(request_hash: str, attempt: int, cfg: SimConfig) -> str | None:
    """The fault (one of FAULT_KINDS) for the `attempt`-th arrival (1-based) of a request, or None."""
    if attempt <= len(cfg.fault_script):
        scripted = cfg.fault_script[attempt - 1]
        return None if scripted == "ok" else scripted
    u = unit_hash(cfg.seed, "fault", request_hash, attempt)
    edge = 0.0
    for kind in FAULT_KINDS:
        edge += getattr(cfg.faults, kind)
        if u < edge:
            return kind
    return None


def latency_for(request_hash: str, attempt: int, cfg: SimConfig) -> float:
    """Seconds this arrival spends in service; deterministic per (request, attempt)."""
    sigma = cfg.latency_sigma
    if cfg.latency_s == 0 and (sigma is not None or cfg.jitter_s == 0):
        return 0.0
    u = unit_hash(cfg.seed, "latency", request_hash, attempt)
    if sigma is None:
        return max(0.0, cfg.latency_s + (2 * u - 1) * cfg.jitter_s)
    z = NormalDist().inv_cdf(min(max(u, 1e-12), 1 - 1e-12))  # u is in [0, 1); inv_cdf wants (0, 1)
    return cfg.latency_s * math.exp(sigma * z - sigma**2 / 2)  # mean latency_s
