"""`videorft demo`: the whole curation path on this machine, offline, in a few minutes.

It generates synthetic videos with exact ground truth, starts the SIMULATED OpenAI-compatible
endpoint (a test double that answers from that ground truth; it is not a model), runs the curate
flow in Prefect's local mode against it, publishes the datasets, writes the report and prints
where everything is. The same recipe runs against vLLM or any OpenAI-compatible API by changing
the endpoint URLs (see the message printed at the end).
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from curation.config import expand_env, recipe_from_dict

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_RECIPE = REPO_ROOT / "configs" / "demo.yaml"

_BANNER = """\
======================================================================
 videorft demo: the LLM endpoint in this demo is SIMULATED.
 It is a local test server that answers from the synthetic videos'
 ground truth (with planted mistakes and leakage for the filters to
 catch). It is not a model; its responses name it in the model field.
======================================================================"""

_REAL_ENDPOINT_HELP = """\
To run the same recipe against real models, serve them with vLLM (or use any OpenAI-compatible
API) and point the recipe's endpoints at them, e.g.:

  vllm serve Qwen/Qwen2.5-VL-72B-Instruct --port 8000          # captioner + reviser
  vllm serve deepseek-ai/DeepSeek-R1 --port 8001 --reasoning-parser deepseek_r1   # reasoner
  export VIDEORFT_VLM_URL=http://HOST:8000/v1 VIDEORFT_REASONER_URL=http://HOST:8001/v1
  videorft curate configs/vllm.yaml --source YOUR/annotations.jsonl --media-root YOUR/videos --run mine
"""


def demo_recipe(workdir: Path, annotations: Path, base_url: str) -> dict:
    """configs/demo.yaml with this demo's paths and the simulated endpoint's URL filled in."""
    os.environ["VIDEORFT_SIM_URL"] = base_url
    data = expand_env(yaml.safe_load(DEMO_RECIPE.read_text()))
    data["source"]["path"] = str(annotations)
    data["source"]["media_root"] = str(annotations.parent)
    data["run"]["runs_dir"] = str(workdir / "runs")
    data.setdefault("publish", {})["out_dir"] = str(workdir / "datasets")
    return data


def run_demo(workdir: Path, n: int = 60, train: bool = False) -> dict:
    from curation.sources.synthetic import generate
    from flows.curate import run_curate
    from flows.progress import progress_bars
    from sim_endpoint.server import SimConfig, running_sim_server

    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    print(_BANNER)
    annotations = generate(workdir / "synth", n, seed=0)
    print(f"[1/4] {n} synthetic videos and questions: {annotations}")

    sim_cfg = SimConfig(annotations=[str(annotations)], latency_s=0.02, jitter_s=0.01, capacity=32)
    with running_sim_server(sim_cfg) as base_url:
        print(f"[2/4] simulated endpoint (not a model) listening on {base_url}")
        recipe = recipe_from_dict(demo_recipe(workdir, annotations, base_url), origin=str(DEMO_RECIPE))
        with progress_bars():
            manifest = run_curate(recipe=recipe)
    print("[3/4] curate flow finished (Prefect local mode)")

    run_dir = Path(manifest["run_dir"])
    print("[4/4] outputs")
    _print_outputs(manifest, run_dir)

    if train:
        from flows.demo_train import run_demo_training

        run_demo_training(workdir, manifest)
    print()
    print(_REAL_ENDPOINT_HELP)
    return manifest


def _print_outputs(manifest: dict, run_dir: Path) -> None:
    from flows.cli import _print_summary
    from flows.next_steps import closing_lines

    _print_summary(manifest)
    print(f"manifest: {run_dir / 'manifest.json'}")
    print("\n".join(closing_lines(manifest)))
