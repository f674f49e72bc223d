"""clv import-csv --order-col: line-level exports become one event an order, checked on the real
UCI Online Retail file against a pandas computation of the same slice."""

from __future__ import annotations

import io
import itertools
import lzma
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from service.cli import app
from service.config import Settings
from service.db.session import make_session_factory
from service.events.csv_import import CsvImportSummary, CsvMapping, import_csv
from service.events.csv_orders import group_orders
from service.events.models import Event
from service.events.service import IngestRules
from service.privacy import PiiHasher

runner = CliRunner()

ONLINE_RETAIL = Path(__file__).resolve().parents[2] / "../shared/data/online_retail.csv.xz"
"""The repository sits beside ``shared/`` (/work/main and /work/shared); CI has the file."""

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID\n"
RETAIL = CsvMapping(
    customer="CustomerID",
    time="InvoiceDate",
    order="InvoiceNo",
    sku="StockCode",
    name="Description",
    quantity="Quantity",
    price="UnitPrice",
    cancel_prefix="C",
    timezone="Europe/London",
)
RETAIL_FLAGS = [
    "--customer-col", "CustomerID", "--time-col", "InvoiceDate", "--order-col", "InvoiceNo",
    "--sku-col", "StockCode", "--name-col", "Description", "--quantity-col", "Quantity",
    "--price-col", "UnitPrice", "--cancel-prefix", "C", "--timezone", "Europe/London",
]  # fmt: skip


def stored(db: Engine) -> list[Any]:
    with db.connect() as connection:
        return list(connection.execute(select(Event).order_by(Event.seq)))


def run_import(
    settings: Settings, db: Engine, csv_text: str, mapping: CsvMapping = RETAIL
) -> CsvImportSummary:
    rules = IngestRules.from_settings(settings, PiiHasher("k", []))
    return import_csv(io.StringIO(csv_text), mapping, make_session_factory(db), rules)


def test_identical_lines_of_one_invoice_both_count(settings: Settings, db: Engine) -> None:
    csv_text = HEADER + (
        "536365,85123A,WHITE HANGING HEART ,6,2010-12-01 08:26:00,2.55,17850\n"
        "536365,85123A,WHITE HANGING HEART ,6,2010-12-01 08:26:00,2.55,17850\n"
        "536365,71053,WHITE METAL LANTERN,1,2010-12-01 08:27:00,3.39,17850\n"
    )

    summary = run_import(settings, db, csv_text)

    assert (summary.lines, summary.rows, summary.imported, summary.rejected) == (3, 1, 1, 0)
    [order] = stored(db)
    assert (order.type, order.customer_id, order.amount) == ("purchase", "17850", Decimal("33.99"))
    assert order.occurred_at.isoformat() == "2010-12-01T08:26:00+00:00"  # the first row's
    assert [(i["sku"], i["quantity"], i["name"]) for i in order.items] == [
        ("85123A", 6, "WHITE HANGING HEART"),
        ("85123A", 6, "WHITE HANGING HEART"),
        ("71053", 1, "WHITE METAL LANTERN"),
    ]


def test_cancellations_become_refunds_and_bad_orders_are_rejected_whole(
    settings: Settings, db: Engine
) -> None:
    csv_text = HEADER + (
        "C536379,D,Discount,-1,2010-12-01 09:41:00,27.50,14527\n"  # negative quantity
        "C536380,22556,PLASTERS,2,2010-12-01 09:42:00,1.65,14527\n"  # the prefix alone
        "536381,22841,FREE GIFT,1,2010-12-01 09:43:00,0,14527\n"  # zero price: a valid order
        "536382,22841,MUG,1,2010-12-01 09:44:00,2.00,14527\n"  # line 5: reported by its first line
        "536382,B,Adjust bad debt,1,2010-12-01 09:44:00,-11062.06,14527\n"  # negative price
        "536383,22841,MUG,2,2010-12-01 09:45:00,2.00,14527\n"  # line 7
        "536383,22842,MUG,-1,2010-12-01 09:45:00,2.00,14527\n"  # mixed signs
        "536384,22841,MUG,1,2010-12-01 09:46:00,2.00,\n"  # line 9: no customer
        ",22841,MUG,1,2010-12-01 09:47:00,2.00,14527\n"  # line 10: no order id
    )

    summary = run_import(settings, db, csv_text)

    assert (summary.lines, summary.rows, summary.imported, summary.rejected) == (9, 7, 3, 4)
    events = sorted(stored(db), key=lambda e: e.occurred_at)
    assert [(e.type, e.amount) for e in events] == [
        ("refund", Decimal("27.50")),
        ("refund", Decimal("3.30")),
        ("purchase", Decimal("0")),
    ]
    assert events[0].items == [{"sku": "D", "name": "Discount", "quantity": 1, "price": "27.50"}]
    reasons = dict(summary.rejections)
    assert reasons[5] == "UnitPrice: a negative price; an order's lines need 0 or more"
    assert reasons[7] == "Quantity: the order has positive and negative lines"
    assert reasons[9] == "customer_id: String should have at least 1 character"
    assert reasons[10] == "InvoiceNo: empty; with --order-col every row needs one"


