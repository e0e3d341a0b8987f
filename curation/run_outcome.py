"""How a curate run ended, as an exit status and the last lines a user reads.

Exit statuses of `videorft curate` (README, "Exit status"):

    0  completed: every stage ran, every row is accounted for, the dataset is published
    1  failed: a stage failed (more failed rows than run.max_failed_fraction, or an error)
    2  a user error before anything ran: a path, a recipe key, an unset variable (curation/user_errors.py)
    3  an LLM endpoint is unusable: preflight found it broken, or its circuit breaker opened mid-run;
       rows not yet answered stay pending and the same command resumes once it is fixed

A failed or interrupted run never publishes: publishing is the flow's last step and runs only when
every stage before it completed within its failure budget.
"""

from __future__ import annotations

from typing import Any

from curation.llm.failures import EndpointUnavailable
from curation.llm.preflight import PreflightError

EXIT_COMPLETED = 0
EXIT_FAILED = 1
EXIT_USER_ERROR = 2
EXIT_ENDPOINT_UNAVAILABLE = 3


class TooManyFailures(Exception):  # noqa: N818 - says what happened
    """A stage's failed rows exceed run.max_failed_fraction: the run fails and publishes nothing."""

    def __init__(self, stage: str, failed: int, total: int, limit: float, top_reasons: list[str]) -> None:
        super().__init__(stage, failed, total, limit, top_reasons)
        self.stage, self.failed, self.total, self.limit, self.top_reasons = (
            stage,
            failed,
            total,
            limit,
            top_reasons,
        )

    def __str__(self) -> str:
        return (
            f"stage {self.stage}: {self.failed} of {self.total} rows failed "
            f"({self.failed / max(self.total, 1):.0%} > run.max_failed_fraction {self.limit:g})"
        )


def check_failed_fraction(stage: str, stats: dict[str, Any], limit: float) -> None:
    """Raise TooManyFailures when the stage's failed share exceeds `limit` (a stage manifest entry)."""
    total, failed = int(stats.get("in", 0)), int(stats.get("failed", 0))
    if total and failed / total > limit:
        reasons = sorted(
            (
                (k.removeprefix("failed: "), n)
                for k, n in (stats.get("reasons") or {}).items()
                if k.startswith("failed")
            ),
            key=lambda kv: -kv[1],
        )
        raise TooManyFailures(stage, failed, total, limit, [f"{n} × {r}" for r, n in reasons[:3]])


def _known() -> tuple[type[BaseException], ...]:
    return (EndpointUnavailable, PreflightError, TooManyFailures)


def exit_status(error: BaseException | None) -> int:
    if error is None:
        return EXIT_COMPLETED
    if isinstance(error, (EndpointUnavailable, PreflightError)):
        return EXIT_ENDPOINT_UNAVAILABLE
    return EXIT_FAILED


def failure_lines(error: BaseException, run_dir: str | None) -> list[str]:
    """What happened and what to do next, for a run that did not complete."""
    resume = (
        "then run the same command again: it resumes where it stopped and pays only for rows never answered"
    )
    if isinstance(error, PreflightError):
        lines = ["run stopped before any LLM request: endpoint check failed"]
        for c in error.checks:
            lines.append(f"  error: {c.message()}")
            if c.hint:
                lines.append(f"  fix:   {c.hint}")
        lines.append(f"next: fix the endpoint(s) above, {resume}")
        return lines
    if isinstance(error, EndpointUnavailable):
        lines = [
            "run stopped: an LLM endpoint stopped working mid-run (no further requests were sent to it)",
            f"  error: {error}",
        ]
        if error.hint:
            lines.append(f"  fix:   {error.hint}")
        lines.append("  rows not yet answered are pending (not failed); nothing was published")
        lines.append(f"next: fix the endpoint, {resume}")
        return lines
    if isinstance(error, TooManyFailures):
        lines = [f"run failed: {error}; nothing was published"]
        lines += [f"  {r}" for r in error.top_reasons]
        where = f" {run_dir}" if run_dir else " <run folder>"
        lines.append(
            f"next: see why with `videorft inspect{where} --stage {error.stage} --status failed`, fix the cause, "
            "and rerun the same command (failed rows are retried, answers already paid for are reused); "
            "or raise run.max_failed_fraction to publish anyway"
        )
        return lines
    return [
        f"run failed: {type(error).__name__}: {error}; nothing was published",
        "next: fix the cause (videorft --debug curate ... shows the traceback) and rerun the same command",
    ]


# The ways a run ends that the CLI explains in its own words (no traceback needed).
KNOWN_OUTCOMES = _known()
