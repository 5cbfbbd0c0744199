"""The pipelined script channel against the session's real Redis."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

from server.script_channel import ScriptChannel, pack
from server.scripts import Scripts
from tests.support import free_port


def test_pack_is_resp():
    assert pack("EVALSHA", "abc", 1, b"k") == b"*4\r\n$7\r\nEVALSHA\r\n$3\r\nabc\r\n$1\r\n1\r\n$1\r\nk\r\n"
    assert pack("SET", "é", "") == b"*3\r\n$3\r\nSET\r\n$2\r\n\xc3\xa9\r\n$0\r\n\r\n"


async def test_concurrent_calls_get_their_own_replies(redis_url):
    channel = ScriptChannel(redis_url)
    try:
        replies = await asyncio.gather(*(channel.execute("ECHO", f"call-{i}") for i in range(500)))
        assert replies == [f"call-{i}" for i in range(500)]
        with pytest.raises(ResponseError):
            await channel.execute("NOSUCHCOMMAND")
        assert await channel.execute("PING") == "PONG"  # still usable after an error reply
    finally:
        channel.close()


async def test_scripts_reload_through_the_channel_after_flush(redis_url):
    redis = Redis.from_url(redis_url, decode_responses=True)
    channel = ScriptChannel(redis_url)
    try:
        scripts = Scripts(redis, channel=channel)
        await scripts.register()
        await redis.script_flush()
        with pytest.raises(NoScriptError):
            await channel.evalsha(scripts.by_name["snapshot"].sha, ["a", "b"], [])
        assert await scripts.call("snapshot", ("sm:{none}:state", "sm:{none}:seats"), []) == []
    finally:
        channel.close()
        await redis.aclose()


async def test_a_lost_connection_fails_calls_and_the_next_call_reconnects(redis_url):
    channel = ScriptChannel(redis_url)
    try:
        assert await channel.execute("PING") == "PONG"
        client_id = await channel.execute("CLIENT", "ID")
        redis = Redis.from_url(redis_url)
        await redis.client_kill_filter(_id=client_id)
        await redis.aclose()
        await asyncio.sleep(0.05)
        assert await channel.execute("PING") == "PONG"
    finally:
        channel.close()


async def test_nothing_listening_is_a_connection_error():
    channel = ScriptChannel(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(RedisConnectionError):
        await channel.execute("PING")
