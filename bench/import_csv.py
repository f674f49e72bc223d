"""CSV import of a large file: rows/s and peak memory, to show the import streams.

Writes a CSV of --rows order lines (default 1,000,000) and runs `clv import-csv` on it, on a
scratch PostgreSQL database (or --sqlite), in its own process; then runs it again (every row a
duplicate). Peak RSS far below the file's size means rows are not held in memory.

    .venv/bin/python bench/import_csv.py [--rows 1000000] [--sqlite]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import report, scratch_postgres
from service.db import migrations

IMPORT_FLAGS = ["--amount-col", "amount", "--sku-col", "sku", "--quantity-col", "quantity"]
IMPORT_FLAGS += ["--category-col", "category"]


def write_csv(path: Path, rows: int, seed: int = 11) -> None:
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_id", "occurred_at", "amount", "sku", "quantity", "category"])
        for _ in range(rows):
            writer.writerow(
                [
                    f"cust-{rng.randrange(100_000):06d}",
                    (start + timedelta(seconds=rng.randrange(730 * 86400))).isoformat(),
                    f"{rng.uniform(0, 250):.2f}",
                    f"SKU-{rng.randrange(20_000):05d}",
                    rng.randint(1, 4),
                    rng.choice(["apparel", "shoes", "home", "beauty", "toys"]),
                ]
            )


@contextmanager
def scratch_sqlite() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        migrations.upgrade(url)
        yield url


def run_import(database_url: str, path: Path) -> tuple[float, float, str]:
    """(seconds, peak RSS MiB of the import process, its summary line)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "import-csv", str(path), *IMPORT_FLAGS],
        env={**os.environ, "CLV_DATABASE_URL": database_url, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - started
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    summary = next(line for line in done.stdout.splitlines() if line.startswith("rows "))
    return seconds, peak, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sqlite", action="store_true", help="import into SQLite instead")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "orders.csv"
        write_csv(path, args.rows)
        size_mib = path.stat().st_size / 2**20
        database = scratch_sqlite() if args.sqlite else scratch_postgres()
        with database as url:
            first = run_import(url, path)
            again = run_import(url, path)
    result = {
        "rows": args.rows,
        "database": "sqlite" if args.sqlite else "postgresql",
        "file_mib": round(size_mib, 1),
        "import_rows_per_s": round(args.rows / first[0]),
        "import_peak_rss_mib": round(first[1], 1),
        "import_summary": first[2],
        "rerun_rows_per_s": round(args.rows / again[0]),
        "rerun_summary": again[2],
    }
    report(f"import_csv_{result['database']}", result)


if __name__ == "__main__":
    main()
