"""How long `clv --help` and `clv train --help` take, each a fresh process as a user runs it.

Prints the median wall time of --runs runs of each (after one run that warms the file cache and
writes any missing bytecode); the target is under 0.5 s. The heavy libraries (torch, pandas,
SQLAlchemy, the app) are imported inside the commands, so the help never waits for them:
``tests/cli/test_help.py`` checks that, with a bound loose enough for a loaded CI machine.

    .venv/bin/python bench/cli_help.py [--runs 10]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_SECONDS = 0.5
COMMANDS = (("--help",), ("train", "--help"))


def clv() -> list[str]:
    """The installed ``clv`` script beside this interpreter, as ``make demo`` runs it."""
    script = Path(sys.executable).with_name("clv")
    return [str(script)] if script.exists() else [sys.executable, "-m", "service"]


def seconds(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, capture_output=True, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    for words in COMMANDS:
        command = [*clv(), *words]
        seconds(command)
        median = statistics.median(seconds(command) for _ in range(args.runs))
        verdict = "ok" if median < TARGET_SECONDS else f"over the {TARGET_SECONDS} s target"
        print(f"clv {' '.join(words)}: median {median:.3f} s of {args.runs} runs ({verdict})")


if __name__ == "__main__":
    main()