def test_rows_of_an_order_split_by_another_are_grouped_within_the_window() -> None:
    rows = [{"o": o, "c": "x"} for o in ("1", "2", "1", "3", "1")]
    mapping = CsvMapping(customer="c", time="t", order="o")

    near = sorted(group_orders(enumerate(rows, 2), mapping), key=lambda o: o.line)
    far = group_orders(enumerate(rows, 2), mapping, open_orders=1)

    assert [(o.order_id, o.line, len(o.rows)) for o in near] == [
        ("1", 2, 3),
        ("2", 3, 1),
        ("3", 5, 1),
    ]
    # order 1 was emitted when 2 opened: its later rows come back marked, to be rejected
    assert [(o.order_id, o.line, o.late) for o in far] == [
        ("1", 2, False),
        ("1", 4, True),
        ("2", 3, False),
        ("1", 6, True),
        ("3", 5, False),
    ]


def test_a_refund_is_the_net_of_its_lines_and_a_negative_price_is_refused(
    settings: Settings, db: Engine
) -> None:
    csv_text = "order,customer,time,amount\n" + (
        "C1,c1,2025-01-02T10:00:00Z,-100\n"  # cancelled
        "C1,c1,2025-01-02T10:00:00Z,20\n"  # a fee kept: 80 given back, not 120
        "2,c1,2025-01-03T10:00:00Z,10\n"
        "2,c1,2025-01-03T10:00:00Z,-15\n"  # a discount above the line: 5 given back
    )
    mapping = CsvMapping(
        customer="customer",
        time="time",
        amount="amount",
        order="order",
        cancel_prefix="C",
        negative_as_refund=True,
    )

    summary = run_import(settings, db, csv_text, mapping)

    assert (summary.imported, summary.rejected) == (2, 0)
    assert [(e.type, e.amount) for e in stored(db)] == [
        ("refund", Decimal("80")),
        ("refund", Decimal("5")),
    ]
    flipped = HEADER + "C9,22841,MUG,-1,2010-12-01 09:44:00,-3.00,14527\n"
    refused = run_import(settings, db, flipped)
    assert dict(refused.rejections) == {
        2: "UnitPrice: a negative price; an order's lines need 0 or more"
    }


def test_rows_of_an_order_far_from_its_others_are_refused_with_their_line(
    settings: Settings, db: Engine
) -> None:
    """An export sorted by product: the order's second row after 300 other orders. It used to
    make a second event with the order's id, counted as a duplicate: its 50 lost unreported."""
    rows = ["900,A,lamp,1,2010-12-01 09:00:00,10,1"]
    rows += [f"{n},A,lamp,1,2010-12-01 09:00:00,1,{n}" for n in range(1000, 1300)]
    rows += ["900,B,table,1,2010-12-01 09:00:00,50,1"]

    summary = run_import(settings, db, HEADER + "\n".join(rows) + "\n")

    assert (summary.imported, summary.rejected, summary.duplicates) == (301, 1, 0)
    [(line, reason)] = summary.rejections
    assert line == 303
    assert reason.startswith("InvoiceNo: order '900' of customer '1' continues here after 256")


def test_line_numbers_count_the_file_s_lines(settings: Settings, db: Engine) -> None:
    """A quoted value over two lines and blank lines before a bad row: its own line."""
    csv_text = HEADER + (
        '536365,85123A,"WHITE\nHEART",6,2010-12-01 08:26:00,2.55,17850\n'
        "\n"
        "\n"
        "536366,85123A,MUG,six,2010-12-01 08:26:00,2.55,17850\n"
    )

    summary = run_import(settings, db, csv_text)

    assert dict(summary.rejections) == {6: "Quantity: 'six' is not a number"}


