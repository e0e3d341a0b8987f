"""Is the installed stack one Prefect 3.8.8's server works with? Run by `make setup`.

Prefect pins neither SQLAlchemy nor fastapi tightly enough, and two releases the resolver picks
break its server without failing any import (../shared/ENVIRONMENT.md, measured):

- SQLAlchemy 2.1: the scheduler service crashes every loop ("Can't evaluate bulk DML statement"),
  so deployments with schedules never get a flow run. Nothing else looks wrong.
- fastapi >= 0.151: the server answers 422 to the list requests its own client sends (`prefect
  deploy --all`, artifact and deployment lists); >= 0.155 it does not start (`min_items`).

pyproject.toml pins around both; this check catches an environment that drifted anyway (a `pip
install` of something else, a lock file from elsewhere), at set-up time rather than as a schedule
that silently never fires. tests/ops/test_schedule_fires.py proves the working combination.
"""

from __future__ import annotations

import sys
from importlib import metadata

from packaging.specifiers import SpecifierSet
from packaging.version import Version

PREFECT_VERSION = "3.8.8"
# package -> (versions that work with Prefect 3.8.8's server, why)
REQUIRED: dict[str, tuple[str, str]] = {
    "sqlalchemy": (
        ">=2.0,<2.1",
        "SQLAlchemy 2.1 crashes Prefect 3.8.8's scheduler: scheduled flow runs are never created",
    ),
    "fastapi": (
        ">=0.139,<0.151",
        "fastapi 0.151+ makes Prefect 3.8.8's server reject its own list requests (422); 0.155+ stops it starting",
    ),
}


def installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def problems(versions: dict[str, str | None] | None = None) -> list[str]:
    """What is wrong with the installed (or the given) versions; empty when all is well."""
    versions = versions if versions is not None else {n: installed(n) for n in ("prefect", *REQUIRED)}
    out: list[str] = []
    prefect = versions.get("prefect")
    if prefect is None:
        return ["prefect is not installed"]
    if Version(prefect) != Version(PREFECT_VERSION):
        # The constraints below were measured for 3.8.8 only: a different Prefect needs measuring.
        out.append(f"prefect {prefect} is installed; these checks were measured for {PREFECT_VERSION}")
    for name, (spec, why) in REQUIRED.items():
        version = versions.get(name)
        if version is None:
            out.append(f"{name} is not installed (Prefect's server needs {name}{spec})")
        elif Version(version) not in SpecifierSet(spec):
            out.append(f"{name} {version} is installed, Prefect {PREFECT_VERSION} needs {name}{spec}: {why}")
    return out


def main() -> int:
    found = problems()
    if found:
        for p in found:
            print(f"error: {p}", file=sys.stderr)
        print("hint: reinstall with the project's pins: make setup (or pip install -e .)", file=sys.stderr)
        return 1
    versions = ", ".join(f"{n} {installed(n)}" for n in ("prefect", *REQUIRED))
    print(f"Prefect server dependencies OK: {versions}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
