"""The gateway's core: one API call in, one committed change and one answer out.

This module owns how a call meets the store: Stripe's idempotency rules
(same key and parameters replay the saved answer, same key with anything
else is an `idempotency_error`), running a `transitions` operation inside a
single transaction with the events it emits and their queued deliveries,
expansion of answers, and telling the delivery worker there is work. The
HTTP edges (`api`, `page`) call it; it never sees a request object, and it
decides nothing about payments itself.

What is saved under an idempotency key: every call that ran (a success, or a
card decline that changed state), never one refused before changing anything
(a validation error, a 404, a wrong state), as Stripe does.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from urllib.parse import urlencode

import msgspec

from server.gateway import forms, objects, transitions
from server.gateway.config import GatewayConfig
from server.gateway.errors import GatewayError, IdempotencyMismatch, InvalidRequest, ResourceMissing
from server.gateway.forms import Params
from server.gateway.store import SavedResponse, Store
from server.gateway.transitions import Bank, Context, Obj, Outcome

_encode = msgspec.json.Encoder().encode

IDEMPOTENCY_TTL = 24 * 3600

# Which fields of which objects hold ids `expand[]` may replace with the object.
EXPANDABLE: dict[str, frozenset[str]] = {
    "payment_intent": frozenset({"latest_charge", "payment_method"}),
    "charge": frozenset({"payment_intent"}),
    "refund": frozenset({"charge", "payment_intent"}),
}

Operation = Callable[[Params, Context], Outcome]


@dataclass(frozen=True)
class Call:
    """One API call as the core sees it: the parameters exactly as they came over the wire."""

    method: str
    path: str
    pairs: list[tuple[str, str]]
    request_id: str = field(default_factory=lambda: objects.new_id("req"))
    idempotency_key: str | None = None

    def fingerprint(self) -> str:
        return hashlib.sha256(urlencode(sorted(self.pairs)).encode()).hexdigest()


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    request_id: str
    replayed: bool = False
    # For in-process callers (the checkout page); None on a replay.
    result: Obj | None = None
    error: GatewayError | None = None


class Gateway:
    def __init__(
        self,
        store: Store,
        config: GatewayConfig,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        on_queued: Callable[[], None] = lambda: None,
    ):
        self.store = store
        self.config = config
        self._rng = rng or random.Random()
        self._clock = clock
        self._on_queued = on_queued

    # -- the calls -----------------------------------------------------------

    def create_payment_intent(self, call: Call) -> Reply:
        return self._run(call, transitions.create_payment_intent)

    def confirm_payment_intent(self, call: Call, pi_id: str) -> Reply:
        return self._run(call, partial(transitions.confirm_payment_intent, pi_id))

    def capture_payment_intent(self, call: Call, pi_id: str) -> Reply:
        return self._run(call, partial(transitions.capture_payment_intent, pi_id))

    def cancel_payment_intent(self, call: Call, pi_id: str) -> Reply:
        return self._run(call, partial(transitions.cancel_payment_intent, pi_id))

    def create_refund(self, call: Call) -> Reply:
        return self._run(call, transitions.create_refund)

    def retrieve(self, call: Call, obj_id: str, kind: str) -> Reply:
        try:
            params = Params(forms.decode(call.pairs))
            expand = params.expand()
            params.reject_unknown()
            if kind == "event":
                obj = self.store.event(obj_id)
                if obj is None:
                    raise ResourceMissing(f"No such event: '{obj_id}'", param="id")
            else:
                param = "intent" if kind == "payment_intent" else "id"
                obj = transitions.need(self.store.get, obj_id, kind, param=param)
            result = self._expand(obj, expand)
        except GatewayError as exc:
            return Reply(exc.status, _encode(exc.body()), call.request_id, error=exc)
        return Reply(200, _encode(result), call.request_id, result=result)

    def get(self, obj_id: str) -> Obj | None:
        return self.store.get(obj_id)

    # -- the machinery -------------------------------------------------------

    def _run(self, call: Call, operation: Operation) -> Reply:
        key = call.idempotency_key
        try:
            with self.store.transaction():
                if key is not None and (saved := self.store.saved_response(key)) is not None:
                    return self._replay(call, key, saved)
                params = Params(forms.decode(call.pairs))
                expand = params.expand()
                now = self._clock()
                bank = Bank(self.config.success_rate, self._rng.random())
                outcome = operation(params, Context(self.store.get, bank, int(now)))
                queued = self._commit(call, outcome, now)
                if outcome.error is not None:
                    reply = Reply(
                        outcome.error.status,
                        _encode(outcome.error.body()),
                        call.request_id,
                        result=outcome.result,
                        error=outcome.error,
                    )
                else:
                    result = self._expand(outcome.result, expand)
                    reply = Reply(200, _encode(result), call.request_id, result=result)
                if key is not None:
                    saved = SavedResponse(
                        call.method, call.path, call.fingerprint(), reply.status, reply.body, call.request_id
                    )
                    self.store.save_response(key, saved, now)
        except GatewayError as exc:
            # Raised before anything was written, or rolled back: the call changed nothing.
            return Reply(exc.status, _encode(exc.body()), call.request_id, error=exc)
        if queued:
            self._on_queued()
        return reply

    def _replay(self, call: Call, key: str, saved: SavedResponse) -> Reply:
        if (saved.method, saved.path) != (call.method, call.path):
            raise IdempotencyMismatch(
                "Keys for idempotent requests can only be used for the same endpoint they were first used "
                f"for ('{saved.method} {saved.path}' vs '{call.method} {call.path}'). "
                f"Try using a key other than '{key}' if you meant to execute a different request."
            )
        if saved.fingerprint != call.fingerprint():
            raise IdempotencyMismatch(
                "Keys for idempotent requests can only be used with the same parameters they were first used "
                f"with. Try using a key other than '{key}' if you meant to execute a different request."
            )
        return Reply(saved.status, saved.body, saved.request_id, replayed=True)

    def _commit(self, call: Call, outcome: Outcome, now: float) -> bool:
        """Store the outcome's objects and events; True if deliveries were queued."""
        for obj in outcome.saved:
            self.store.put(obj)
        deliver = self.config.webhook_url is not None
        for emitted in outcome.events:
            event = objects.event(
                emitted.type,
                emitted.snapshot,
                now=int(now),
                api_version=self.config.api_version,
                request_id=call.request_id,
                idempotency_key=call.idempotency_key,
                pending_webhooks=1 if deliver else 0,
                previous_attributes=emitted.previous_attributes,
            )
            self.store.add_event(event, deliver_at=now + self.config.webhook_delay if deliver else None)
        return deliver and bool(outcome.events)

    def _expand(self, obj: Obj, paths: list[str]) -> Obj:
        if not paths:
            return obj
        heads: dict[str, list[str]] = {}
        for path in paths:
            head, _, rest = path.partition(".")
            heads.setdefault(head, [])
            if rest:
                heads[head].append(rest)
        out = dict(obj)
        for head, rests in heads.items():
            if head not in EXPANDABLE.get(obj["object"], frozenset()):
                raise InvalidRequest(f"This property cannot be expanded ({head}).", param="expand")
            ref = out.get(head)
            if isinstance(ref, str) and (target := self.store.get(ref)) is not None:
                out[head] = self._expand(target, rests)
        return out

    def forget_old_keys(self) -> int:
        return self.store.forget_responses(self._clock() - IDEMPOTENCY_TTL)
