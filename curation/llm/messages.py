"""OpenAI chat messages with media, the one place that knows the multimodal wire format.

Frames go out as JPEG data URLs, each preceded by a text part `Frame at 1.50s:` so that the model
(and the simulated endpoint) can tie every image to its time; the frame JPEGs are the exact bytes
the extract stage wrote (no re-encoding, so the request, and its cache key, are reproducible).
Servers that take whole videos (`vllm serve` with Qwen2.5-VL) can get one `video_url` part instead.
"""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

Message = dict[str, Any]
Part = dict[str, Any]
ImageDetail = Literal["auto", "low", "high"]


def data_url(data: bytes, mime: str = "image/jpeg") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def decode_data_url(url: str) -> tuple[str, bytes]:
    """(mime type, bytes) of a base64 data URL; ValueError for anything else."""
    if not url.startswith("data:") or ";base64," not in url:
        raise ValueError(f"not a base64 data URL: {url[:40]!r}")
    header, payload = url[len("data:") :].split(";base64,", 1)
    return header or "application/octet-stream", base64.b64decode(payload)


def text_part(text: str) -> Part:
    return {"type": "text", "text": text}


def image_part(jpeg: bytes, detail: ImageDetail | None = None) -> Part:
    image_url: dict[str, Any] = {"url": data_url(jpeg)}
    if detail is not None:  # left out by default: some servers reject unknown keys
        image_url["detail"] = detail
    return {"type": "image_url", "image_url": image_url}


def frame_label(t: float) -> str:
    return f"Frame at {t:.2f}s:"


def read_frame(run_dir: Path, rel_path: str) -> bytes:
    """Bytes of a frame file; paths in extract rows are relative to the run dir (never absolute)."""
    path = Path(run_dir) / rel_path
    if Path(rel_path).is_absolute() or ".." in Path(rel_path).parts:
        raise ValueError(f"frame path {rel_path!r} must be relative to the run dir")
    return path.read_bytes()


def frame_parts(
    run_dir: Path,
    frame_paths: Sequence[str],
    timestamps: Sequence[float],
    *,
    detail: ImageDetail | None = None,
) -> list[Part]:
    """`Frame at t:` text + JPEG image part for every frame, in order.

    Raises FileNotFoundError naming the frame when one is missing (the stage turns it into a
    failed row).
    """
    if len(frame_paths) != len(timestamps):
        raise ValueError(f"{len(frame_paths)} frame paths but {len(timestamps)} timestamps")
    parts: list[Part] = []
    for rel, t in zip(frame_paths, timestamps, strict=True):
        parts.append(text_part(frame_label(float(t))))
        parts.append(image_part(read_frame(run_dir, rel), detail))
    return parts


def image_parts(run_dir: Path, rel_path: str, *, detail: ImageDetail | None = None) -> list[Part]:
    """A still image as one image part (no time label)."""
    return [image_part(read_frame(run_dir, rel_path), detail)]


def video_url_part(url: str) -> Part:
    return {"type": "video_url", "video_url": {"url": url}}


def video_url_for(media_path: str, prefix: str, *, inline: bool = False) -> str:
    """URL of a source video for `video_url` mode.

    `prefix` is where the media root is reachable from the server (`file:///data/media`,
    `https://bucket/media`); with `inline`, the file is read through a `file://` prefix and sent as a
    data URL instead (servers that cannot read the worker's files).
    """
    url = prefix.rstrip("/") + "/" + media_path.lstrip("/")
    if not inline:
        return url
    if not url.startswith("file://"):
        raise ValueError(f"inline video needs a file:// prefix, got {prefix!r}")
    path = Path(url[len("file://") :])
    mime = mimetypes.guess_type(path.name)[0] or "video/mp4"
    return data_url(path.read_bytes(), mime)


def chat_messages(system: str, user_text: str, media: Sequence[Part] = ()) -> list[Message]:
    """[system, user]; the user message is plain text without media, else media parts then text.

    Media come first (Qwen-VL and the paper's prompts read "the video above"); a text-only user
    message stays a string, so text-only servers and the cache key see the simplest form.
    """
    messages: list[Message] = [{"role": "system", "content": system}]
    if media:
        messages.append({"role": "user", "content": [*media, text_part(user_text)]})
    else:
        messages.append({"role": "user", "content": user_text})
    return messages


def has_media(messages: Sequence[Message]) -> bool:
    """True when any message carries an image or video part."""
    for message in messages:
        content = message.get("content")
        if isinstance(content, list) and any(p.get("type") in ("image_url", "video_url") for p in content):
            return True
    return False
