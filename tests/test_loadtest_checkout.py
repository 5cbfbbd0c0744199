"""`checkout`, tiny: real purchases end to end (hold, checkout, the stripe
SDK's confirm at the bundled gateway, webhook, booked). Counts, never timings."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_loadtest_drop import loadtest

pytestmark = pytest.mark.slow


def test_checkout_completes_purchases(tmp_path: Path, redis_url: str, database_url: str) -> None:
    status, result, output = loadtest(
        tmp_path, redis_url, database_url, "checkout",
        "--concurrency", "4", "--processes", "1", "--duration", "2", "--warmup", "0.5", "--seats", "400",
    )  # fmt: skip
    assert status == 0, output[-3000:]
    assert result["purchases"] > 0 and result["purchases_per_s"] > 0
    assert result["violations"] == [] and result["failures"] == {}
    shares = [row["share"] for row in result["steps"].values()]
    assert set(result["steps"]) == {"hold", "checkout", "pay", "confirmed"}
    assert all(share > 0 for share in shares) and abs(sum(shares) - 1) < 1e-6
