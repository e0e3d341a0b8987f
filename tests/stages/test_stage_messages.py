"""Chat messages with media: frame labels, JPEG data URLs, video_url, text-only."""

from __future__ import annotations

import pytest
from stage_fakes import make_extract, make_sample

from curation.llm.messages import (
    chat_messages,
    decode_data_url,
    frame_parts,
    has_media,
    image_parts,
    video_url_for,
    video_url_part,
)


def test_frame_parts_label_each_jpeg_with_its_time(run_dir):
    sample = make_sample(0)
    extract = make_extract(run_dir, sample, n_frames=3)
    parts = frame_parts(run_dir, extract["frame_paths"], extract["timestamps"])
    assert [p["type"] for p in parts] == ["text", "image_url"] * 3
    assert [p["text"] for p in parts[::2]] == ["Frame at 0.50s:", "Frame at 1.50s:", "Frame at 2.50s:"]
    mime, data = decode_data_url(parts[1]["image_url"]["url"])
    assert mime == "image/jpeg"
    assert data == (run_dir / extract["frame_paths"][0]).read_bytes()  # the stored bytes, not re-encoded
    assert "detail" not in parts[1]["image_url"]
    detailed = frame_parts(run_dir, extract["frame_paths"][:1], [0.5], detail="low")
    assert detailed[1]["image_url"]["detail"] == "low"


def test_frame_paths_must_stay_inside_the_run_dir(run_dir):
    with pytest.raises(ValueError):
        frame_parts(run_dir, ["../outside.jpg"], [0.0])
    with pytest.raises(FileNotFoundError):
        frame_parts(run_dir, ["frames/missing.jpg"], [0.0])


def test_image_is_one_part_without_label(run_dir):
    sample = make_sample(1, data_type="image")
    extract = make_extract(run_dir, sample)
    parts = image_parts(run_dir, extract["frame_paths"][0])
    assert [p["type"] for p in parts] == ["image_url"]


def test_video_url_part_and_inline(tmp_path):
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "a.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    url = video_url_for("videos/a.mp4", f"file://{tmp_path}/")
    assert url == f"file://{tmp_path}/videos/a.mp4"
    assert video_url_part(url) == {"type": "video_url", "video_url": {"url": url}}
    inline = video_url_for("videos/a.mp4", f"file://{tmp_path}", inline=True)
    mime, data = decode_data_url(inline)
    assert mime == "video/mp4" and data.startswith(b"\x00\x00\x00\x18ftyp")


def test_text_only_messages_have_a_string_user_content():
    messages = chat_messages("sys", "hello")
    assert messages == [{"role": "system", "content": "sys"}, {"role": "user", "content": "hello"}]
    assert not has_media(messages)
    with_media = chat_messages("sys", "hello", [video_url_part("file:///x.mp4")])
    assert with_media[1]["content"][-1] == {"type": "text", "text": "hello"}
    assert has_media(with_media)
