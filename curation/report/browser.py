"""Headless Chromium for looking at a report the way a person would: rendered DOM and screenshots.

Used by the browser test and the report benchmark. The flags keep Chromium from phoning home:
on a closed network its background connections otherwise fail noisily at every start.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "/usr/bin/chromium")


def find_chromium() -> str | None:
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def file_url(path: Path, fragment: str = "") -> str:
    return Path(path).resolve().as_uri() + (f"#{fragment}" if fragment else "")


def run_chromium(
    url: str, *args: str, timeout: float = 60.0
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run Chromium once on `url` with a fresh profile; returns the process result and wall seconds."""
    exe = find_chromium()
    if exe is None:
        raise FileNotFoundError("chromium not found (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="videorft-chromium-") as profile:
        cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        return proc, time.perf_counter() - start


def dump_dom(url: str, *, virtual_time_ms: int | None = 5000, timeout: float = 60.0) -> str:
    """The DOM after the page's scripts ran (`virtual_time_ms` lets timers and async work finish)."""
    extra = ["--dump-dom"] + ([f"--virtual-time-budget={virtual_time_ms}"] if virtual_time_ms else [])
    proc, _ = run_chromium(url, *extra, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"chromium --dump-dom failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc.stdout


def screenshot(
    url: str,
    png: Path,
    *,
    window: tuple[int, int] = (1400, 1000),
    virtual_time_ms: int = 5000,
    timeout: float = 60.0,
) -> Path:
    png = Path(png)
    proc, _ = run_chromium(
        url,
        f"--screenshot={png}",
        f"--window-size={window[0]},{window[1]}",
        "--hide-scrollbars",
        f"--virtual-time-budget={virtual_time_ms}",
        timeout=timeout,
    )
    if proc.returncode != 0 or not png.exists():
        raise RuntimeError(f"chromium --screenshot failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return png
