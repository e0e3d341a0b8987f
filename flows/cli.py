"""The `videorft` command line. Each subcommand is a thin call into curation/, training/ or flows/."""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

STAGE_CHOICES = ("sources", "extract", "caption", "draft", "revise", "filter", "publish")


def _setup_logging(verbose: bool) -> None:
    # Quiet, structured logs by default: one line per event, libraries at WARNING.
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # One INFO line per HTTP request from the clients would be ~900K lines for 300K rows (openai
    # 3.x logs through `httpx2`); they show with -v only.
    for noisy in (
        "httpx",
        "httpx2",
        "httpcore",
        "httpcore2",
        "urllib3",
        "openai",
        "aiohttp",
        "uvicorn.access",
        "datasets",
        "filelock",
    ):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)


def cmd_synth(args: argparse.Namespace) -> int:
    from curation.sources.synthetic import generate

    path = generate(Path(args.out), args.n, seed=args.seed)
    print(f"wrote {args.n} synthetic samples: annotations {path}, videos under {Path(args.out) / 'videos'}")
    return 0


def cmd_curate(args: argparse.Namespace) -> int:
    """Run the flow; the last lines say how it ended and what to do next. Exit statuses:
    curation/run_outcome.py (0 completed, 1 failed, 2 user error, 3 endpoint unavailable;
    130 / 143 interrupted by SIGINT / SIGTERM)."""
    from curation.run_outcome import exit_status, failure_lines
    from curation.stop import Interrupted
    from curation.user_errors import UserError
    from flows.curate import resolve_recipe, run_curate
    from flows.interrupt import RunInterrupted, exit_now, print_interrupted, stop_on_signals
    from flows.next_steps import closing_lines
    from flows.progress import progress_bars

    flags = dict(
        source=args.source,
        media_root=args.media_root,
        runs_dir=args.runs_dir,
        run=args.run,
        # Pushed by the publish step itself (publish.push_to_hub), once, after a successful publish.
        push_to_hub=args.push_to_hub,
        hub_token_env=args.hub_token_env,
    )
    run_flags = dict(
        progress_interval=args.progress_interval,
        executor=args.executor,
        workers=args.workers,
        address=args.address,
        wait_for_lock=True if args.wait_for_lock else None,
    )
    quiet = _KnownOutcomeFilter()
    if not getattr(args, "debug", False):
        # A broken endpoint or too many failed rows is told in the last lines below; Prefect's
        # traceback of it first would bury them.
        logging.getLogger("prefect.flow_runs").addFilter(quiet)
    # Ctrl-C / SIGTERM: the run stops within seconds, is recorded as interrupted, and we say so in
    # one line with the shell's status (130 / 143); the traceback only with --debug.
    try:
        with stop_on_signals(), progress_bars():
            manifest = run_curate(
                args.config, until=args.until, from_stage=args.from_stage, **flags, **run_flags
            )
    except RunInterrupted as err:
        if args.debug:
            raise
        print_interrupted(err)
        exit_now(err.exit_status)
    except Interrupted as err:  # before the run started: nothing to record
        if args.debug:
            raise
        print(f"interrupted ({err}) before the run started; nothing was done", file=sys.stderr)
        return err.exit_status
    except (KeyboardInterrupt, UserError, FileNotFoundError):
        raise  # main() prints a user error (exit status 2)
    except Exception as err:  # noqa: BLE001 - every way a run can end gets its own last lines
        if getattr(args, "debug", False):
            raise
        run_dir = resolve_recipe(args.config, None, **flags).run_dir
        manifest_path = Path(run_dir) / "manifest.json"
        if manifest_path.exists():
            _print_summary(json.loads(manifest_path.read_text()))
        print("\n".join(failure_lines(err, str(run_dir))), file=sys.stderr)
        return exit_status(err)
    finally:
        logging.getLogger("prefect.flow_runs").removeFilter(quiet)
    _print_summary(manifest)
    print(f"run {manifest.get('run_name')}: completed")
    print("\n".join(closing_lines(manifest)))
    return 0


class _KnownOutcomeFilter(logging.Filter):
    """Drops Prefect's "Encountered exception" record (with traceback) for the ways a run ends
    that the CLI explains itself: endpoint unavailable, preflight failed, too many failed rows."""

    def filter(self, record: logging.LogRecord) -> bool:
        from curation.run_outcome import KNOWN_OUTCOMES

        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, KNOWN_OUTCOMES)


