"""Preflight: before the first LLM stage, check every endpoint the run will use.

For each distinct endpoint (roles sharing base_url + model are checked once): its API key variable
is set, it is reachable, it accepts the key, and it serves the configured model (`GET /v1/models`;
a server without that route gets one minimal chat request instead). A run whose endpoints are not
all usable stops here, before paying for anything, with one message per broken endpoint naming
the role(s), URL, model and what to fix; never the key's value.

What the server reports for the model is returned as its *served identity*: vLLM's `/v1/models`
gives `root` (the path of the weights it loaded). The flow records it in the manifest and the
gateway puts it in the LLM cache key, so a different checkpoint served under the same model name
never gets old answers. Only HTTP (`openai`) endpoints are checked; in-process backends load their
model in the worker and fail there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from curation.llm.backends.openai_backend import resolve_api_key
from curation.llm.failures import hint_for
from curation.llm.gateway import EndpointConfig

_MAX_LISTED = 8


@dataclass
class EndpointCheck:
    """The verdict on one endpoint."""

    roles: list[str]
    base_url: str
    model: str
    ok: bool
    # What the server reports for the model (vLLM: `root`, the weights' path); "" if nothing.
    served_root: str = ""
    max_model_len: int | None = None
    problem: str = ""
    hint: str = ""

    def message(self) -> str:
        roles = ", ".join(self.roles)
        return f"{roles} endpoint {self.base_url} (model {self.model!r}): {self.problem}"

    def record(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "roles"}


class PreflightError(Exception):
    """One or more endpoints cannot serve the run; `checks` holds every failed verdict."""

    def __init__(self, checks: list[EndpointCheck]) -> None:
        super().__init__("\n".join(c.message() for c in checks))
        self.checks = checks

    def __reduce__(self) -> tuple[Any, ...]:
        return (PreflightError, (self.checks,))


def check_endpoint(roles: list[str], cfg: EndpointConfig, timeout_s: float) -> EndpointCheck:
    import httpx

    url = (cfg.base_url or "").rstrip("/")
    check = EndpointCheck(roles=roles, base_url=url, model=cfg.model, ok=False)
    try:
        key = resolve_api_key(cfg.api_key_env)
    except ValueError:
        check.problem = f"environment variable {cfg.api_key_env} (api_key_env) is not set"
        check.hint = (
            f"export {cfg.api_key_env}=<the server's API key>, or remove api_key_env if it needs none"
        )
        return check
    headers = {"Authorization": f"Bearer {key}"}
    try:
        with httpx.Client(timeout=timeout_s, headers=headers) as client:
            r = client.get(f"{url}/models")
            if r.status_code in (404, 405):  # no model list: ask for one token instead
                body = {
                    "model": cfg.model,
                    "messages": [{"role": "user", "content": "ping"}],
                    "max_tokens": 1,
                }
                r = client.post(f"{url}/chat/completions", json=body)
                return _judge_chat(check, r, cfg)
            return _judge_models(check, r, cfg)
    except httpx.ConnectError:
        check.problem = "nothing listening (connection refused)"
        check.hint = hint_for("connection")
    except httpx.TimeoutException:
        check.problem = f"no answer within {timeout_s:g}s"
        check.hint = hint_for("timeout")
    except httpx.HTTPError as exc:
        check.problem = f"connection failed ({type(exc).__name__})"
        check.hint = hint_for("connection")
    return check


def _status_problem(check: EndpointCheck, r: Any, cfg: EndpointConfig) -> bool:
    """Fill in the problem for a refusal that is not about the model; True when there was one."""
    if r.status_code in (401, 403):
        check.problem = f"the server refused the API key (HTTP {r.status_code})"
        check.hint = (
            hint_for("http_401")
            if cfg.api_key_env
            else "the server wants an API key: name the environment variable holding it in api_key_env"
        )
        return True
    if r.status_code >= 400 and r.status_code != 404:
        check.problem = f"the server answered HTTP {r.status_code}"
        check.hint = hint_for(f"http_{r.status_code}")
        return True
    return False


def _judge_models(check: EndpointCheck, r: Any, cfg: EndpointConfig) -> EndpointCheck:
    if _status_problem(check, r, cfg):
        return check
    try:
        data = r.json()
        models = {m["id"]: m for m in data.get("data", []) if isinstance(m, dict) and "id" in m}
    except (ValueError, AttributeError, TypeError):
        check.problem = "GET /models did not return a model list (is base_url an OpenAI-compatible /v1 URL?)"
        check.hint = hint_for("http_404")
        return check
    if cfg.model in models:
        entry = models[cfg.model]
        check.ok = True
        check.served_root = str(entry.get("root") or "")
        max_len = entry.get("max_model_len")
        check.max_model_len = int(max_len) if isinstance(max_len, int) else None
        return check
    if data.get("accepts_any_model"):  # the simulated endpoint: any name is served
        check.ok = True
        return check
    listed = ", ".join(sorted(models)[:_MAX_LISTED]) or "none"
    check.problem = f"the server does not serve this model (it lists: {listed})"
    check.hint = "set `model` to a name the server lists, or serve this one (vLLM: --served-model-name)"
    return check


def _judge_chat(check: EndpointCheck, r: Any, cfg: EndpointConfig) -> EndpointCheck:
    if r.status_code == 404:
        check.problem = "the server does not serve this model (HTTP 404)"
        check.hint = hint_for("http_404")
        return check
    if _status_problem(check, r, cfg):
        return check
    check.ok = True
    try:
        check.served_root = str(r.json().get("model") or "")
    except (ValueError, AttributeError):
        pass
    return check


def preflight(
    endpoints: Mapping[str, EndpointConfig], roles: Iterable[str], *, timeout_s: float = 15.0
) -> dict[str, dict[str, Any]]:
    """Check the endpoints of `roles`; return {role: verdict record} or raise PreflightError."""
    groups: dict[tuple[str, str, str, str], list[str]] = {}
    for role in roles:
        cfg = endpoints[role]
        if cfg.backend != "openai":
            continue
        groups.setdefault((*cfg.endpoint_key(), cfg.api_key_env or ""), []).append(role)
    checks = [
        check_endpoint(group, endpoints[group[0]], min(timeout_s, endpoints[group[0]].timeout_s))
        for group in groups.values()
    ]
    failed = [c for c in checks if not c.ok]
    if failed:
        raise PreflightError(failed)
    return {role: c.record() for c in checks for role in c.roles}
