"""Backends behind the gateway, chosen by `EndpointConfig.backend`.

Imported lazily by name: the transformers backend pulls torch/transformers and the vLLM one needs
the GPU extra, neither of which an HTTP-only curation worker should pay for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from curation.llm.backends.base import Backend, Message

if TYPE_CHECKING:
    from curation.llm.gateway import EndpointConfig

# backend name -> (module, class) implementing the Backend protocol.
BACKENDS: dict[str, tuple[str, str]] = {
    "openai": ("curation.llm.backends.openai_backend", "OpenAIBackend"),
    "transformers": ("curation.llm.backends.transformers_backend", "TransformersBackend"),
    "vllm": ("curation.llm.backends.vllm_backend", "VLLMBackend"),
}


def make_backend(cfg: EndpointConfig) -> Backend:
    """Instantiate the backend named by `cfg.backend` with the endpoint config."""
    try:
        module_name, class_name = BACKENDS[cfg.backend]
    except KeyError:
        raise ValueError(f"unknown backend {cfg.backend!r}; known: {sorted(BACKENDS)}") from None
    module = importlib.import_module(module_name)
    return getattr(module, class_name)(cfg)


__all__ = ["BACKENDS", "Backend", "Message", "make_backend"]
