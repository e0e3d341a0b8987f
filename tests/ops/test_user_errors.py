"""User mistakes end in one `error:` line and a `hint:` line, exit status 2, no traceback, and before
any Prefect flow starts; `--debug` shows the traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from curation.config import RecipeError, load_recipe, recipe_from_dict
from curation.user_errors import UserError, check_inputs
from flows import cli

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_flow(monkeypatch):
    """Fail the test if the curate flow (and so Prefect's temporary server) is ever started."""
    import flows.curate

    def refuse(*_a, **_k):
        raise AssertionError("the curate flow started although the input was wrong")

    monkeypatch.setattr(flows.curate, "curate", type("F", (), {"with_options": lambda *a, **k: refuse})())


def _recipe(tmp_path: Path, **patch) -> Path:
    data = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    ann = tmp_path / "annotations.jsonl"
    ann.write_text('{"media_path": "a.mp4", "problem": "q?", "solution": "1", "problem_type": "numerical"}\n')
    data["source"]["path"] = str(ann)
    for section, values in patch.items():
        data.setdefault(section, {}).update(values)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _run_cli(capsys, *argv: str) -> tuple[int, list[str]]:
    rc = cli.main(list(argv))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return rc, err.strip().splitlines()


def test_missing_annotation_file_fails_before_any_flow(tmp_path, capsys, no_flow):
    rc, lines = _run_cli(
        capsys,
        "curate",
        str(_recipe(tmp_path)),
        "--source",
        str(tmp_path / "nope.jsonl"),
        "--runs-dir",
        str(tmp_path),
    )
    assert rc == 2
    assert lines == [
        f"error: source file not found: {tmp_path / 'nope.jsonl'}",
        "hint: pass --source PATH (or set source.path in the recipe) to your annotation file, "
        "Video-R1 JSON or saved dataset folder",
    ]
    assert not (tmp_path / "demo").exists()  # no run folder was made either


def test_unknown_recipe_key_names_the_key_and_suggests_the_right_one(tmp_path, capsys, no_flow):
    recipe = _recipe(tmp_path, run={"shard_sise": 4})
    rc, lines = _run_cli(capsys, "curate", str(recipe))
    assert rc == 2 and len(lines) == 2
    assert (
        lines[0]
        == f"error: invalid recipe {recipe}: run.shard_sise: unknown key (did you mean 'shard_size'?)"
    )
    assert lines[1].startswith("hint: ")


def test_debug_shows_the_traceback(tmp_path, no_flow):
    with pytest.raises(UserError, match="source file not found"):
        cli.main(["curate", str(_recipe(tmp_path)), "--source", str(tmp_path / "nope.jsonl"), "--debug"])
    with pytest.raises(UserError):
        cli.main(["--debug", "curate", str(_recipe(tmp_path)), "--source", str(tmp_path / "nope.jsonl")])


@pytest.mark.parametrize(
    ("patch", "stages", "message"),
    [
        ({"source": {"media_root": "/no/such/media"}}, ["extract"], "media root not found: /no/such/media"),
        (
            {"caption": {"prompt_dir": "/no/prompts"}},
            ["caption"],
            "prompt folder of the caption stage does not exist",
        ),
        ({"source": {"format": "auto", "path": "__ann__.txt"}}, ["sources"], "cannot tell the format"),
    ],
)
def test_input_checks(tmp_path, patch, stages, message):
    recipe_path = _recipe(tmp_path)
    data = yaml.safe_load(recipe_path.read_text())
    for section, values in patch.items():
        data.setdefault(section, {}).update(values)
    if data["source"]["path"] == "__ann__.txt":
        (tmp_path / "ann.txt").write_text("{}\n")
        data["source"]["path"] = str(tmp_path / "ann.txt")
    rec = recipe_from_dict(data)
    with pytest.raises(UserError, match=message) as info:
        check_inputs(rec, stages)
    assert info.value.hint
    check_inputs(rec, ["filter"])  # stages that need none of it do not care


def test_missing_api_key_variable(tmp_path, monkeypatch):
    data = yaml.safe_load(_recipe(tmp_path).read_text())
    data["llm"]["endpoints"]["reasoner"]["api_key_env"] = "VIDEORFT_TEST_KEY"
    monkeypatch.delenv("VIDEORFT_TEST_KEY", raising=False)
    with pytest.raises(UserError, match="VIDEORFT_TEST_KEY is not set") as info:
        check_inputs(recipe_from_dict(data), ["draft"])
    assert "export VIDEORFT_TEST_KEY=" in info.value.hint


def test_recipe_errors_are_user_errors(tmp_path):
    with pytest.raises(RecipeError, match="recipe not found") as info:
        load_recipe(tmp_path / "missing.yaml")
    assert isinstance(info.value, UserError) and isinstance(info.value, ValueError)
    with pytest.raises(
        RecipeError, match=r"llm.endpoints.captioner.base_ur: unknown key \(did you mean 'base_url'\?\)"
    ):
        recipe_from_dict(
            {"source": {"path": "x"}, "llm": {"endpoints": {"captioner": {"model": "m", "base_ur": "u"}}}}
        )


def test_inspect_unknown_id(tmp_path, capsys):
    from curation.store import RunStore

    RunStore(tmp_path / "run").write_shard(
        "sources", 0, [{"id": "abc", "key": "k", "status": "ok", "reason": ""}]
    )
    rc, lines = _run_cli(capsys, "inspect", str(tmp_path / "run"), "--id", "zzz")
    assert (
        rc == 2
        and lines[0] == f"error: no sample 'zzz' in {tmp_path / 'run'}"
        and lines[1].startswith("hint:")
    )


@pytest.mark.integration
def test_the_installed_command_prints_two_lines(tmp_path):
    """The real `videorft` process: two lines on stderr, status 2, nothing on stdout."""
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect")}
    proc = subprocess.run(
        [sys.executable, "-m", "flows.cli", "curate", str(_recipe(tmp_path)), "--source", "nope.jsonl"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.splitlines() == [
        f"error: source file not found: nope.jsonl (relative to {tmp_path})",
        "hint: pass --source PATH (or set source.path in the recipe) to your annotation file, "
        "Video-R1 JSON or saved dataset folder",
    ]
    assert not list(tmp_path.rglob("*.db"))  # no Prefect server (nor its database) was started
