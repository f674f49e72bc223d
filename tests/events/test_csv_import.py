"""clv import-csv: column mapping, rejections with line numbers, idempotent re-runs."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from service.cli import app
from service.config import Settings
from service.db.session import make_session_factory
from service.events.csv_import import CsvMapping, import_csv
from service.events.models import Event
from service.events.service import IngestRules
from service.privacy import PiiHasher

runner = CliRunner()

RETAIL_CSV = """\
Invoice;Customer;When;Total;SKU;Qty;Category
1;c1;01/02/2025 10:00;10.50;A;1;shoes
2;c1;05/02/2025 11:00;0;B;2;socks
3;c2;06/02/2025 12:00;abc;C;1;hats
4;;07/02/2025 12:00;3;D;1;hats
5;c3;31/31/2025 12:00;3;D;1;hats
6;c3;08/02/2025 09:30;-4.00;E;1;hats
7;c3;08/02/2025 09:30;7.25;E;1;hats
"""

MAPPING_FLAGS = [
    "--customer-col", "Customer",
    "--time-col", "When",
    "--amount-col", "Total",
    "--sku-col", "SKU",
    "--quantity-col", "Qty",
    "--category-col", "Category",
    "--time-format", "%d/%m/%Y %H:%M",
    "--timezone", "Europe/Berlin",
    "--delimiter", ";",
]  # fmt: skip


def stored(db: Engine) -> list[Any]:
    with db.connect() as connection:
        return list(connection.execute(select(Event).order_by(Event.occurred_at)))


def test_import_maps_columns_rejects_bad_rows_and_rerun_imports_nothing_new(
    env: Settings, tmp_path: Path, db: Engine
) -> None:
    path = tmp_path / "retail.csv"
    path.write_text(RETAIL_CSV)

    first = runner.invoke(app, ["import-csv", str(path), *MAPPING_FLAGS])
    second = runner.invoke(app, ["import-csv", str(path), *MAPPING_FLAGS])

    assert first.exit_code == 0, first.output
    assert "rows 7: imported 3, duplicates 0, rejected 4" in first.stdout
    assert "line 4: Total: 'abc' is not a number" in first.stdout
    assert "line 5: customer_id: String should have at least 1 character" in first.stdout
    assert "line 6: When: cannot read '31/31/2025 12:00' as %d/%m/%Y %H:%M" in first.stdout
    assert "line 7: amount: Input should be greater than or equal to 0" in first.stdout
    assert "rows 7: imported 0, duplicates 3, rejected 4" in second.stdout
    rows = stored(db)
    assert [(r.customer_id, r.amount) for r in rows] == [
        ("c1", Decimal("10.50")),
        ("c1", Decimal("0")),  # zero-amount orders are kept
        ("c3", Decimal("7.25")),
    ]
    assert rows[0].occurred_at == datetime(2025, 2, 1, 9, 0, tzinfo=UTC)  # 10:00 in Berlin
    assert rows[0].items == [{"sku": "A", "category": "shoes", "quantity": 1}]


def test_event_id_column_and_negative_amounts_as_refunds(
    env: Settings, tmp_path: Path, db: Engine
) -> None:
    path = tmp_path / "retail.csv"
    path.write_text(RETAIL_CSV)

    result = runner.invoke(
        app,
        [
            "import-csv",
            str(path),
            *MAPPING_FLAGS,
            "--event-id-col",
            "Invoice",
            "--negative-as-refund",
        ],
    )

    assert "rows 7: imported 4, duplicates 0, rejected 3" in result.stdout
    by_id = {r.event_id: r for r in stored(db)}
    assert set(by_id) == {"1", "2", "6", "7"}
    assert (by_id["6"].type, by_id["6"].amount) == ("refund", Decimal("4.00"))


def test_unknown_columns_are_refused_before_importing(
    env: Settings, tmp_path: Path, db: Engine
) -> None:
    path = tmp_path / "retail.csv"
    path.write_text(RETAIL_CSV)

    result = runner.invoke(app, ["import-csv", str(path), "--delimiter", ";"])

    assert result.exit_code == 1
    assert "column(s) customer_id, occurred_at not in the header" in result.output
    assert stored(db) == []


def test_each_chunk_is_committed_and_lines_are_numbered_across_chunks(
    settings: Settings, db: Engine
) -> None:
    lines = ["customer_id,occurred_at,amount"]
    lines += [f"c{i},2025-03-0{1 + i % 9}T10:00:00Z,{i}.00" for i in range(7)]
    lines[6] = "c5,not-a-time,5.00"  # data line 6 = file line 7
    chunks: list[int] = []
    summary = import_csv(
        [line + "\n" for line in lines],
        CsvMapping(customer="customer_id", time="occurred_at", amount="amount"),
        make_session_factory(db),
        IngestRules.from_settings(settings, PiiHasher("k", [])),
        chunk_rows=2,
        on_chunk=lambda s: chunks.append(len(stored(db))),
    )

    assert chunks == [2, 4, 5, 6]  # stored and visible after every chunk
    assert (summary.rows, summary.imported, summary.rejected) == (7, 6, 1)
    assert summary.rejections == [(7, "occurred_at: cannot read 'not-a-time' as ISO 8601")]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--timezone", "Mars/Base"], "unknown time zone 'Mars/Base'"),
        (["--timezone", "Europe"], "unknown time zone 'Europe'"),  # a folder of zones
        (["--encoding", "latin-9x"], "unknown --encoding 'latin-9x'"),
        (["--delimiter", ";;"], "--delimiter must be one character, not ';;'"),
    ],
)
def test_a_bad_option_is_refused_with_a_message(
    env: Settings, tmp_path: Path, flags: list[str], message: str
) -> None:
    path = tmp_path / "retail.csv"
    path.write_text(RETAIL_CSV)

    result = runner.invoke(app, ["import-csv", str(path), *MAPPING_FLAGS, *flags])

    assert result.exit_code == 1
    assert message in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_file_in_another_encoding_says_so_and_imports_with_it(
    env: Settings, tmp_path: Path, db: Engine
) -> None:
    """An Excel export in cp1252: read as UTF-8 it stops with the line and the way out."""
    path = tmp_path / "retail.csv"
    path.write_bytes(RETAIL_CSV.replace("shoes", "chaussée").encode("cp1252"))

    refused = runner.invoke(app, ["import-csv", str(path), *MAPPING_FLAGS])
    imported = runner.invoke(app, ["import-csv", str(path), *MAPPING_FLAGS, "--encoding", "cp1252"])

    assert refused.exit_code == 1
    assert "the file is not utf-8" in refused.output
    assert "--encoding (cp1252" in refused.output
    assert imported.exit_code == 0, imported.output
    assert "chaussée" in {category for e in stored(db) for category in [e.items[0]["category"]]}


def test_an_import_that_rejects_every_row_fails(env: Settings, tmp_path: Path, db: Engine) -> None:
    """A wrong --time-format reads no row: the counts and reasons, then exit 1 for scripts."""
    path = tmp_path / "retail.csv"
    path.write_text(RETAIL_CSV)
    flags = [*MAPPING_FLAGS, "--time-format", "%Y-%m-%d"]

    result = runner.invoke(app, ["import-csv", str(path), *flags])

    assert result.exit_code == 1
    assert "rows 7: imported 0, duplicates 0, rejected 7" in result.output
    assert "every one of the 7 rows was rejected; nothing was imported" in result.output
    assert stored(db) == []
