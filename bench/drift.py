"""The drift check at scale: wall time and peak memory of `clv drift` on a large shop.

1. Simulates a shop (default 50,000 customers over 540 days, about 1.2M events) whose organic
   customers buy a fifth as often from day 400 on, and imports it into a scratch SQLite
   database the way `clv import-events` does (the zero-set-up default; timed too).
2. Trains the champion on the first 330 days (`train_version`, 2 epochs: its quality does not
   change the check's cost).
3. Runs `clv drift --as-of <day 539>` in its own process: wall time (start-up, model load,
   reading every event, both populations' features and scores, the comparison, storing) and
   peak RSS; then the same check in this process, timing each stage.

    .venv/bin/python bench/drift.py [--customers 50000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import report
from bench.train import measured
from service.config import Settings
from service.customers.service import ProfilePolicy
from service.db import migrations
from service.db.session import make_engine, make_session_factory
from service.drift.service import check_drift
from service.events.service import IngestRules
from service.privacy import PiiHasher
from service.shop_files import ShopFiles, load_folder
from service.simulator.config import Shift, ShopConfig
from service.simulator.files import write_shop
from service.training.runner import train_version

START = date(2024, 1, 1)
TRAINED_DAY, CHECKED_DAY = 330, 539


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=50_000)
    args = parser.parse_args()
    config = ShopConfig(
        customers=args.customers,
        days=540,
        horizon_days=1,
        start=START,
        shift=Shift(400, "organic", 0.2),
    )
    origin = datetime.combine(START, datetime.min.time(), UTC)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = f"sqlite:///{folder}/bench.db"
        migrations.upgrade(url)
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, database_url=url, worker="off", model_dir=folder / "models"
        )
        engine = make_engine(settings)
        factory = make_session_factory(engine)
        summary = write_shop(config, folder / "shop")
        pii = PiiHasher.from_settings(settings)
        started = time.perf_counter()
        load_folder(
            ShopFiles.at(folder / "shop"),
            factory,
            IngestRules.from_settings(settings, pii),
            ProfilePolicy.from_settings(settings, pii),
        )
        import_s = time.perf_counter() - started
        started = time.perf_counter()
        train_version(
            factory,
            settings,
            as_of=origin + timedelta(days=TRAINED_DAY),
            horizon_days=90,
            epochs=2,
            actor="bench",
        )
        train_s = time.perf_counter() - started
        as_of = (origin + timedelta(days=CHECKED_DAY)).isoformat()
        env = {
            **os.environ,
            "CLV_DATABASE_URL": url,
            "CLV_MODEL_DIR": str(folder / "models"),
            "CLV_LOG_LEVEL": "WARNING",
            "COLUMNS": "160",
        }
        cli_s, cli_mib, output = measured(
            [sys.executable, "-m", "service.cli", "drift", "--as-of", as_of], env
        )
        stages: list[tuple[str, float]] = []
        started = time.perf_counter()
        checked = check_drift(
            factory,
            settings,
            as_of=datetime.fromisoformat(as_of),
            actor="bench",
            progress=lambda stage, _: stages.append((stage, time.perf_counter())),
        )
        ends = [moment for _, moment in stages[1:]] + [time.perf_counter()]
        engine.dispose()
    organic = next(s for s in checked.segments if s.level == "organic")
    report(
        "drift",
        {
            "customers": args.customers,
            "events": summary["counts"]["events"],
            "import_seconds (SQLite, load_folder)": round(import_s, 1),
            "train_seconds (2 epochs)": round(train_s, 1),
            "clv_drift_seconds (own process)": round(cli_s, 1),
            "clv_drift_peak_rss_mib": round(cli_mib),
            "check_seconds (in process)": round(time.perf_counter() - started, 1),
            **{
                f"stage: {stage}": round(end - begin, 1)
                for (stage, begin), end in zip(stages, ends, strict=True)
                if stage != "stored"
            },
            "reference_customers": checked.reference.customers,
            "current_customers": checked.current.customers,
            "drifted": checked.drifted,
            "organic_excess_change": round(organic.excess_change, 3),
            "reasons": checked.reasons,
            "cli_last_line": [line for line in output.splitlines() if "stored as report" in line],
        },
    )


if __name__ == "__main__":
    main()
