"""LLM access for the curation stages: one gateway, several backends, a response cache.

Usage::

    from curation.llm import ChatRequest, EndpointConfig, Gateway
    with Gateway({"reasoner": EndpointConfig(base_url=..., model=...)}, cache_path=run_dir / "llm_cache.sqlite") as gw:
        results = gw.run([ChatRequest("reasoner", messages, {"temperature": 0.6}, tag=sample.id)])
"""

from curation.llm.cache import ResponseCache, cache_key
from curation.llm.errors import GatewayError, MalformedResponseError, PermanentError, TransientError
from curation.llm.failures import EndpointUnavailable
from curation.llm.gateway import (
    ROLES,
    SAMPLE_ID_HEADER,
    ChatRequest,
    ChatResult,
    EndpointConfig,
    Gateway,
    split_think,
)

__all__ = [
    "ROLES",
    "SAMPLE_ID_HEADER",
    "ChatRequest",
    "ChatResult",
    "EndpointConfig",
    "EndpointUnavailable",
    "Gateway",
    "GatewayError",
    "MalformedResponseError",
    "PermanentError",
    "ResponseCache",
    "TransientError",
    "cache_key",
    "split_think",
]
