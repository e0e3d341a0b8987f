"""Drive distilabel's OpenAILLM over a file of chat requests; print timings as one JSON line.

Runs inside benchmarks/.venv-distilabel (distilabel's dependencies clash with ours). distilabel's
unit of concurrency is the batch: a Task step hands its LLM `input_batch_size` rows at a time, and
`AsyncLLM.generate` gathers one coroutine per row, waits for all of them, then takes the next
batch (no global limiter, no sliding window). `--mode batches` reproduces that with batches of
`--batch` rows (the same concurrency budget as the others); `--mode all` gives it every request in
one call (unbounded concurrency, for context only).

    python distilabel_openai.py --requests R.json --base-url URL --model M --batch 64 --mode batches
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", required=True)
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--mode", choices=("batches", "all"), default="batches")
    ap.add_argument("--max-new-tokens", type=int, default=1024)
    ap.add_argument("--temperature", type=float, default=0.6)
    a = ap.parse_args()
    warnings.filterwarnings("ignore")
    t_import = time.time()
    import distilabel
    from distilabel.models.llms import OpenAILLM

    t_import = time.time() - t_import
    requests = json.loads(open(a.requests).read())
    llm = OpenAILLM(model=a.model, base_url=a.base_url, api_key="not-needed", max_retries=3, timeout=60)
    llm.load()
    kwargs = {"max_new_tokens": a.max_new_tokens, "temperature": a.temperature}
    llm.generate(inputs=requests[:1], num_generations=1, **kwargs)  # warm the client and loop
    t0 = time.time()
    outputs = []
    if a.mode == "all":
        outputs = llm.generate(inputs=requests, num_generations=1, **kwargs)
    else:
        for i in range(0, len(requests), a.batch):
            outputs += llm.generate(inputs=requests[i : i + a.batch], num_generations=1, **kwargs)
    wall = time.time() - t0
    ok = sum(1 for o in outputs if o.get("generations") and o["generations"][0])
    print(
        json.dumps(
            {
                "peer": f"distilabel {distilabel.__version__} OpenAILLM.generate ({a.mode})",
                "n": len(requests),
                "ok": ok,
                "wall_s": wall,
                "import_s": t_import,
                "batch": a.batch,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
