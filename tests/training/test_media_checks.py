"""Media in training: a wrong media root fails before the model loads, naming files; a row whose media
cannot be decoded is skipped with a warning and counted, and SFT, GRPO and evaluation complete."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def broken_media(media_root, tmp_path_factory) -> Path:
    """The test media plus `videos/broken.mp4`, the first half of a real clip (a download cut short)."""
    root = tmp_path_factory.mktemp("broken-media") / "media"
    shutil.copytree(media_root, root)
    data = (root / "videos" / "clip0.mp4").read_bytes()
    (root / "videos" / "broken.mp4").write_bytes(data[: len(data) // 2])
    return root


def _broken_row(rows: list[dict]) -> dict:
    from curation.records import sample_id

    row = dict(rows[0], media_path="videos/broken.mp4")
    row["id"] = sample_id(row["data_source"], row["media_path"], row["problem"])
    return row


@pytest.fixture
def dataset_with_a_broken_row(tmp_path, rows) -> Path:
    """train: every test row twice plus one row whose video is truncated; test: the same."""
    import datasets

    train = [*rows, _broken_row(rows), *rows]
    out = tmp_path / "broken-dataset" / "cot"
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list(train),
            "test": datasets.Dataset.from_list([*rows, _broken_row(rows)]),
        }
    ).save_to_disk(str(out))
    return out


# ---- preflight -----------------------------------------------------------------------------------


def test_preflight_names_the_missing_files(rows, media_root, tmp_path):
    from training.media_checks import MediaPreflightError, preflight_media

    report = preflight_media(rows, media_root)
    assert report.checked == report.media_files == 5 and report.missing == []
    with pytest.raises(MediaPreflightError) as caught:
        preflight_media(rows, tmp_path)  # the wrong media root
    message = str(caught.value)
    assert "5 of 5 media files of the train split are missing" in message
    assert "images/img0.png" in message and "is media_root right?" in message
    extra = [*rows, dict(rows[0], media_path="videos/gone.mp4")]
    with pytest.raises(MediaPreflightError, match="1 of 6 .* videos/gone.mp4"):
        preflight_media(extra, media_root)
    allowed = preflight_media(extra, media_root, max_missing=0.2)  # then skipped in training
    assert allowed.missing == ["videos/gone.mp4"]


def test_preflight_samples_big_sets_the_same_way_every_time(rows, media_root):
    from training.media_checks import check_media_files, preflight_media

    many = [dict(rows[0], media_path=f"videos/missing{i:04d}.mp4") for i in range(300)] + rows
    first = check_media_files(many, media_root, max_files=50)
    assert first.checked == 50 and first.media_files == 305
    assert check_media_files(many, media_root, max_files=50).missing == first.missing
    assert preflight_media(many, media_root, max_files=0).checked == 0  # turned off


@pytest.mark.integration
def test_a_wrong_media_root_fails_before_the_model_loads(tmp_path, tiny_dataset, repo_root, test_video):
    from training.media_checks import MediaPreflightError
    from training.sft import run_sft

    with pytest.raises(MediaPreflightError, match="videos/clip0.mp4"):
        run_sft(
            repo_root / "recipes/tiny/sft.yaml",
            model_name_or_path=str(tmp_path / "no-model-here"),  # never reached
            dataset_name=str(tiny_dataset),
            media_root=str(tmp_path / "wrong"),
            output_dir=str(tmp_path / "sft"),
            **test_video,
        )


# ---- skipping undecodable rows -------------------------------------------------------------------


def test_sft_collator_drops_the_row_and_counts_it(tiny_processor, media_loader, rows, broken_media, tmp_path):
    from training.data import SFTCollator
    from training.media_checks import SKIPS_FILE, MediaSkips, RowReplacer
    from training.video_io import MediaLoader

    loader = MediaLoader(broken_media, media_loader.video, maxsize=8)
    skips = MediaSkips(tmp_path)
    collator = SFTCollator(tiny_processor, loader, replacer=RowReplacer(rows, loader, skips))
    batch = collator([rows[1], _broken_row(rows)])
    assert batch["input_ids"].shape[0] == 1 and skips.total() == 1
    only_bad = collator([_broken_row(rows)])  # an emptied batch takes a decodable row instead
    assert only_bad["input_ids"].shape[0] == 1 and skips.total() == 2
    logged = [json.loads(line) for line in (tmp_path / SKIPS_FILE).read_text().splitlines()]
    assert logged[0]["media_path"] == "videos/broken.mp4" and logged[0]["reason"].startswith("truncated file")


@pytest.fixture
def run_on_broken_set(
    tmp_path, tiny_qwen_dir, dataset_with_a_broken_row, broken_media, repo_root, test_video
):
    """`run(entry, stage, **overrides)`: a tiny recipe over the set with the broken video."""

    def run(entry, stage: str, **overrides):
        settings = {
            "model_name_or_path": str(tiny_qwen_dir),
            "dataset_name": str(dataset_with_a_broken_row),
            "media_root": str(broken_media),
            "output_dir": str(tmp_path / stage),
            **test_video,
            **overrides,
        }
        return entry(repo_root / f"recipes/tiny/{stage}.yaml", **settings)

    return run


@pytest.mark.integration
def test_sft_over_a_set_with_a_broken_video_completes_and_reports_the_skip(
    run_on_broken_set, tmp_path, caplog
):
    from training.sft import run_sft

    result = run_on_broken_set(run_sft, "sft", max_steps=6)  # batch 2: 12 rows, the broken one among them
    out = tmp_path / "sft"
    assert result["metrics"]["media_skipped"] >= 1
    assert any(h.get("media_skipped", 0) >= 1 for h in result["log_history"])
    assert json.loads((out / "train_results.json").read_text())["media_skipped"] >= 1
    assert json.loads((out / "videorft_run.json").read_text())["media_skipped"] >= 1
    assert "skipping row" in caplog.text and "videos/broken.mp4" in caplog.text


@pytest.mark.integration
def test_grpo_over_a_set_with_a_broken_video_completes_and_reports_the_skip(run_on_broken_set, tmp_path):
    from training.grpo import run_grpo

    result = run_on_broken_set(
        run_grpo,
        "grpo",
        max_train_samples=6,  # the broken row is the 6th
        max_steps=3,
        gradient_accumulation_steps=1,
        num_generations=2,
        per_device_train_batch_size=4,
        max_completion_length=8,
    )
    out = tmp_path / "grpo"
    assert result["trainer"] == "VideoGRPOTrainer"
    assert result["metrics"]["media_skipped"] >= 1
    skips = [json.loads(line) for line in (out / "media_skips.jsonl").read_text().splitlines()]
    assert {s["media_path"] for s in skips} == {"videos/broken.mp4"}
    record = json.loads((out / "videorft_run.json").read_text())
    assert record["media_preflight"]["train"]["checked"] == 6  # distinct media files of 6 rows


@pytest.mark.integration
def test_evaluation_leaves_the_row_out_and_counts_it(run_on_broken_set):
    from training.evaluate import run_eval

    # Evaluation's own rule (training/evaluate.py): skipping is asked for, else it stops naming the rows.
    metrics = run_on_broken_set(run_eval, "eval", max_new_tokens=4, skip_bad_media=True)
    assert metrics["overall"]["n"] == 5 and metrics["skipped_media"] == 1
