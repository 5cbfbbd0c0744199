"""The gateway for real: uvicorn on a free port, driven only by the stripe SDK and plain HTTP.

A small HTTP receiver stands in for Seatmap's webhook endpoint: it verifies
every delivery with `stripe.Webhook.construct_event`, as the server will, and
can be told to answer 500 a few times first.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import stripe

from server.gateway import GatewayConfig
from server.gateway.runner import BackgroundGateway, command, main, make_server

SECRET = "whsec_gateway_tests"
RETRY_BASE = 0.05
ROOT = Path(__file__).resolve().parents[2]


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    """Poll until `predicate()` is truthy; the timeout only guards against a hang."""
    deadline = time.monotonic() + timeout
    while True:
        if value := predicate():
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Receiver:
    """Seatmap's webhook endpoint, as a test double; `flaky[pi_id] = n` fails that intent's events n times."""

    def __init__(self) -> None:
        self.events: list[tuple[str | None, Any]] = []  # (PaymentIntent id, verified stripe.Event)
        self.rejected: list[str] = []  # why deliveries failed verification
        self.flaky: dict[str, int] = {}
        self.attempts: Counter[str] = Counter()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                # Another process on this machine may still be retrying to a
                # port we now hold: only our own path counts.
                if self.path != receiver.path:
                    status = 404
                else:
                    status = receiver.receive(body, self.headers.get("Stripe-Signature"))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.path = f"/api/webhooks/stripe/{uuid.uuid4().hex}"
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{self.path}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def receive(self, body: bytes, signature: str | None) -> int:
        try:
            event = stripe.Webhook.construct_event(body, signature, SECRET)
        except (stripe.SignatureVerificationError, ValueError) as exc:
            with self._lock:
                self.rejected.append(f"{exc!r} signature={signature!r} body={body[:120]!r}")
            return 400
        obj = event.data.object
        intent = obj.id if obj.object == "payment_intent" else getattr(obj, "payment_intent", None)
        with self._lock:
            self.attempts[event.id] += 1
            if self.attempts[event.id] <= self.flaky.get(intent, 0):
                return 500
            self.events.append((intent, event))
        return 200

    def of(self, pi_id: str, event_type: str | None = None) -> list[Any]:
        with self._lock:
            events = list(self.events)
        return [e for intent, e in events if intent == pi_id and (event_type is None or e.type == event_type)]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()
    assert r.rejected == []


def gateway_config(db: Path, webhook_url: str | None, **knobs: Any) -> GatewayConfig:
    return GatewayConfig(
        db_path=db,
        webhook_url=webhook_url,
        webhook_secret=SECRET if webhook_url else None,
        retry_base=RETRY_BASE,
        retry_cap=0.2,
        **knobs,
    )


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[BackgroundGateway]:
    db = tmp_path_factory.mktemp("gateway") / "gateway.sqlite3"
    with BackgroundGateway(gateway_config(db, receiver.url)) as running:
        yield running


@pytest.fixture(scope="module")
def client(gateway: BackgroundGateway) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_gateway", base_addresses={"api": gateway.url})


def new_intent(client: stripe.StripeClient, **params: Any) -> Any:
    return client.v1.payment_intents.create(
        params={"amount": 5000, "currency": "usd", "metadata": {"order_id": "o-1"}, **params}
    )


def deliveries(gateway: BackgroundGateway, **query: str) -> list[dict[str, Any]]:
    return httpx.get(f"{gateway.url}/_gateway/deliveries", params=query).json()["data"]


# -- the REST API through the SDK ----------------------------------------------


def test_automatic_capture_pays_and_signed_events_reach_the_receiver(
    client: stripe.StripeClient, receiver: Receiver
) -> None:
    intent = client.v1.payment_intents.create(
        params={
            "amount": 5000,
            "currency": "usd",
            "metadata": {"order_id": "o-42"},
            "payment_method_types": ["card"],
            "description": "2 seats, gala-2026",
        },
        options={"idempotency_key": "create-o-42"},
    )
    assert intent.id.startswith("pi_") and intent.object == "payment_intent"
    assert intent.status == "requires_payment_method"
    assert intent.client_secret.startswith(f"{intent.id}_secret_")
    assert intent.metadata["order_id"] == "o-42"

    paid = client.v1.payment_intents.confirm(
        intent.id, params={"payment_method": "pm_card_visa"}, options={"idempotency_key": "confirm-o-42"}
    )
    assert paid.status == "succeeded"
    assert paid.amount_received == 5000
    assert paid.latest_charge.startswith("ch_")
    assert client.v1.payment_intents.retrieve(intent.id).status == "succeeded"

    succeeded = wait_until(
        lambda: receiver.of(intent.id, "payment_intent.succeeded"), "payment_intent.succeeded"
    )
    event = succeeded[0]
    assert event.id.startswith("evt_") and event.object == "event"
    assert event.livemode is False and event.pending_webhooks == 1 and event.api_version
    assert event.request.idempotency_key == "confirm-o-42" and event.request.id.startswith("req_")
    assert event.data.object.metadata["order_id"] == "o-42"
    assert event.data.object.amount_received == 5000
    wait_until(lambda: receiver.of(intent.id, "charge.succeeded"), "charge.succeeded")
    wait_until(lambda: receiver.of(intent.id, "payment_intent.created"), "payment_intent.created")


def test_a_decline_is_a_card_error_and_a_retry_with_a_good_card_succeeds(
    client: stripe.StripeClient, receiver: Receiver
) -> None:
    intent = new_intent(client)
    with pytest.raises(stripe.CardError) as declined:
        client.v1.payment_intents.confirm(intent.id, params={"payment_method": "pm_card_chargeDeclined"})
    assert declined.value.http_status == 402
    assert declined.value.code == "card_declined"
    assert declined.value.error.decline_code == "generic_decline"
    assert declined.value.error.payment_intent.id == intent.id

    after = client.v1.payment_intents.retrieve(intent.id)
    assert after.status == "requires_payment_method"
    assert after.last_payment_error.decline_code == "generic_decline"
    wait_until(
        lambda: receiver.of(intent.id, "payment_intent.payment_failed"), "payment_intent.payment_failed"
    )

    assert client.v1.payment_intents.confirm(intent.id, params={"payment_method": "pm_card_visa"}).status == (
        "succeeded"
    )


def test_manual_capture_authorizes_then_captures(client: stripe.StripeClient, receiver: Receiver) -> None:
    intent = new_intent(client, capture_method="manual")
    authorized = client.v1.payment_intents.confirm(intent.id, params={"payment_method": "pm_card_visa"})
    assert authorized.status == "requires_capture"
    assert authorized.amount_capturable == 5000
    wait_until(
        lambda: receiver.of(intent.id, "payment_intent.amount_capturable_updated"),
        "amount_capturable_updated",
    )
    captured = client.v1.payment_intents.capture(intent.id, params={"amount_to_capture": 4500})
    assert (captured.status, captured.amount_received, captured.amount_capturable) == ("succeeded", 4500, 0)
    charge = client.v1.payment_intents.retrieve(intent.id, params={"expand": ["latest_charge"]}).latest_charge
    assert charge.captured and charge.amount_captured == 4500


def test_cancel_releases_an_authorization_and_wrong_states_are_refused(
    client: stripe.StripeClient, receiver: Receiver
) -> None:
    intent = new_intent(client, capture_method="manual", confirm=True, payment_method="pm_card_visa")
    assert intent.status == "requires_capture"
    canceled = client.v1.payment_intents.cancel(intent.id, params={"cancellation_reason": "abandoned"})
    assert (canceled.status, canceled.cancellation_reason) == ("canceled", "abandoned")
    wait_until(lambda: receiver.of(intent.id, "payment_intent.canceled"), "payment_intent.canceled")

    for call in (
        lambda: client.v1.payment_intents.cancel(intent.id),
        lambda: client.v1.payment_intents.capture(intent.id),
        lambda: client.v1.payment_intents.confirm(intent.id, params={"payment_method": "pm_card_visa"}),
    ):
        with pytest.raises(stripe.InvalidRequestError) as refused:
            call()
        assert refused.value.http_status == 400
        assert refused.value.code == "payment_intent_unexpected_state"


def test_idempotency_keys_replay_the_same_answer_and_refuse_other_parameters(
    client: stripe.StripeClient,
) -> None:
    params = {"amount": 7000, "currency": "eur", "metadata": {"order_id": "o-idem"}}
    first = client.v1.payment_intents.create(params=params, options={"idempotency_key": "idem-1"})
    again = client.v1.payment_intents.create(params=params, options={"idempotency_key": "idem-1"})
    assert again.id == first.id
    assert again.last_response.headers["Idempotent-Replayed"] == "true"

    with pytest.raises(stripe.IdempotencyError):
        client.v1.payment_intents.create(
            params={**params, "amount": 7001}, options={"idempotency_key": "idem-1"}
        )
    with pytest.raises(stripe.IdempotencyError):
        client.v1.payment_intents.confirm(
            first.id, params={"payment_method": "pm_card_visa"}, options={"idempotency_key": "idem-1"}
        )
    # A decline ran, so it is saved: the same key gets the same decline, not a second attempt.
    with pytest.raises(stripe.CardError) as first_decline:
        client.v1.payment_intents.confirm(
            first.id,
            params={"payment_method": "pm_card_chargeDeclined"},
            options={"idempotency_key": "idem-2"},
        )
    with pytest.raises(stripe.CardError) as replayed:
        client.v1.payment_intents.confirm(
            first.id,
            params={"payment_method": "pm_card_chargeDeclined"},
            options={"idempotency_key": "idem-2"},
        )
    assert replayed.value.request_id == first_decline.value.request_id


def test_refunds_partial_full_and_too_much(client: stripe.StripeClient, receiver: Receiver) -> None:
    intent = new_intent(client, confirm=True, payment_method="pm_card_visa")
    partial = client.v1.refunds.create(
        params={"payment_intent": intent.id, "amount": 2000, "reason": "requested_by_customer"}
    )
    assert partial.id.startswith("re_") and partial.object == "refund"
    assert (partial.status, partial.amount, partial.payment_intent) == ("succeeded", 2000, intent.id)
    assert client.v1.refunds.retrieve(partial.id).amount == 2000

    with pytest.raises(stripe.InvalidRequestError) as too_much:
        client.v1.refunds.create(params={"payment_intent": intent.id, "amount": 3001})
    assert (too_much.value.http_status, too_much.value.code) == (400, "amount_too_large")

    rest = client.v1.refunds.create(params={"charge": intent.latest_charge})
    assert rest.amount == 3000
    with pytest.raises(stripe.InvalidRequestError) as already:
        client.v1.refunds.create(params={"payment_intent": intent.id})
    assert already.value.code == "charge_already_refunded"

    def fully_refunded() -> Any:
        return [e for e in receiver.of(intent.id, "charge.refunded") if e.data.object.refunded]

    charge = wait_until(fully_refunded, "charge.refunded (full)")[0].data.object
    assert charge.object == "charge" and charge.payment_intent == intent.id
    assert charge.amount_refunded == 5000
    assert {r.id for r in charge.refunds.data} == {partial.id, rest.id}
    wait_until(lambda: len(receiver.of(intent.id, "refund.created")) == 2, "two refund.created")


def test_unknown_ids_are_404_resource_missing(client: stripe.StripeClient) -> None:
    for call in (
        lambda: client.v1.payment_intents.retrieve("pi_missing"),
        lambda: client.v1.payment_intents.confirm("pi_missing", params={"payment_method": "pm_card_visa"}),
        lambda: client.v1.refunds.retrieve("re_missing"),
        lambda: client.v1.refunds.create(params={"payment_intent": "pi_missing"}),
    ):
        with pytest.raises(stripe.InvalidRequestError) as missing:
            call()
        assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")


def test_requests_without_an_api_key_are_refused(gateway: BackgroundGateway) -> None:
    response = httpx.post(f"{gateway.url}/v1/payment_intents", data={"amount": "5000", "currency": "usd"})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "API key" in response.json()["error"]["message"]
    with pytest.raises(stripe.AuthenticationError):
        stripe.StripeClient("", base_addresses={"api": gateway.url}).v1.payment_intents.retrieve("pi_x")


def test_the_legacy_module_level_sdk_style_works(
    gateway: BackgroundGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stripe, "api_key", "sk_test_legacy")
    monkeypatch.setattr(stripe, "api_base", gateway.url)
    intent = stripe.PaymentIntent.create(
        amount=2500, currency="usd", metadata={"order_id": "o-legacy"}, idempotency_key="legacy-1"
    )
    assert (
        stripe.PaymentIntent.create(
            amount=2500, currency="usd", metadata={"order_id": "o-legacy"}, idempotency_key="legacy-1"
        ).id
        == intent.id
    )
    with pytest.raises(stripe.CardError):
        stripe.PaymentIntent.confirm(intent.id, payment_method="pm_card_chargeDeclined")
    assert stripe.PaymentIntent.confirm(intent.id, payment_method="pm_card_visa").status == "succeeded"
    assert stripe.Refund.create(payment_intent=intent.id).amount == 2500


# stripe 16's async HTTPX client passes the body as `data=<bytes>`, which httpx
# 0.28 deprecates; with warnings as errors the SDK would report it as an
# APIConnectionError. The warning is the SDK's, not the gateway's.
@pytest.mark.filterwarnings("ignore:Use 'content=<...>' to upload raw bytes:DeprecationWarning")
async def test_the_async_sdk_works_too(gateway: BackgroundGateway) -> None:
    http = stripe.HTTPXClient()  # our own, so it can be closed: the SDK's default one never is
    client = stripe.StripeClient("sk_test_async", base_addresses={"api": gateway.url}, http_client=http)
    try:
        intent = await client.v1.payment_intents.create_async(params={"amount": 900, "currency": "usd"})
        paid = await client.v1.payment_intents.confirm_async(
            intent.id, params={"payment_method": "pm_card_visa"}
        )
        assert paid.status == "succeeded"
    finally:
        await http.close_async()


def test_concurrent_confirms_of_one_intent_charge_it_once(client: stripe.StripeClient) -> None:
    intent = new_intent(client)

    def confirm() -> str:
        try:
            return client.v1.payment_intents.confirm(
                intent.id, params={"payment_method": "pm_card_visa"}
            ).status
        except stripe.InvalidRequestError as exc:
            return exc.code or "?"

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = Counter(pool.map(lambda _: confirm(), range(4)))
    assert outcomes == Counter({"succeeded": 1, "payment_intent_unexpected_state": 3})


# -- webhook delivery ----------------------------------------------------------


def test_failed_deliveries_are_retried_until_a_2xx(
    client: stripe.StripeClient, gateway: BackgroundGateway, receiver: Receiver
) -> None:
    intent = new_intent(client)
    receiver.flaky[intent.id] = 2
    client.v1.payment_intents.confirm(intent.id, params={"payment_method": "pm_card_visa"})
    event = wait_until(lambda: receiver.of(intent.id, "payment_intent.succeeded"), "the retried delivery")[0]
    assert receiver.attempts[event.id] == 3
    delivery = wait_until(
        lambda: [d for d in deliveries(gateway, event_id=event.id) if d["state"] == "delivered"],
        "delivered state",
    )[0]
    assert [a["status"] for a in delivery["attempt_log"]] == [500, 500, 200]
    assert delivery["attempt_log"][0]["error"].startswith("HTTP 500")


def test_pending_deliveries_survive_a_gateway_restart(tmp_path: Path, receiver: Receiver) -> None:
    db = tmp_path / "gateway.sqlite3"
    with BackgroundGateway(gateway_config(db, receiver.url)) as first:
        client = stripe.StripeClient("sk_test_restart", base_addresses={"api": first.url})
        intent = new_intent(client)
        receiver.flaky[intent.id] = 10**9  # the receiver is "down" for this intent
        client.v1.payment_intents.confirm(intent.id, params={"payment_method": "pm_card_visa"})
        wait_until(
            lambda: any(d["type"] == "payment_intent.succeeded" and d["attempts"] for d in deliveries(first)),
            "a failed attempt",
        )
    assert not receiver.of(intent.id, "payment_intent.succeeded")

    receiver.flaky[intent.id] = 0  # back up
    with BackgroundGateway(gateway_config(db, receiver.url)) as second:
        wait_until(lambda: receiver.of(intent.id, "payment_intent.succeeded"), "delivery after the restart")
        client = stripe.StripeClient("sk_test_restart", base_addresses={"api": second.url})
        assert client.v1.payment_intents.retrieve(intent.id).status == "succeeded"


def test_the_webhook_delay_holds_deliveries_back(tmp_path: Path, receiver: Receiver) -> None:
    config = gateway_config(tmp_path / "gateway.sqlite3", receiver.url, webhook_delay=3600.0)
    with BackgroundGateway(config) as delayed:
        client = stripe.StripeClient("sk_test_delay", base_addresses={"api": delayed.url})
        before = time.time()
        new_intent(client)
        [delivery] = deliveries(delayed)
        assert (delivery["state"], delivery["attempts"]) == ("pending", 0)
        assert delivery["next_attempt_at"] >= before + 3600.0
        health = httpx.get(f"{delayed.url}/_gateway/health").json()
        assert health["pending_deliveries"] == 1 and health["webhook_delay"] == 3600.0


def test_a_success_rate_of_zero_declines_good_cards(tmp_path: Path) -> None:
    with BackgroundGateway(gateway_config(tmp_path / "gateway.sqlite3", None, success_rate=0.0)) as unlucky:
        client = stripe.StripeClient("sk_test_unlucky", base_addresses={"api": unlucky.url})
        intent = new_intent(client)
        with pytest.raises(stripe.CardError) as declined:
            client.v1.payment_intents.confirm(intent.id, params={"payment_method": "pm_card_visa"})
        assert declined.value.error.decline_code == "generic_decline"
        events = httpx.get(f"{unlucky.url}/_gateway/events", params={"payment_intent": intent.id}).json()[
            "data"
        ]
        assert "payment_intent.payment_failed" in {e["type"] for e in events}


# -- the checkout page -----------------------------------------------------------


def test_the_checkout_page_shows_the_amount_and_two_labelled_buttons(
    client: stripe.StripeClient, gateway: BackgroundGateway
) -> None:
    intent = new_intent(client)
    page = httpx.get(f"{gateway.url}/pay/{intent.id}", params={"return_url": "http://shop.test/done?o=1"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<html lang="en">' in html and "50.00 USD" in html
    assert f'<form method="post" action="/pay/{intent.id}">' in html
    assert '<button type="submit" class="pay" name="choice" value="pay">Pay with test card 4242' in html
    assert 'value="decline">Decline (test card 0002)</button>' in html
    assert 'name="return_url" value="http://shop.test/done?o=1"' in html
    assert "<script" not in html and "http-equiv" not in html
    assert httpx.get(f"{gateway.url}/pay/pi_missing").status_code == 404


def test_paying_on_the_page_declines_then_pays_and_returns_to_the_merchant(
    client: stripe.StripeClient, gateway: BackgroundGateway, receiver: Receiver
) -> None:
    intent = new_intent(client)
    form = {"return_url": "http://shop.test/done?o=1"}

    declined = httpx.post(f"{gateway.url}/pay/{intent.id}", data={**form, "choice": "decline"})
    assert declined.status_code == 303
    back = urlsplit(declined.headers["location"])
    assert (back.netloc, back.path) == ("shop.test", "/done")
    assert parse_qs(back.query) == {
        "o": ["1"],
        "payment_intent": [intent.id],
        "payment_intent_client_secret": [intent.client_secret],
        "redirect_status": ["failed"],
    }
    assert client.v1.payment_intents.retrieve(intent.id).status == "requires_payment_method"

    paid = httpx.post(f"{gateway.url}/pay/{intent.id}", data={**form, "choice": "pay"})
    assert paid.status_code == 303
    assert parse_qs(urlsplit(paid.headers["location"]).query)["redirect_status"] == ["succeeded"]
    assert client.v1.payment_intents.retrieve(intent.id).status == "succeeded"
    wait_until(lambda: receiver.of(intent.id, "payment_intent.succeeded"), "payment_intent.succeeded")

    done = httpx.get(f"{gateway.url}/pay/{intent.id}")
    assert "This payment is complete." in done.text and "<form" not in done.text


# -- running it -----------------------------------------------------------------


async def test_make_server_serves_in_a_running_loop_and_leaves_signals_alone(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGTERM)
    server = make_server(gateway_config(tmp_path / "gateway.sqlite3", None), log_level="warning")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            while not server.started:
                assert not serving.done(), "the gateway did not start"
                await asyncio.sleep(0.01)
            assert signal.getsignal(signal.SIGTERM) == before
            async with httpx.AsyncClient(
                base_url=url, headers={"Authorization": "Bearer sk_test_loop"}
            ) as http:
                created = await http.post(
                    "/v1/payment_intents",
                    data={"amount": "5000", "currency": "usd", "metadata[order_id]": "o-9"},
                )
                assert created.status_code == 200
                assert created.json()["metadata"] == {"order_id": "o-9"}
        finally:
            server.should_exit = True
            await serving


# -- the command line ------------------------------------------------------------


def test_the_command_line_rejects_bad_knobs() -> None:
    assert main(["--success-rate", "1.5"], env={}) == 2
    assert main(["--webhook-url", "http://127.0.0.1:9/hook"], env={}) == 2  # no secret to sign with


def test_python_m_server_gateway_serves_and_stops_cleanly(tmp_path: Path, receiver: Receiver) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = gateway_config(tmp_path / "gateway.sqlite3", receiver.url)
    env = {**os.environ, "STRIPE_WEBHOOK_SECRET": SECRET, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        command(config, port=port),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                return httpx.get(f"{url}/_gateway/health").status_code == 200
            except httpx.TransportError:
                assert child.poll() is None, "the gateway exited"
                return False

        wait_until(healthy, "the gateway process")
        client = stripe.StripeClient("sk_test_cli", base_addresses={"api": url})
        intent = new_intent(client, confirm=True, payment_method="pm_card_visa")
        wait_until(lambda: receiver.of(intent.id, "payment_intent.succeeded"), "a webhook from the child")
    finally:
        child.send_signal(signal.SIGTERM)
        _, log = child.communicate(timeout=15)
    # uvicorn shuts down gracefully, then re-raises the signal it caught.
    assert child.returncode in (0, -signal.SIGTERM), log
    assert "Application shutdown complete" in log
    assert "POST /v1/payment_intents -> 200" in log
    assert "webhook evt_" in log
