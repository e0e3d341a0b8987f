"""The two kinds of failure a backend reports, so the gateway alone decides what to retry.

Backends translate their own exceptions (HTTP status codes, connection errors, CUDA OOM, ...) into
these; the gateway never inspects backend-specific exception types.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base class for errors raised by LLM backends."""


class TransientError(GatewayError):
    """Worth retrying: connection refused/reset, timeout, 429, 5xx, a malformed 200 body.

    `retry_after` (seconds) is the server's own hint (Retry-After header); the gateway waits at
    least that long before the next attempt instead of its computed backoff.
    `kind` names the failure for the gateway's counters ("timeout", "connection", "http_503", ...).
    """

    def __init__(self, msg: str, retry_after: float | None = None, *, kind: str = "transient") -> None:
        super().__init__(msg)
        self.retry_after = retry_after
        self.kind = kind


class MalformedResponseError(TransientError):
    """A 200 answer whose body is not a chat.completion (invalid JSON, no choices).

    Transient on purpose: nothing usable came back (and nothing is cached), so another attempt is
    the only way to get an answer; when attempts run out the row fails with "malformed response: ...".
    """

    def __init__(self, msg: str) -> None:
        super().__init__(msg, kind="malformed")


class PermanentError(GatewayError):
    """Not worth retrying: 4xx other than 408/409/429 (bad request, unknown model, auth).

    The row fails with this message.
    """

    def __init__(self, msg: str, *, kind: str = "permanent") -> None:
        super().__init__(msg)
        self.kind = kind
