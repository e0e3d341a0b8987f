"""`videorft report RUN_DIR --serve`: the run's report over HTTP.

Browsers refuse `file://` links from a web page (the Prefect UI, a chat message), and a run folder
often sits on a remote machine; an HTTP server on the run's host is what a person can open (through
an SSH tunnel, or `--host 0.0.0.0` on a trusted network). It serves the one self-contained page and
nothing else: no directory listing, no other file of the run folder.
"""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path


def _handler(page: Path) -> type[http.server.BaseHTTPRequestHandler]:
    class ReportHandler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            if self.path.split("?", 1)[0] not in ("/", "/report.html", f"/{page.name}"):
                self.send_error(404, "only the report is served here")
                return
            body = page.read_bytes()  # read per request: a rebuilt report shows on reload
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet by default
            return

    return ReportHandler


def make_server(page: Path, host: str = "127.0.0.1", port: int = 8000) -> http.server.ThreadingHTTPServer:
    """An HTTP server for `page` (port 0: any free port; `server.server_address` says which)."""
    page = Path(page).resolve()
    if not page.is_file():
        raise FileNotFoundError(f"no report at {page}")
    return http.server.ThreadingHTTPServer((host, port), _handler(page))


def url_of(server: http.server.ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://{shown}:{port}/"


@contextlib.contextmanager
def serving(page: Path, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `page` in a background thread for the duration of the block; yields its URL."""
    server = make_server(page, host, port)
    thread = threading.Thread(target=server.serve_forever, name="report-server", daemon=True)
    thread.start()
    try:
        yield url_of(server)
    finally:
        server.shutdown()
        server.server_close()


def serve_forever(page: Path, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve until Ctrl-C, printing the URL first (flushed: a caller may be reading our stdout)."""
    server = make_server(page, host, port)
    print(f"serving {page} at {url_of(server)} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
