"""The pure parts of the load tester: the invariant checks on canned
evidence, the `bench` table and markdown writer on canned results, the
HTML report. No server."""

from __future__ import annotations

from typing import Any

from loadtest import bench, htmlreport, invariants
from loadtest.stats import hdr_buckets, hdr_summary, histogram, record_ms

HOLD_MS = 10_000


def grant(client: str, hold_id: str, seats: list[str], at_ms: int) -> dict[str, Any]:
    return {"client": client, "hold_id": hold_id, "seats": seats, "hold_seats": seats, "send": at_ms / 1000 - 0.002,
            "reply": at_ms / 1000 + 0.002, "expires_ms": at_ms + HOLD_MS, "new_hold": True}  # fmt: skip


def test_a_seat_granted_while_another_hold_lives_is_a_violation() -> None:
    grants = [grant("b1", "h1", ["A-1", "A-2"], 1_000_000), grant("b2", "h2", ["A-2"], 1_004_000)]
    (violation,) = invariants.double_grants(grants, [], [], {}, HOLD_MS)
    assert violation["seat"] == "A-2"
    assert violation["granted_to"]["hold_id"] == "h2" and violation["while_owned_by"]["hold_id"] == "h1"


def test_grants_after_expiry_release_or_into_a_lapsed_order_are_fine() -> None:
    grants = [
        grant("b1", "h1", ["A-1"], 1_000_000),
        grant("b2", "h2", ["A-1"], 1_000_000 + HOLD_MS),  # exactly at h1's expiry
        grant("b3", "h3", ["B-1"], 1_000_000),
        grant("b4", "h4", ["B-1"], 1_003_000),  # after h3's release
        grant("b5", "h5", ["C-1"], 1_000_000),
        grant("b6", "h6", ["C-1"], 1_030_000),  # after h5's order lapsed
    ]
    releases = [{"hold_id": "h3", "seats": ["B-1"], "send": 1_002.0, "reply": 1_002.01, "ok": True}]
    checkouts = [{"client": "b5", "hold_id": "h5", "order_id": "o5", "seats": ["C-1"], "send": 1_001.0,
                  "reply": 1_001.1, "expires_ms": 1_020_000}]  # fmt: skip
    assert invariants.double_grants(grants, releases, checkouts, {"o5": {"status": "expired"}}, HOLD_MS) == []
    # a grant while the order was confirmed is one
    found = invariants.double_grants(grants, releases, checkouts, {"o5": {"status": "confirmed"}}, HOLD_MS)
    assert [v["seat"] for v in found] == ["C-1"] and found[0]["while_owned_by"]["order_id"] == "o5"


def test_orders_payments_and_server_state() -> None:
    confirmed = [{"order_id": "o1", "buyer_id": "b1", "seats": ["A-1"]},
                 {"order_id": "o2", "buyer_id": "b2", "seats": ["A-1", "A-2"]}]  # fmt: skip
    (double,) = invariants.double_orders(confirmed)
    assert double["seat"] == "A-1" and {o["order_id"] for o in double["orders"]} == {"o1", "o2"}
    availability = {"version": 7, "seats": {"A-1": "booked", "A-2": "held", "A-3": "booked"}}
    problems = invariants.server_state(availability, confirmed)
    assert {p["seat"] for p in problems} == {"A-2", "A-3"}
    settled = [
        {"payment_intent": "pi1", "order_id": "o1", "pi_status": "succeeded", "order_status": "confirmed"},
        {"payment_intent": "pi2", "order_id": "o2", "pi_status": "canceled", "order_status": "cancelled"},
        {"payment_intent": "pi3", "order_id": "o3", "pi_status": "succeeded", "order_status": "refunded",
         "amount": 100, "amount_refunded": 100},
        {"payment_intent": "pi4", "order_id": "o4", "pi_status": "succeeded", "order_status": "expired"},
        {"payment_intent": "pi5", "order_id": "o5", "pi_status": "requires_capture", "order_status": "pending"},
    ]  # fmt: skip
    assert [v["payment_intent"] for v in invariants.payments(settled)] == ["pi4", "pi5"]