def test_identical_rows_without_orders_are_distinct_events_and_reruns_add_nothing(
    settings: Settings, db: Engine
) -> None:
    csv_text = (
        "customer_id,occurred_at,sku,quantity,price\n" + 3 * "c1,2025-01-02T10:00:00Z,A,1,5\n"
    )
    mapping = CsvMapping(
        customer="customer_id", time="occurred_at", sku="sku", quantity="quantity", price="price"
    )

    first = run_import(settings, db, csv_text, mapping)
    again = run_import(settings, db, csv_text, mapping)

    assert (first.imported, first.duplicates) == (3, 0)
    assert (again.imported, again.duplicates) == (0, 3)
    assert len({e.event_id for e in stored(db)}) == 3


def test_contradicting_flags_are_refused(env: Settings, tmp_path: Path) -> None:
    path = tmp_path / "retail.csv"
    path.write_text(HEADER)

    with_id = runner.invoke(app, ["import-csv", str(path), *RETAIL_FLAGS, "--event-id-col", "X"])
    prefix_alone = runner.invoke(
        app, ["import-csv", str(path), "--customer-col", "CustomerID", "--time-col",
              "InvoiceDate", "--cancel-prefix", "C"],
    )  # fmt: skip

    assert with_id.exit_code == 1
    assert "--event-id-col and --order-col exclude each other" in with_id.output
    assert prefix_alone.exit_code == 1
    assert "--cancel-prefix needs --order-col" in prefix_alone.output


def real_slice(path: Path) -> str:
    """The first 3,000 lines of Online Retail (9 cancelled invoices among them) and 30 lines
    around invoice 542806, whose rows another invoice splits."""
    if not ONLINE_RETAIL.exists():
        pytest.skip(f"{ONLINE_RETAIL} is absent (the shared data folder is not mounted)")
    with lzma.open(ONLINE_RETAIL, "rt", encoding="utf-8", newline="") as handle:
        lines = list(itertools.islice(handle, 78_110))
    text = "".join(lines[:3_001] + lines[78_080:])
    path.write_text(text, encoding="utf-8")
    return text


def expected_from_pandas(text: str) -> dict[str, Any]:
    """An order is a distinct (InvoiceNo, CustomerID) of the rows with a customer id; orders
    without one are rejected (one rejection an invoice)."""
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    known = frame[frame["CustomerID"] != ""]
    orders = known.drop_duplicates(["InvoiceNo", "CustomerID"])
    cancelled = known["InvoiceNo"].str.startswith("C")
    value = known["Quantity"].astype(int) * known["UnitPrice"].astype(float)
    return {
        "purchases": int((~orders["InvoiceNo"].str.startswith("C")).sum()),
        "refunds": int(orders["InvoiceNo"].str.startswith("C").sum()),
        "revenue": float(value[~cancelled].sum()),
        "refunded": float(-value[cancelled].sum()),
        "rejected": int(frame.loc[frame["CustomerID"] == "", "InvoiceNo"].nunique()),
        "lines": len(frame),
    }


def test_online_retail_slice_matches_pandas_and_a_rerun_adds_nothing(
    env: Settings, tmp_path: Path, db: Engine
) -> None:
    path = tmp_path / "online_retail.csv"
    expected = expected_from_pandas(real_slice(path))
    orders = expected["purchases"] + expected["refunds"]

    first = runner.invoke(app, ["import-csv", str(path), *RETAIL_FLAGS])
    again = runner.invoke(app, ["import-csv", str(path), *RETAIL_FLAGS])

    assert first.exit_code == 0, first.output
    assert (
        f"{expected['lines']} lines read as {orders + expected['rejected']} orders" in first.stdout
    )
    assert f"imported {orders}, duplicates 0, rejected {expected['rejected']}" in first.stdout
    assert "customer_id: String should have at least 1 character" in first.stdout
    assert f"imported 0, duplicates {orders}, rejected {expected['rejected']}" in again.stdout
    events = stored(db)
    purchases = [e for e in events if e.type == "purchase"]
    refunds = [e for e in events if e.type == "refund"]
    assert (len(purchases), len(refunds)) == (expected["purchases"], expected["refunds"])
    assert float(sum(e.amount for e in purchases)) == pytest.approx(expected["revenue"], abs=0.005)
    assert float(sum(e.amount for e in refunds)) == pytest.approx(expected["refunded"], abs=0.005)
