"""Backends the stages use besides HTTP: message conversion (transformers) and the vLLM batcher.

vLLM itself is never imported here: the offline backend is driven with a fake engine and a fake
`vllm` module exposing only what the backend touches.
"""

from __future__ import annotations

import asyncio
import io
import sys
import types
from dataclasses import dataclass

import pytest

from curation.llm.errors import PermanentError
from curation.llm.gateway import EndpointConfig
from curation.llm.messages import chat_messages, image_part, text_part, video_url_part


def _jpeg(color=(10, 200, 10)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 24), color).save(buf, "JPEG")
    return buf.getvalue()


# ---- transformers: OpenAI messages -> chat template + PIL images -------------------------------


def test_to_template_messages_decodes_images_in_order():
    from curation.llm.backends.transformers_backend import to_template_messages

    messages = chat_messages(
        "sys",
        "describe",
        [
            text_part("Frame at 0.00s:"),
            image_part(_jpeg()),
            text_part("Frame at 1.00s:"),
            image_part(_jpeg((200, 0, 0))),
        ],
    )
    messages.append({"role": "assistant", "content": "bad"})
    out, images = to_template_messages(messages)
    assert out[0] == {"role": "system", "content": "sys"}
    assert [p["type"] for p in out[1]["content"]] == ["text", "image", "text", "image", "text"]
    assert out[2] == {"role": "assistant", "content": "bad"}
    assert len(images) == 2 and images[0].size == (32, 24) and images[1].getpixel((5, 5))[0] > 150


def test_to_template_messages_refuses_video_url_and_bad_images():
    from curation.llm.backends.transformers_backend import to_template_messages

    with pytest.raises(PermanentError, match="video_url"):
        to_template_messages(chat_messages("s", "u", [video_url_part("file:///x.mp4")]))
    bad = {"type": "image_url", "image_url": {"url": "https://example.com/x.jpg"}}
    with pytest.raises(PermanentError, match="data URL"):
        to_template_messages([{"role": "user", "content": [bad]}])


def test_transformers_backend_rejects_unknown_options_and_missing_folders(tmp_path):
    from curation.llm.backends.transformers_backend import TransformersBackend

    with pytest.raises(ValueError, match="unknown transformers backend options"):
        TransformersBackend(
            EndpointConfig(backend="transformers", model=str(tmp_path), options={"devcie": "cpu"})
        )
    with pytest.raises(FileNotFoundError):
        TransformersBackend(EndpointConfig(backend="transformers", model=str(tmp_path / "missing")))


# ---- vLLM offline: fake engine ------------------------------------------------------------------


@dataclass
class _Choice:
    text: str
    token_ids: list[int]
    finish_reason: str


@dataclass
class _Output:
    prompt_token_ids: list[int]
    outputs: list[_Choice]


class _FakeEngine:
    def __init__(self):
        self.calls: list[tuple[int, dict]] = []

    def chat(self, conversations, sampling, **kwargs):
        self.calls.append((len(conversations), kwargs))
        return [
            _Output(
                [1, 2, 3],
                [
                    _Choice(
                        f"answer {c[-1]['content']} t={s['temperature']}",
                        [7] * 4,
                        "length" if s.get("max_tokens") == 4 else "stop",
                    )
                ],
            )
            for c, s in zip(conversations, sampling, strict=True)
        ]


def _fake_vllm_module():
    class SamplingParams(dict):
        def __init__(self, **kw):
            super().__init__(**kw)

    class StructuredOutputsParams(dict):
        def __init__(self, **kw):
            super().__init__(**kw)

    module = types.SimpleNamespace(SamplingParams=SamplingParams)
    module.sampling_params = types.SimpleNamespace(StructuredOutputsParams=StructuredOutputsParams)
    return module


def test_vllm_import_guard(monkeypatch):
    from curation.llm.backends import vllm_backend

    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with pytest.raises(ImportError, match="install the gpu extra"):
        vllm_backend.VLLMBackend(EndpointConfig(backend="vllm", model="m"))


def test_vllm_sampling_params_map_openai_params():
    from curation.llm.backends.vllm_backend import build_sampling_params

    fake = _fake_vllm_module()
    rf = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}, "strict": True}}
    sp = build_sampling_params(
        {"temperature": 0.2, "top_p": 0.9, "max_tokens": 64, "seed": 3, "response_format": rf}, fake
    )
    assert sp["temperature"] == 0.2 and sp["max_tokens"] == 64 and sp["seed"] == 3
    assert sp["structured_outputs"] == {"json": {"type": "object"}}
    with pytest.raises(PermanentError):
        build_sampling_params({"response_format": {"type": "grammar"}}, fake)


def test_vllm_backend_batches_concurrent_requests():
    from curation.llm.backends.vllm_backend import VLLMBackend

    engine = _FakeEngine()
    backend = VLLMBackend(
        EndpointConfig(backend="vllm", model="tiny", max_in_flight=8, options={"batch_window_s": 0.05}),
        engine=engine,
        vllm_module=_fake_vllm_module(),
    )

    async def go():
        reqs = [
            backend.chat(
                [{"role": "user", "content": f"q{i}"}],
                {"temperature": 0.1 * i, "max_tokens": 4 if i == 2 else 16},
                timeout=5,
                headers={},
            )
            for i in range(5)
        ]
        out = await asyncio.gather(*reqs)
        await backend.aclose()
        return out

    results = asyncio.run(go())
    assert engine.calls == [(5, {"use_tqdm": False})]  # one engine call for the five requests
    assert results[3]["choices"][0]["message"]["content"].startswith("answer q3 t=0.3")
    assert results[2]["choices"][0]["finish_reason"] == "length"
    assert results[0]["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert results[0]["model"] == "tiny"
