"""Path safety: nothing a row says may make a stage read outside the media root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from curation.sources.paths import UnsafePathError, media_kind, normalize_media_path, resolve_media


@pytest.fixture
def root(tmp_path: Path) -> Path:
    media = tmp_path / "media"
    (media / "videos").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.mp4").write_bytes(b"x")
    return media


def test_relative_path_is_normalised(root: Path):
    rel, absolute = resolve_media(root, "./videos/a.mp4")
    assert rel == "videos/a.mp4"
    assert absolute == root.resolve() / "videos" / "a.mp4"
    assert resolve_media(root, "videos//x/../a.mp4")[0] == "videos/a.mp4"
    assert resolve_media(root, "videos\\a.mp4")[0] == "videos/a.mp4"  # Windows-written annotations


def test_missing_file_is_not_an_error_here(root: Path):
    # Existence is the extract stage's check, so the row is accounted for there.
    assert resolve_media(root, "videos/not_there.mp4")[0] == "videos/not_there.mp4"


@pytest.mark.parametrize(
    "bad", ["../../etc/passwd", "..", "a/../../x.mp4", "videos/../../outside/secret.mp4"]
)
def test_dotdot_escapes_are_rejected(root: Path, bad: str):
    with pytest.raises(UnsafePathError) as info:
        resolve_media(root, bad)
    assert info.value.reason == f"media path escapes the media root: {bad}"


def test_absolute_outside_is_rejected(root: Path):
    with pytest.raises(UnsafePathError) as info:
        resolve_media(root, "/etc/passwd")
    # The file name only: an absolute local path never reaches a reason (reasons reach dataset cards).
    assert info.value.reason == "absolute media path outside the media root: …/passwd"


def test_absolute_inside_becomes_relative(root: Path):
    rel, absolute = resolve_media(root, str(root / "videos" / "a.mp4"))
    assert rel == "videos/a.mp4"
    assert absolute == root.resolve() / "videos" / "a.mp4"


def test_absolute_inside_through_a_symlinked_root(tmp_path: Path, root: Path):
    link_root = tmp_path / "root_link"
    os.symlink(root, link_root)
    # Spelled through the link or through the real folder: both are inside, both give the same id input.
    assert resolve_media(link_root, str(link_root / "videos" / "a.mp4"))[0] == "videos/a.mp4"
    assert resolve_media(link_root, str(root / "videos" / "a.mp4"))[0] == "videos/a.mp4"


def test_symlink_escaping_the_root_is_rejected(tmp_path: Path, root: Path):
    os.symlink(tmp_path / "outside" / "secret.mp4", root / "videos" / "link.mp4")
    os.symlink(tmp_path / "outside", root / "escape_dir")
    for path in ("videos/link.mp4", "escape_dir/secret.mp4"):
        with pytest.raises(UnsafePathError) as info:
            resolve_media(root, path)
        assert info.value.reason == f"media path resolves outside the media root through a symlink: {path}"
        assert str(tmp_path) not in info.value.reason  # the link's local target is never shown


def test_symlink_inside_the_root_is_fine(root: Path):
    (root / "videos" / "real.mp4").write_bytes(b"x")
    os.symlink(root / "videos" / "real.mp4", root / "alias.mp4")
    assert resolve_media(root, "alias.mp4")[0] == "alias.mp4"  # the name given, not the target


@pytest.mark.parametrize("bad", ["", "   ", ".", "a\x00b.mp4"])
def test_degenerate_paths(root: Path, bad: str):
    with pytest.raises(UnsafePathError):
        resolve_media(root, bad)


def test_media_kind_and_normalise():
    assert media_kind("a/B.MP4") == "video"
    assert media_kind("x.webm") == "video"
    assert media_kind("x.JPeG") == "image"
    assert media_kind("x.txt") is None
    assert media_kind("noext") is None
    assert normalize_media_path("./a/./b.mp4") == "a/b.mp4"
    assert normalize_media_path("//abs/x.mp4") == "/abs/x.mp4"
