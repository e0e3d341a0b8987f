"""Backend for any OpenAI-compatible HTTP endpoint (`vllm serve`, OpenAI, the simulated endpoint).

Uses the official `openai` AsyncOpenAI client over real HTTP (auth, headers, connection pool,
status-code exceptions), with its own retries switched off (`max_retries=0`): the gateway owns
retries so that every backend follows one policy and every attempt is counted. Bodies are read as
text and parsed here, so that a malformed body becomes a `MalformedResponseError` instead of an
exception from deep inside the client, and fields the typed client does not know (vLLM's
`reasoning_content`) survive untouched.
"""

from __future__ import annotations

import email.utils
import importlib.util
import json
import logging
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import openai
from openai._constants import DEFAULT_CONNECTION_LIMITS

from curation.llm.errors import MalformedResponseError, PermanentError, TransientError

if TYPE_CHECKING:
    from curation.llm.gateway import EndpointConfig

# Status codes worth another attempt (the rest of 4xx are the caller's fault). 408/409 follow the
# openai client's own retry rule: request timeout and lock conflicts clear up by themselves.
RETRYABLE_STATUS = frozenset({408, 409, 429})
# A local server needs no key, but the client insists on one.
NO_KEY = "EMPTY"
_BODY_EXCERPT = 300
# The HTTP libraries log one INFO line per request (openai 3.x logs through `httpx2`): 300K rows
# would print ~900K lines. Quiet unless someone configured these loggers on purpose (the CLI's -v).
for _name in ("httpx", "httpx2", "httpcore", "httpcore2", "openai"):
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.WARNING)
_LABEL = {"connection": "connection error", "dropped": "connection dropped mid-request"}


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, `Retry-After` (seconds or HTTP date), or None."""
    if not headers:
        return None
    lower = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lower:
        try:
            return max(0.0, float(lower["retry-after-ms"]) / 1000.0)
        except ValueError:
            pass
    value = lower.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def parse_completion_body(text: str) -> dict[str, Any]:
    """The chat.completion dict from a 200 body, or MalformedResponseError when it is not one."""
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise MalformedResponseError(f"invalid JSON ({exc.msg} at char {exc.pos}): {text[:80]!r}") from None
    choices = body.get("choices") if isinstance(body, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise MalformedResponseError(f"no choices in body: {text[:80]!r}")
    if not isinstance(choices[0].get("message"), dict):
        raise MalformedResponseError(f"choice without a message: {text[:80]!r}")
    return body


def resolve_api_key(api_key_env: str | None) -> str:
    """The key's value from the named environment variable (never stored anywhere else)."""
    if not api_key_env:
        return NO_KEY
    value = os.environ.get(api_key_env)
    if value is None:
        # Only the variable's name goes into the message, never a value.
        raise ValueError(f"environment variable {api_key_env!r} (api_key_env) is not set")
    return value


HTTP_CLIENTS = ("auto", "aiohttp", "httpx")
_OPTION_KEYS = frozenset({"http_client"})


def aiohttp_available() -> bool:
    return importlib.util.find_spec("aiohttp") is not None


# Exception class names (aiohttp, httpx/httpx2, h11) meaning the server closed the connection
# mid-request: the request reached a server that then went away (killed, crashed, restarted).
_DROPPED = frozenset(
    {
        "ServerDisconnectedError",
        "ClientPayloadError",
        "ContentLengthError",
        "TransferEncodingError",
        "RemoteProtocolError",
        "ReadError",
        "IncompleteRead",
        "ConnectionResetError",
        "BrokenPipeError",
        "ConnectionAbortedError",
    }
)
_REFUSED = frozenset({"ClientConnectorError", "ConnectError", "ConnectionRefusedError"})


def _transport_failure(exc: BaseException) -> tuple[str, str] | None:
    """("connection" | "dropped", description) for a failure hidden in an exception chain, or None.

    The aiohttp transport reports both a refused connect and a connection the server closed
    mid-response as a timeout; the chain says what really happened.
    """
    seen: set[int] = set()
    cur: BaseException | None = exc
    found: tuple[str, str] | None = None
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        name = type(cur).__name__
        if name in _DROPPED:
            return "dropped", f"{name}: {cur}"
        if name in _REFUSED or (found is None and isinstance(cur, ConnectionError)):
            found = ("connection", f"{name}: {cur}")
        cur = cur.__cause__ or cur.__context__
    return found