def _print_summary(manifest: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    if not manifest.get("stages"):
        print(f"run {manifest.get('run_name')} ({manifest.get('status')}): no stage ran")
        return
    table = Table(title=f"run {manifest.get('run_name')} ({manifest.get('status')})")
    for col in ("stage", "in", "ok", "rejected", "failed", "reused", "llm req", "cache hits", "seconds"):
        table.add_column(col, justify="right" if col != "stage" else "left")
    for stage, d in manifest.get("stages", {}).items():
        partial = f" ({d['shards']} of {d['shards_total']} shards)" if d.get("partial") else ""
        table.add_row(
            stage + partial,
            *(
                str(d.get(k, ""))
                for k in (
                    "in",
                    "ok",
                    "rejected",
                    "failed",
                    "reused",
                    "llm_requests",
                    "llm_cache_hits",
                    "seconds",
                )
            ),
        )
    Console().print(table)
    run_dir = manifest.get("run_dir")
    if run_dir:
        print(f"run store: {run_dir}")


def cmd_inspect(args: argparse.Namespace) -> int:
    from curation.report.inspect import format_rows, format_sample, inspect_rows, inspect_sample

    if args.id:
        print(format_sample(inspect_sample(Path(args.run_dir), args.id)))
    else:
        rows = inspect_rows(Path(args.run_dir), stage=args.stage, status=args.status, limit=args.limit)
        print(format_rows(rows))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from curation.report.html import MAX_SAMPLES, write_report

    limit = MAX_SAMPLES if args.max_samples is None else args.max_samples
    out = write_report(Path(args.run_dir), Path(args.out) if args.out else None, max_samples=limit)
    print(f"report: {out}", flush=True)
    if args.serve:
        from curation.report.serve import serve_forever

        serve_forever(out, host=args.host, port=args.port)
    return 0


def cmd_sim_server(args: argparse.Namespace) -> int:
    from sim_endpoint.server import main as sim_main

    return sim_main(args.rest) or 0


def cmd_demo(args: argparse.Namespace) -> int:
    from flows.demo import run_demo
    from flows.interrupt import RunInterrupted, print_interrupted, stop_on_signals

    try:
        with stop_on_signals():
            run_demo(Path(args.workdir), n=args.n, train=args.train)
    except RunInterrupted as err:
        if args.debug:
            raise
        print_interrupted(err)
        return err.exit_status
    return 0


def _flag_overrides(rest: list[str]) -> dict[str, Any]:
    """`--max_steps 3 --reward_funcs format accuracy --bf16` -> {"max_steps": "3", "reward_funcs":
    ["format", "accuracy"], "bf16": "true"}; TrlParser casts the strings to the fields' types."""
    out: dict[str, list[str]] = {}
    key = None
    for tok in rest:
        if tok.startswith("--"):
            key, sep, value = tok[2:].partition("=")
            out[key] = [value] if sep else []
        elif key is not None:
            out[key].append(tok)
        else:
            raise SystemExit(f"unexpected argument {tok!r}: overrides look like --key value")
    return {k: (v[0] if len(v) == 1 else v) if v else "true" for k, v in out.items()}


TRAIN_USAGE = (
    "videorft {cmd} RECIPE [--accelerate-config NAME|FILE] [--num-processes N] [--key value ...]\n"
    "(launch options and recipe overrides in any order; NAME is one of recipes/accelerate/: ddp, zero2, "
    "zero3; --resume false starts a training run fresh)"
)


def _run_training(stage: str, args: argparse.Namespace) -> int:
    import subprocess

    from training.launch import launch, parse_launch_args, run_stage
    from training.supervise import Terminated

    cmd = "eval" if stage == "eval" else f"train {stage}"
    if any(tok in ("-h", "--help") for tok in args.args):
        print("usage: " + TRAIN_USAGE.format(cmd=cmd))
        return 0
    try:
        parsed = parse_launch_args(args.args)
    except ValueError as err:
        print(f"error: {err}\nusage: {TRAIN_USAGE.format(cmd=cmd)}", file=sys.stderr)
        return 2
    overrides = _flag_overrides(parsed.override_tokens)
    if parsed.accelerate_config or parsed.num_processes:
        try:
            launch(
                stage,
                parsed.recipe,
                accelerate_config=parsed.accelerate_config,
                num_processes=parsed.num_processes,
                overrides=overrides,
            )
        except subprocess.CalledProcessError as err:
            print(f"error: {cmd} failed (exit status {err.returncode})", file=sys.stderr)
            return err.returncode if err.returncode > 0 else 1
        except Terminated:
            print(f"{cmd}: terminated; every rank was stopped", file=sys.stderr)
            return Terminated.exit_code
        return 0
    result = run_stage(stage, parsed.recipe, **overrides)
    if stage != "eval":  # evaluation prints its own headline table
        print(
            json.dumps(
                {k: v for k, v in result.items() if not isinstance(v, (list, dict))}, indent=2, default=str
            )
        )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    return _run_training(args.stage, args)


def cmd_eval(args: argparse.Namespace) -> int:
    return _run_training("eval", args)


def cmd_export_model(args: argparse.Namespace) -> int:
    from training.export import export_model

    out = export_model(args.src, args.out, dtype=args.dtype, overwrite=args.overwrite)
    print(f"exported {args.src} -> {out} (vllm serve {out}; AutoProcessor / AutoModelForImageTextToText)")
    return 0


def _bench_options() -> argparse.ArgumentParser:
    """bench-eval's own options, accepted anywhere after the recipe (the rest are recipe overrides)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--eval-dir")
    p.add_argument("--media-root")
    p.add_argument("--output-dir")
    p.add_argument("--skip-bad-media", action="store_true")
    p.add_argument("--accelerate-config")
    p.add_argument("--num-processes", type=int)
    return p


def cmd_bench_eval(args: argparse.Namespace) -> int:
    from training.launch import launch, run_stage

    opts, rest = _bench_options().parse_known_args(args.rest)
    eval_dir = opts.eval_dir or args.eval_dir
    if not eval_dir:
        raise SystemExit("bench-eval needs --eval-dir DIR (the folder holding eval_<benchmark>.json files)")
    overrides: dict[str, Any] = _flag_overrides(rest)
    overrides["eval_dir"] = str(eval_dir)
    media_root = opts.media_root or args.media_root
    if media_root:
        overrides["bench_media_root"] = str(media_root)
    if opts.output_dir or args.output_dir:
        overrides["output_dir"] = str(opts.output_dir or args.output_dir)
    if opts.skip_bad_media or args.skip_bad_media:
        overrides["skip_bad_media"] = "true"
    accelerate_config = opts.accelerate_config or args.accelerate_config
    num_processes = opts.num_processes or args.num_processes
    if accelerate_config or num_processes:
        launch(
            "bench",
            args.recipe,
            accelerate_config=accelerate_config,
            num_processes=num_processes,
            overrides=overrides,
        )
        return 0
    run_stage("bench", args.recipe, **overrides)  # prints the table
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    from flows.deploy import deploy_all

    deploy_all(Path(args.prefect_file))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="videorft", description="Curate video CoT data and train VLMs on it.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="write synthetic videos + annotations with exact ground truth")
    s.add_argument("--out", required=True)
    s.add_argument("--n", type=int, default=60)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_synth)

    c = sub.add_parser("curate", help="run the curate flow on a recipe (flags override the recipe)")
    c.add_argument("config")
    c.add_argument("--source", help="annotation file / dataset (source.path)")
    c.add_argument("--media-root", help="folder media paths are relative to (source.media_root)")
    c.add_argument("--runs-dir", help="where run folders live (run.runs_dir)")
    c.add_argument("--run", help="run name (run.name)")
    c.add_argument("--until", choices=STAGE_CHOICES, help="stop after this stage")
    c.add_argument("--from", dest="from_stage", choices=STAGE_CHOICES, help="recompute from this stage on")
    c.add_argument("--push-to-hub", metavar="REPO", help="publish the sets to the Hub as REPO-cot / REPO-rl")
    c.add_argument("--hub-token-env", help="env var holding the Hub token (default HF_TOKEN)")
    c.add_argument(
        "--progress-interval",
        type=float,
        metavar="SECONDS",
        help="seconds between progress lines in the log (run.progress_interval_s, default 10)",
    )
    c.add_argument(
        "--executor",
        choices=("threads", "dask", "ray"),
        help="what runs the shard tasks (run.executor; default threads of this process)",
    )
    c.add_argument("--workers", type=int, help="worker processes of a local Dask/Ray cluster (run.workers)")
    c.add_argument(
        "--address", help="join this Dask scheduler / Ray cluster instead of starting one (run.address)"
    )
    c.add_argument(
        "--wait-for-lock",
        action="store_true",
        help="wait while another run holds the run folder instead of failing (run.wait_for_lock)",
    )
    c.set_defaults(func=cmd_curate)

    i = sub.add_parser("inspect", help="print stage rows with status and reason, or one sample")
    i.add_argument("run_dir")
    i.add_argument("--stage", choices=STAGE_CHOICES)
    i.add_argument("--status", choices=("ok", "rejected", "failed"))
    i.add_argument("--id", help="show one sample across all stages")
    i.add_argument("--limit", type=int, default=50)
    i.set_defaults(func=cmd_inspect)

    r = sub.add_parser("report", help="write a self-contained HTML report of a run")
    r.add_argument("run_dir")
    r.add_argument("--out")
    r.add_argument(
        "--max-samples",
        type=int,
        default=None,
        help="samples embedded in the page (default 2,000; the summary always counts all of them)",
    )
    r.add_argument("--serve", action="store_true", help="then serve it over HTTP until Ctrl-C")
    r.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    r.add_argument("--port", type=int, default=8000, help="port to serve on (0: any free port)")
    r.set_defaults(func=cmd_report)

    ss = sub.add_parser(
        "sim-server", help="the simulated OpenAI-compatible endpoint (not a model)", add_help=False
    )
    ss.add_argument("rest", nargs=argparse.REMAINDER)
    ss.set_defaults(func=cmd_sim_server)

    d = sub.add_parser("demo", help="synthetic data → simulated endpoint → curate → publish → report")
    d.add_argument("--workdir", default="demo_out")
    d.add_argument("--n", type=int, default=60)
    d.add_argument("--train", action="store_true", help="also run tiny SFT → GRPO → eval on CPU")
    d.set_defaults(func=cmd_demo)

    t = sub.add_parser("train", help="run a training stage from a recipe (TRL)")
    t.add_argument("stage", choices=("sft", "grpo"))
    # Parsed by training.launch.parse_launch_args: RECIPE, --accelerate-config, --num-processes and
    # --key value overrides in any order (argparse would take options after RECIPE as overrides).
    t.add_argument("args", nargs=argparse.REMAINDER, help=TRAIN_USAGE.format(cmd="train sft|grpo"))
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="evaluate a model on a held-out set with the shared scorers")
    e.add_argument("args", nargs=argparse.REMAINDER, help=TRAIN_USAGE.format(cmd="eval"))
    e.set_defaults(func=cmd_eval)

    x = sub.add_parser("export-model", help="a training output as a folder vLLM and stock transformers load")
    x.add_argument("src", help="a training output_dir or one of its checkpoint-N folders")
    x.add_argument("out")
    x.add_argument("--dtype", choices=("bfloat16", "float16", "float32"), help="cast the weights")
    x.add_argument("--overwrite", action="store_true")
    x.set_defaults(func=cmd_export_model)

    be = sub.add_parser(
        "bench-eval",
        help="evaluate on the six benchmarks (Video-R1's eval_*.json files) as eval_bench.py scores them",
    )
    be.add_argument("recipe")
    be.add_argument("--eval-dir", help="folder holding eval_<benchmark>.json (Video-R1-eval layout)")
    be.add_argument(
        "--media-root", help="folder the files' `path` values are relative to (default: --eval-dir)"
    )
    be.add_argument("--output-dir", help="where <benchmark>/ results and bench.md go (default: the recipe's)")
    be.add_argument(
        "--skip-bad-media", action="store_true", help="skip and count rows whose media is missing"
    )
    be.add_argument("--accelerate-config", help="shard the rows over `accelerate launch` processes")
    be.add_argument("--num-processes", type=int)
    be.add_argument("rest", nargs=argparse.REMAINDER, help="recipe overrides, e.g. --use_vllm true")
    be.set_defaults(func=cmd_bench_eval)

    dp = sub.add_parser("deploy", help="register the deployments of prefect.yaml with the Prefect API")
    dp.add_argument("--prefect-file", default="prefect.yaml")
    dp.set_defaults(func=cmd_deploy)
    # `--debug` after the command too (not for train/eval: their free flags are TRL's, which has one).
    for name, sp in sub.choices.items():
        if name not in ("train", "eval", "sim-server"):
            sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    return p


def _sim_server_argv(argv: list[str]) -> list[str] | None:
    """`videorft [-v] sim-server ARGS...` → ARGS, handed to the simulator's own parser untouched
    (argparse's REMAINDER cannot take an option such as `--port P` as its first token)."""
    for i, tok in enumerate(argv):
        if tok == "sim-server":
            return argv[i + 1 :]
        if not tok.startswith("-"):
            return None
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    sim_argv = _sim_server_argv(argv)
    if sim_argv is not None:
        _setup_logging("-v" in argv or "--verbose" in argv)
        from sim_endpoint.server import main as sim_main

        return sim_main(sim_argv) or 0
    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    # A crash in native code (a decoder, a tokenizer) otherwise ends the process with only the
    # shell's "Aborted": print every thread's Python stack to stderr first, so it can be reported.
    with contextlib.suppress(AttributeError, OSError, ValueError):  # stderr without a file (captured)
        faulthandler.enable()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    # Quiet by default: one line per stage from the flow, not one per task run.
    os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    from curation.user_errors import UserError, print_user_error

    try:
        return int(args.func(args) or 0)
    except (UserError, FileNotFoundError) as err:
        # A path or a recipe key to fix: one line and a hint; the traceback only with --debug.
        if args.debug:
            raise
        print_user_error(err)
        return 2


if __name__ == "__main__":
    sys.exit(main())
