"""Durability: Redis losing its data mid-sale, and a server killed with
SIGKILL and restarted. Nothing confirmed or reserved is lost."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from server.keys import event_keys
from server.venues import grid_venue
from tests.payflow import confirm, hold_and_checkout, order, wait_for_status
from tests.support import MapFollower, ServerProcess, receive_json, running_server, unique_id


async def test_redis_flushed_mid_sale_is_rebuilt_from_postgres(server_settings, redis_url):
    async with running_server(server_settings()) as running:
        event_id = await running.create_event(grid_venue(1, 6, event_id=unique_id()))
        _, paid = await hold_and_checkout(running, event_id, ["A-1"])
        await confirm(running, paid["payment_intent_id"])
        await wait_for_status(running, paid["order_id"], "confirmed")
        _, pending = await hold_and_checkout(running, event_id, ["A-2"])
        _, token = await running.buyer()
        async with running.http(token) as client:
            assert (await client.post(f"/api/events/{event_id}/holds", json={"seats": ["A-3"]})).status_code == 201

        follower = MapFollower()
        async with running.socket(event_id) as ws:
            follower.apply(await receive_json(ws))
            old_epoch = follower.epoch
            redis = Redis.from_url(redis_url, decode_responses=True)
            try:
                await redis.flushdb()
                # noticed and rebuilt by the server itself, with no request to prompt it
                for _ in range(100):
                    if await redis.exists(event_keys(event_id).state):
                        break
                    await asyncio.sleep(0.05)
                assert await redis.exists(event_keys(event_id).state), "not rebuilt within 5 s"
            finally:
                await redis.aclose()
            # the open socket is resynchronised with a snapshot of the new epoch
            frame = await receive_json(ws, timeout=5)
            while frame["type"] != "snapshot":
                frame = await receive_json(ws, timeout=5)
            follower.apply(frame)
        assert follower.epoch != old_epoch
        seats = (await running.availability(event_id))["seats"]
        assert follower.seats == seats
        assert seats["A-1"] == "booked"  # confirmed: kept
        assert seats["A-2"] == "held"  # reserved for a checkout: kept
        assert seats["A-3"] == "available"  # a hold: ephemeral, not restored
        # the checkout completes on the rebuilt state
        await confirm(running, pending["payment_intent_id"])
        await wait_for_status(running, pending["order_id"], "confirmed")
        assert (await running.availability(event_id))["seats"]["A-2"] == "booked"


@pytest.mark.slow
async def test_sigkill_and_restart_loses_nothing_and_resumes_expiry(server_settings):
    process = ServerProcess(server_settings(checkout_seconds=4, hold_seconds=4))
    await process.start()
    running = process.client()
    try:
        event_id = await running.create_event(grid_venue(1, 6, event_id=unique_id()))
        _, paid = await hold_and_checkout(running, event_id, ["A-1"])
        await confirm(running, paid["payment_intent_id"])
        await wait_for_status(running, paid["order_id"], "confirmed")
        _, unpaid = await hold_and_checkout(running, event_id, ["A-2"])
        _, paying = await hold_and_checkout(running, event_id, ["A-3"])
        _, token = await running.buyer()
        async with running.http(token) as client:
            assert (await client.post(f"/api/events/{event_id}/holds", json={"seats": ["A-4"]})).status_code == 201
        # the buyer pays and the server dies at once: the webhook may or may not have arrived
        await confirm(running, paying["payment_intent_id"])
        await process.crash()
        await asyncio.sleep(0.5)
        await process.start()

        assert (await order(running, paid["order_id"]))["status"] == "confirmed"
        await wait_for_status(running, paying["order_id"], "confirmed", timeout=30)
        await wait_for_status(running, unpaid["order_id"], "expired", timeout=30)
        for _ in range(200):
            seats = (await running.availability(event_id))["seats"]
            if seats["A-2"] == seats["A-4"] == "available":
                break
            await asyncio.sleep(0.1)
        assert seats == {
            "A-1": "booked",
            "A-2": "available",
            "A-3": "booked",
            "A-4": "available",
            "A-5": "available",
            "A-6": "available",
        }
    finally:
        await process.stop()