CANNED: dict[str, Any] = {
    "holds": {"results": {"server": {"holds_per_s": 3100.0, "latency_ms": {"p50": 9.1, "p99": 30.2}},
                          "redis": {"holds_per_s": 9000.0}, "postgres": {"holds_per_s": 2900.0}},
              "ratios": {"a/c": 1.07}},
    "fanout": {"runs": [{"clients": 1000, "seatmap": {"cpu_us_per_frame": 9.5, "latency_ms": {"p50": 20, "p99": 80}},
                         "raw": {"cpu_us_per_frame": 6.0}}]},
    "connections": {"results": {"seatmap": {"rss_per_connection_kib": 30.1}}},
    "snapshot": {"wire": {"compact": {"seats": 20000, "bytes": 20096}}, "encode": {"compact": {"us": 7}}},
    "checkout": {"params": {"concurrency": 8}, "purchases_per_s": 21.5, "latency_ms": {"p50": 330, "p99": 870},
                 "steps": {"hold": {"share": 0.05}, "checkout": {"share": 0.35}, "pay": {"share": 0.04},
                           "confirmed": {"share": 0.56}}},
    "drop": {"summary": {"connected": 1000, "holds_granted": 700, "holds_refused": 300, "peak_frames_per_s": 5e4,
                         "peak_holds_per_s": 400},
             "latency": {"hold (request to reply)": {"summary": {"p50": 5, "p95": 20, "p99": 40, "max": 90}},
                         "fan-out (grant to each client's receipt)": {"summary": {"p50": 30, "p99": 200}}},
             "violations": []},
}  # fmt: skip


def test_bench_table_and_markdown_from_canned_results() -> None:
    rows = bench.headline(CANNED)
    assert {b for b, _, _ in rows} == set(bench.ORDER)
    by_figure = {f: v for _, f, v in rows}
    assert by_figure["purchases/s at concurrency 8"] == "21.5"
    assert by_figure["share of time per step"] == "hold 5%, checkout 35%, pay 4%, confirmed 56%"
    assert by_figure["invariant violations"] == "0"
    info = {"date": "2026-11-22T10:00:00Z", "commit": "abc1234", "machine": {"cores": 2, "cpu": "Xeon",
            "ram_gib": 23.4, "python": "3.11.7"}}  # fmt: skip
    section = bench.figures_markdown(rows, info, "quick", {"fanout": "exit status 1"})
    assert section.startswith(bench.BEGIN) and section.endswith(bench.END)
    assert "commit `abc1234`" in section and "2 cores, Xeon, 23.4 GiB RAM" in section
    assert "| fanout | **failed** | exit status 1 |" in section and "Quick sizes" in section

    document = "# Benchmarks\n\nhand-written figures\n"
    added = bench.replace_section(document, section)
    assert added.startswith(document.rstrip("\n")) and "## Latest `bench` run" in added
    again = bench.replace_section(added, section.replace("abc1234", "def5678"))
    assert "def5678" in again and "abc1234" not in again and again.count(bench.BEGIN) == 1
    assert "hand-written figures" in again


def test_html_report_is_self_contained() -> None:
    hist = histogram()
    for value in (0.4, 1.2, 3.0, 3.1, 250.0):
        record_ms(hist, value)
    summary = hdr_summary(hist)
    assert summary["count"] == 5 and 240 < summary["max"] < 260
    page = htmlreport.render({
        "command": "drop", "date": "now", "summary": {"holds_granted": 5},
        "latency": {"hold": {"summary": summary, "buckets": hdr_buckets(hist)}},
        "series": {"t": [1, 2, 3], "p50_ms": [1, None, 2], "p99_ms": [3, 4, 5], "max_ms": [5, 6, 7],
                   "holds_per_s": [1, 2, 3], "frames_per_s": [10, 20, 5], "connected": [1, 2, 2]},
        "resources": {"t": [1, 2], "server": {"cpu": [0.5, 0.7], "rss_mib": [50, 60]}},
        "violations": [{"invariant": "x", "seat": "A-1"}],
    })  # fmt: skip
    assert page.count("<svg") >= 6 and "A-1" in page and "violation" in page
    assert "<script" not in page and "src=" not in page and "href=" not in page
