"""What a failed LLM request means: the endpoint is broken, or this one item is.

The gateway asks two questions of every failure a backend reports (`TransientError` /
`PermanentError` with a `kind`):

- `is_endpoint_wide(kind)`: would every other request fail the same way? Connection refused or
  dropped, timeouts, 401/403 (key), 404 (model or path not found), 5xx. Enough of these in a row,
  with no success between, open the endpoint's circuit breaker (curation/llm/gateway.py).
- `normalise_reason(kind, message)`: one short, stable reason per kind of failure, so the manifest's
  reason table counts *kinds* of failure. A server's body verbatim (numbers, ids, echoed prompts)
  made 20 failed rows show 17 distinct reasons.

`EndpointUnavailable` is what the gateway raises once the breaker is open: the request was not
sent (or its answer would not be used), the row stays pending, and the run stops with this message.
"""

from __future__ import annotations

import re

# Failure kinds that say nothing about the item: the endpoint itself does not work.
_ENDPOINT_WIDE = frozenset(
    {"connection", "dropped", "timeout", "deadline", "http_401", "http_403", "http_404"}
)


def is_endpoint_wide(kind: str) -> bool:
    if kind in _ENDPOINT_WIDE:
        return True
    return kind.startswith("http_5")


class EndpointUnavailable(Exception):  # noqa: N818 - the name says what the user needs to know
    """An endpoint failed for N requests in a row with no success between: stop sending to it.

    Picklable (shard tasks may run in Dask / Ray worker processes and the flow re-raises their
    exception): every attribute is rebuilt from `args`.
    """

    def __init__(self, role: str, base_url: str, model: str, reason: str, hint: str = "") -> None:
        super().__init__(role, base_url, model, reason, hint)
        self.role, self.base_url, self.model, self.reason, self.hint = role, base_url, model, reason, hint

    def __str__(self) -> str:
        return f"endpoint for {self.role} ({self.base_url}, model {self.model!r}) unavailable: {self.reason}"


def hint_for(kind: str) -> str:
    """What a user does about an endpoint-wide failure of this kind."""
    if kind in ("http_401", "http_403"):
        return "check the API key: the environment variable named by api_key_env must hold the key the server expects"
    if kind == "http_404":
        return (
            "check `model` (it must be one the server lists at GET /v1/models, e.g. vLLM's --served-model-name) "
            "and that base_url ends in /v1"
        )
    if kind in ("connection", "dropped"):
        return "check that the server is running and that base_url (host, port) is right"
    if kind in ("timeout", "deadline"):
        return "the server accepts connections but does not answer: check its logs (overloaded or stuck?)"
    if kind.startswith("http_5"):
        return "the server answers with errors: check its logs"
    return "check the endpoint's configuration in the recipe (llm.endpoints)"


_CONTEXT_LIMIT = re.compile(r"maximum context length is (\d+) tokens", re.I)
_MAX_TOKENS_TOO_LARGE = re.compile(r"max_(?:completion_)?tokens.{0,20}too large", re.I)
_NO_IMAGES = re.compile(
    r"(not a multimodal model|does not support (?:image|multimodal|vision)|at most 0 image|"
    r"image input is not supported|text-only model)",
    re.I,
)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def normalise_reason(kind: str, message: str) -> str:
    """A short reason that is the same for every row failing the same way."""
    if kind in ("http_400", "http_413", "http_422"):
        limit = _CONTEXT_LIMIT.search(message)
        if limit:
            m = int(limit.group(1))
            if _MAX_TOKENS_TOO_LARGE.search(message):
                return f"max_tokens too large for the model's context ({m} tokens)"
            # The prompt's own length stays out of the reason (it is in the log): one reason per limit.
            return f"prompt too long for the model's context (> {m} tokens)"
        if _NO_IMAGES.search(message):
            return "the model does not accept images (text-only model)"
    if kind == "malformed":
        return "malformed response: " + (
            "invalid JSON" if "invalid JSON" in message else "not a chat.completion"
        )
    if kind == "timeout":
        return "timeout: no answer within timeout_s"
    if kind == "deadline":
        return "no answer within the request deadline (deadline_s)"
    if kind == "connection":
        return "connection failed (nothing listening?)"
    if kind == "dropped":
        return "connection dropped by the server mid-request"
    if kind.startswith("http_"):
        # "HTTP 400: <the server's message>", with numbers and quoted values folded so that rows
        # failing the same way count as one reason.
        status = kind.removeprefix("http_")
        text = _server_message(message)
        text = re.sub(r"'[^']*'|\"[^\"]*\"|`[^`]*`", "'…'", text)
        text = _NUMBER.sub("N", text)
        return f"HTTP {status}: {text[:120]}".rstrip(": ")
    return message[:200]


def _server_message(message: str) -> str:
    """The `message` of an OpenAI-style error body inside "HTTP 400: {...}", else the text."""
    import json

    _, _, body = message.partition(": ")
    if not body:
        return ""
    try:
        data = json.loads(body)
    except ValueError:
        return body or message
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"]
        if isinstance(data.get("message"), str):
            return data["message"]
    return body