class OpenAIBackend:
    """One AsyncOpenAI client per endpoint; connection pool sized to the endpoint's in-flight bound.

    Endpoint option `http_client`: "aiohttp" (openai's aiohttp transport, `openai[aiohttp]`),
    "httpx" (the client's default transport), or "auto" (default: aiohttp when installed). The
    aiohttp transport needs about half the client CPU per request, which is what limits
    throughput when one small machine drives a fast endpoint; the requests are the same.
    """

    def __init__(self, cfg: EndpointConfig) -> None:
        if not cfg.base_url:
            raise ValueError(f"backend 'openai' needs a base_url (model {cfg.model!r})")
        unknown = set(cfg.options) - _OPTION_KEYS
        if unknown:
            raise ValueError(
                f"unknown option(s) {sorted(unknown)} for backend 'openai' (known: {sorted(_OPTION_KEYS)})"
            )
        choice = cfg.options.get("http_client", "auto")
        if choice not in HTTP_CLIENTS:
            raise ValueError(f"http_client must be one of {HTTP_CLIENTS}, got {choice!r}")
        if choice == "aiohttp" and not aiohttp_available():
            raise ValueError(
                "http_client 'aiohttp' needs the aiohttp package (pip install 'openai[aiohttp]')"
            )
        self.transport = (
            "aiohttp" if choice == "aiohttp" or (choice == "auto" and aiohttp_available()) else "httpx"
        )
        self.model = cfg.model
        api_key = resolve_api_key(cfg.api_key_env)
        # Kept only to scrub it from error text a server might echo back; never logged or returned.
        self._secret = api_key if api_key != NO_KEY else None
        # The pool class is whatever HTTP library this openai release is built on (httpx or httpx2).
        limits = type(DEFAULT_CONNECTION_LIMITS)(
            max_connections=cfg.max_in_flight,
            max_keepalive_connections=cfg.max_in_flight,
        )
        http_client_class = (
            openai.DefaultAioHttpClient if self.transport == "aiohttp" else openai.DefaultAsyncHttpxClient
        )
        self._client = openai.AsyncOpenAI(
            base_url=cfg.base_url,
            api_key=api_key,
            max_retries=0,
            timeout=cfg.timeout_s,
            http_client=http_client_class(limits=limits, timeout=cfg.timeout_s),
        )

    def __repr__(self) -> str:  # the client's repr is not ours to trust with the key
        return f"OpenAIBackend(model={self.model!r})"

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    async def chat(
        self,
        messages: list[dict[str, Any]],
        params: dict[str, Any],
        *,
        timeout: float,
        headers: dict[str, str],
    ) -> dict[str, Any]:
        try:
            # The client's generic `post` (its documented way to send any request body) rather than
            # the typed `chat.completions.create`: the body goes out exactly as given, server-specific
            # parameters (top_k, chat_template_kwargs, guided decoding) need no extra_body detour,
            # and it costs a third of the client CPU per request (no TypedDict transform, no model
            # parse), which is what bounds throughput on a small machine. cast_to=str: we parse.
            text = await self._client.post(
                "/chat/completions",
                body={"model": self.model, "messages": messages, **params},
                cast_to=str,
                options={"headers": headers, "timeout": timeout},
            )
        except openai.APITimeoutError as exc:
            failure = _transport_failure(exc)
            if failure is not None:  # the aiohttp transport reports these as timeouts
                kind, text = failure
                raise TransientError(self._scrub(f"{_LABEL[kind]}: {text}"), kind=kind) from None
            raise TransientError(f"timeout after {timeout:g}s", kind="timeout") from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            kind, text = _transport_failure(exc) or ("connection", f"{type(cause).__name__}: {cause}")
            raise TransientError(self._scrub(f"{_LABEL[kind]}: {text}"), kind=kind) from None
        except openai.APIStatusError as exc:
            raise self._status_error(exc) from None
        if self._secret and self._secret in text:  # a server echoing credentials back
            text = self._scrub(text)
        return parse_completion_body(text)

    def _status_error(self, exc: openai.APIStatusError) -> Exception:
        status = exc.status_code
        try:
            body = exc.response.text
        except Exception:  # a streamed/closed body: the status line is enough
            body = ""
        msg = self._scrub(f"HTTP {status}: {body[:_BODY_EXCERPT]}".rstrip(": "))
        if status in RETRYABLE_STATUS or status >= 500:
            retry_after = parse_retry_after(exc.response.headers)
            return TransientError(msg, retry_after=retry_after, kind=f"http_{status}")
        return PermanentError(msg, kind=f"http_{status}")

    async def aclose(self) -> None:
        await self._client.close()
