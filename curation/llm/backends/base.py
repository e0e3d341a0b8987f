"""The `Backend` protocol: one chat completion in, one OpenAI chat.completion dict out.

A backend does exactly one attempt. Retries, timeouts' policy, concurrency bounds, caching and
accounting belong to the gateway, so every backend (HTTP, in-process transformers, offline vLLM)
behaves the same from a stage's point of view.

Failures are reported only as `TransientError` (retry may help) or `PermanentError` (it will not);
see `curation/llm/errors.py`.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

# Messages are OpenAI chat messages: {"role": ..., "content": str | list[part]}, parts being
# {"type": "text", "text": ...}, {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,..."}}
# or {"type": "video_url", "video_url": {"url": ...}}.
Message = dict[str, Any]


@runtime_checkable
class Backend(Protocol):
    async def chat(
        self,
        messages: list[Message],
        params: dict[str, Any],
        *,
        timeout: float,
        headers: dict[str, str],
    ) -> dict[str, Any]:
        """Return the OpenAI chat.completion JSON dict for one attempt.

        `params` are the request's sampling parameters (temperature, max_tokens, response_format,
        ...) already merged with the endpoint's `extra_body`; `headers` carry e.g.
        `X-Videorft-Sample-Id` (HTTP backends send them, in-process backends may ignore them).
        """
        ...

    async def aclose(self) -> None:
        """Release connections / models. Called once, on the gateway's event loop."""
        ...
