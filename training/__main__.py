"""`python -m training STAGE --config RECIPE [--key value ...]` (STAGE: sft | grpo | eval | tiny-model).

A convenience dispatcher over the entry scripts (each also runs alone: `python -m training.sft ...`):

    python -m training tiny-model --out runs/tiny/model      # build the tiny offline Qwen2.5-VL
    python -m training sft --config recipes/tiny/sft.yaml
    python -m training grpo --config recipes/tiny/grpo.yaml --max_steps 2
    python -m training eval --config recipes/tiny/eval.yaml
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    stage, rest = argv[0], argv[1:]
    if stage == "tiny-model":
        import argparse

        from training.tiny_qwen import build_tiny_qwen25vl

        parser = argparse.ArgumentParser(prog="python -m training tiny-model")
        parser.add_argument("--out", default="runs/tiny/model")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--overwrite", action="store_true")
        args = parser.parse_args(rest)
        print(build_tiny_qwen25vl(args.out, seed=args.seed, overwrite=args.overwrite))
        return 0
    from trl import ModelConfig, TrlParser

    if stage == "sft":
        from training.configs import VideoScriptArguments, VideoSFTConfig
        from training.sft import main as sft_main

        sft_main(*TrlParser((VideoScriptArguments, VideoSFTConfig, ModelConfig)).parse_args_and_config(rest))
    elif stage == "grpo":
        from training.configs import GRPOScriptArguments, VideoGRPOConfig
        from training.grpo import main as grpo_main

        grpo_main(*TrlParser((GRPOScriptArguments, VideoGRPOConfig, ModelConfig)).parse_args_and_config(rest))
    elif stage == "eval":
        from training.configs import EvalArguments
        from training.evaluate import main as eval_main

        (args,) = TrlParser((EvalArguments,)).parse_args_and_config(rest)
        eval_main(args)
    else:
        print(f"unknown stage {stage!r}\n{__doc__}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
