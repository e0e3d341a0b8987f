"""What a user's folder holds: containers by content, rotation, variable frame rate, large frames,
animated GIF/WebP as video, and images as a viewer shows them (EXIF, 16-bit, palette, alpha, CMYK).

Media are made with Debian's ffmpeg and Pillow, tiny (80x60 and up), once per session.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from ffmpeg_media import encode, ffprobe_times, rotate
from media_makers import coded_frame, frame_number
from PIL import Image

from curation.records import Sample
from curation.stages.extract import extract_sample
from curation.video import VideoConfig, VideoError, probe, sample_frames
from curation.video.readers import VIDEO_READERS

READERS = sorted(VIDEO_READERS)
SMALL = {"min_pixels": 28 * 28, "max_pixels": 160 * 120}  # keep tiny clips near their size


def only(reader: str, **fields) -> VideoConfig:
    return VideoConfig(reader=reader, fallback_readers=[], **{**SMALL, **fields})


# ---- containers users have, recognised by content ----------------------------------------------

CONTAINERS = {
    # name: (ffmpeg output args, size)
    "clip.mpg": (["-c:v", "mpeg2video", "-q:v", "2", "-f", "mpeg"], (160, 120)),
    "clip.ts": (
        ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-f", "mpegts"],
        (160, 120),
    ),
    "clip.mts": (
        ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-f", "mpegts"],
        (160, 120),
    ),
    "clip.3gp": (["-c:v", "mpeg4", "-q:v", "2", "-f", "3gp"], (176, 144)),
    "clip.wmv": (["-c:v", "wmv2", "-q:v", "2", "-f", "asf"], (160, 120)),
    "clip.flv": (["-c:v", "flv1", "-q:v", "2", "-f", "flv"], (160, 120)),
    "clip.webm": (["-c:v", "libvpx-vp9", "-deadline", "realtime", "-b:v", "1M", "-f", "webm"], (160, 120)),
    # A video whose name says nothing: the content decides.
    "camera_dump.bin": (
        ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-f", "mp4"],
        (160, 120),
    ),
}


@pytest.fixture(scope="module")
def containers(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("containers")
    return {name: encode(folder / name, 20, size, args=args) for name, (args, size) in CONTAINERS.items()}


@pytest.mark.parametrize("name", sorted(CONTAINERS))
def test_every_container_the_decoders_read_is_accepted(containers, name, tmp_path):
    from curation.sources.paths import media_kind

    path = containers[name]
    assert media_kind(name, path) == "video"  # the extension, or (for .bin) the content
    sample = Sample("s1", name, "video", "q?", "a", "free-form", "test")
    row = extract_sample(sample, path.parent, tmp_path, VideoConfig(num_frames=8, **SMALL))
    assert row["status"] == "ok", row["reason"]
    assert len(row["frame_indices"]) == 8 and row["frame_indices"][0] == 0 and row["frame_indices"][-1] == 19
    first = np.asarray(Image.open(tmp_path / row["frame_paths"][3]))
    assert frame_number(first) == row["frame_indices"][3]  # the frame the row says, whichever reader


def test_unknown_content_keeps_a_clear_reason(tmp_path):
    from curation.sources.paths import media_kind

    junk = tmp_path / "notes.dat"
    junk.write_text("shopping list\n")
    assert media_kind("notes.dat", junk) is None
    assert media_kind("missing.dat", tmp_path / "missing.dat") is None


# ---- rotation -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rotated(tmp_path_factory) -> dict[int, Path]:
    folder = tmp_path_factory.mktemp("rotated")
    plain = encode(folder / "plain.mp4", 12, (160, 96))
    return {deg: rotate(plain, folder / f"rot{deg}.mp4", deg) for deg in (90, 180, 270)}


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_every_reader_turns_phone_clips_upright(rotated, degrees):
    frames = {r: np.stack(sample_frames(rotated[degrees], only(r, num_frames=4)).frames) for r in READERS}
    upright = np.rot90(coded_frame(0, 160, 96), degrees // 90)  # what a player shows
    for reader, got in frames.items():
        assert got.shape[1:3] == ((84, 168) if degrees == 180 else (168, 84)), reader  # smart_resize, upright
        # The red marker sits where the player shows it (corner of the rotated frame).
        marker = (
            np.argwhere((upright[..., 0] > 200) & (upright[..., 1] < 60)).mean(axis=0) / upright.shape[:2]
        )
        found = np.argwhere((got[0, ..., 0] > 180) & (got[0, ..., 1] < 80)).mean(axis=0) / got.shape[1:3]
        assert np.allclose(marker, found, atol=0.08), (reader, marker, found)
    reference = frames["decord"].astype(int)
    for reader, got in frames.items():
        assert np.abs(got.astype(int) - reference).mean() < 2.0, reader
    info = probe(rotated[degrees], "pyav")
    assert (info.width, info.height) == ((160, 96) if degrees == 180 else (96, 160))


# ---- variable frame rate ---------------------------------------------------------------------------


@pytest.mark.parametrize("reader", READERS)
def test_vfr_frame_times_are_the_streams_pts(vfr_clip, reader):
    truth = ffprobe_times(vfr_clip)
    sampled = sample_frames(vfr_clip, only(reader))
    one_frame = 1 / 30
    for index, t in zip(sampled.indices, sampled.timestamps, strict=True):
        assert abs(t - truth[index]) <= one_frame, (index, t, truth[index])
    # Uniform in time: 16 frames evenly over 8.8 s; by index 12 of them would be in the first 3 s.
    assert sum(t < 3.0 for t in sampled.timestamps) == 6
    step = truth[-1] / 15
    assert all(abs(t - k * step) <= 0.2 + one_frame for k, t in enumerate(sampled.timestamps))


def test_captioner_sees_true_frame_times(vfr_clip, tmp_path):
    from curation.stages.caption import CaptionConfig
    from curation.stages.llm_common import build_media

    sample = Sample("vfr1", vfr_clip.name, "video", "q?", "a", "free-form", "test")
    row = extract_sample(sample, vfr_clip.parent, tmp_path, VideoConfig(**SMALL))
    media = build_media(sample, row, tmp_path, CaptionConfig())
    truth = ffprobe_times(vfr_clip)
    assert media.timestamps == pytest.approx([truth[i] for i in row["frame_indices"]], abs=1 / 30)
    labels = [p["text"] for p in media.parts if p.get("type") == "text"]
    assert any("8.8" in text or "00:00:08" in text for text in labels)  # the last frame's true time


# ---- large frames: decoded at the target size ---------------------------------------------------


@pytest.mark.parametrize("reader", ["decord", "pyav"])
def test_large_frames_decode_straight_to_the_target(qwen_sources, reader):
    path = qwen_sources["16:9"]
    full = sample_frames(path, only(reader, max_pixels=128 * 28 * 28, min_pixels=4 * 28 * 28))
    scaled = sample_frames(
        path, only(reader, max_pixels=128 * 28 * 28, min_pixels=4 * 28 * 28, large_frame_pixels=1000)
    )
    assert scaled.indices == full.indices
    assert {f.shape for f in scaled.frames} == {f.shape for f in full.frames} == {(224, 420, 3)}
    # Another filter (FFmpeg's scaler instead of Pillow's), the same picture.
    assert np.abs(np.stack(scaled.frames).astype(int) - np.stack(full.frames).astype(int)).mean() < 6.0
    assert [frame_number(f) for f in scaled.frames] == scaled.indices


def test_large_sources_try_the_cheaper_reader_first():
    cfg = VideoConfig()
    assert cfg.readers_to_try(1280 * 720) == ["decord", "opencv", "pyav"]
    assert cfg.readers_to_try(3840 * 2160) == ["decord", "opencv", "pyav"]  # decord, decoding to size
    tight = VideoConfig(large_frame_reader="pyav")
    assert tight.readers_to_try(1920 * 1080) == ["decord", "opencv", "pyav"]  # 1080p is not large
    assert tight.readers_to_try(3840 * 2160) == ["pyav", "decord", "opencv"]


# ---- animated GIF / WebP as video --------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animated_images_are_videos_when_annotated_so(tmp_path, fmt):
    frames = [Image.fromarray(coded_frame(i, 96, 72)) for i in range(12)]
    path = tmp_path / f"anim.{fmt.lower()}"
    durations = [50] * 6 + [200] * 6  # 20 fps, then 5 fps
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    frames[0].save(
        path, format=fmt, save_all=True, append_images=frames[1:], duration=durations, loop=0, **kwargs
    )
    video = Sample("g1", path.name, "video", "q?", "a", "free-form", "test")
    row = extract_sample(video, tmp_path, tmp_path / "run", VideoConfig(num_frames=4, **SMALL))
    assert row["status"] == "ok", row["reason"]
    assert row["frame_count"] == 12 and row["frame_indices"][0] == 0 and row["frame_indices"][-1] == 11
    assert row["timestamps"][-1] == pytest.approx(0.3 + 5 * 0.2)  # from the stored durations
    stored = [np.asarray(Image.open(tmp_path / "run" / p)) for p in row["frame_paths"]]
    assert [frame_number(f) for f in stored] == row["frame_indices"]
    still = Sample("g2", path.name, "image", "q?", "a", "free-form", "test")
    assert extract_sample(still, tmp_path, tmp_path / "run2", VideoConfig())["frame_count"] == 1


def test_sources_accept_an_animated_gif_annotated_as_video(tmp_path):
    from curation.sources.validate import Prepared, build_sample

    frames = [Image.fromarray(coded_frame(i, 96, 72)) for i in range(3)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=100)
    fields = {"media_path": "a.gif", "problem": "q?", "solution": "a", "problem_type": "free-form"}
    as_video = build_sample(
        Prepared({**fields, "data_type": "video"}), media_root=tmp_path, default_source="t"
    )
    assert as_video.data_type == "video"
    assert build_sample(Prepared(fields), media_root=tmp_path, default_source="t").data_type == "image"


# ---- images as a viewer shows them ----------------------------------------------------------------


def _still(path: Path) -> np.ndarray:
    return sample_frames(path, VideoConfig(), image=True).frames[0]


def test_exif_orientation_6_is_stored_upright(tmp_path):
    # A phone held upright stores a landscape JPEG (the sensor's way) plus "rotate 90 CW to view".
    upright = coded_frame(5, 120, 200)  # what the user saw: portrait, red marker top-left
    stored = np.rot90(upright, 1)  # the sensor's landscape pixels (turned 90 degrees counter-clockwise)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    Image.fromarray(np.ascontiguousarray(stored)).save(path, exif=exif.tobytes(), quality=95)
    frame = _still(path)
    assert frame.shape[0] > frame.shape[1]  # portrait, as shown
    assert frame[5, 5, 0] > 180 and frame[5, 5, 1] < 80  # the red marker top-left
    assert frame_number(frame) == 5
    sample = Sample("p1", "phone.jpg", "image", "q?", "a", "free-form", "test")
    row = extract_sample(sample, tmp_path, tmp_path / "run", VideoConfig())
    assert row["frame_height"] > row["frame_width"] and (row["width"], row["height"]) == (120, 200)


def test_16_bit_png_keeps_its_levels(tmp_path):
    ramp = (np.arange(256 * 64).reshape(64, 256) * 4).astype(np.uint16)  # 0 .. 65532
    path = tmp_path / "deep.png"
    Image.fromarray(ramp).save(path)
    frame = _still(path)
    grey = frame[..., 0].astype(int)
    assert grey.min() < 10 and grey.max() > 245 and 100 < grey.mean() < 155  # not all white
    assert np.array_equal(frame[..., 0], frame[..., 2])


def _in_mode(mode: str) -> Image.Image:
    base = Image.new("RGB", (84, 84), (200, 30, 30))
    base.paste((20, 30, 200), (42, 0, 84, 84))
    if mode == "P-transparent":
        img = base.convert("P")
        img.info["transparency"] = 255  # an unused palette slot: nothing turns white
        return img
    if mode == "I;16":  # a real 16-bit scan: the full 0..65535 range
        return Image.fromarray(np.asarray(base.convert("L")).astype(np.uint16) * 257)
    return base.convert(mode)


@pytest.mark.parametrize("mode", ["P", "P-transparent", "RGBA", "CMYK", "LA", "L", "1", "I;16"])
def test_every_pixel_mode_becomes_rgb(tmp_path, mode):
    img = _in_mode(mode)
    path = tmp_path / ("img.jpg" if mode == "CMYK" else "img.png")
    img.save(path, **({"transparency": 255} if mode == "P-transparent" else {}))
    frame = _still(path)
    assert frame.dtype == np.uint8 and frame.shape == (84, 84, 3)
    left, right = frame[40, 10].astype(int), frame[40, 70].astype(int)
    if mode in ("L", "LA", "1", "I;16"):
        assert abs(left[0] - left[2]) < 3  # grey
        if mode != "1":
            assert abs(left[0] - 81) <= 3 and abs(right[0] - 46) <= 3  # the luma of red and blue, 8-bit
    else:
        assert left[0] > 150 and left[2] < 90 and right[2] > 150, (mode, left, right)


def test_transparent_pixels_are_white(tmp_path):
    img = Image.new("RGBA", (56, 56), (255, 0, 0, 255))
    img.paste((0, 0, 0, 0), (28, 0, 56, 56))
    img.save(tmp_path / "a.png")
    frame = _still(tmp_path / "a.png")
    assert tuple(frame[20, 5]) == (255, 0, 0) and tuple(frame[20, 50]) == (255, 255, 255)


def test_images_use_their_own_pixel_budget(tmp_path):
    chart = np.full((1080, 1920, 3), 255, np.uint8)
    Image.fromarray(chart).save(tmp_path / "chart.png")
    frame = _still(tmp_path / "chart.png")
    assert frame.shape == (336, 588, 3)  # 256*28*28 (VideoRFT's images), not a video frame's 420x224
    small = sample_frames(tmp_path / "chart.png", VideoConfig(image_max_pixels=64 * 28 * 28), image=True)
    assert small.frames[0].shape[0] * small.frames[0].shape[1] <= 64 * 28 * 28
    # The extract stage stores that size: caption and revise send these frames.
    sample = Sample("c1", "chart.png", "image", "q?", "a", "OCR", "test")
    row = extract_sample(sample, tmp_path, tmp_path / "run", VideoConfig())
    assert (row["frame_width"], row["frame_height"]) == (588, 336)


def test_a_symlinked_file_reads_like_the_file(qwen_sources, tmp_path):
    link = tmp_path / "link.mp4"
    link.symlink_to(qwen_sources["4:3"])
    assert probe(link).frame_count == 40
    shutil.copy(qwen_sources["4:3"], tmp_path / "copy.mp4")
    with pytest.raises(VideoError):
        probe(tmp_path / "nothing.mp4")
