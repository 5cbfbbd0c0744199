"""Websocket framing (pure) and the choice of sink on the running loop."""

from __future__ import annotations

import asyncio

from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from server.wire import TransportSink, close_frame, sink_for, text_frame


def parse(data: bytes) -> Frame:
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        return done.value
    raise AssertionError("incomplete frame")


def test_text_frames_of_every_length_class_parse_back():
    for size in (0, 1, 125, 126, 65535, 65536, 200_000):
        payload = b"x" * size
        frame = parse(text_frame(payload))
        assert frame.opcode is Opcode.TEXT and frame.fin and frame.data == payload


def test_close_frame_carries_code_and_reason():
    frame = parse(close_frame(4000, "too slow"))
    assert frame.opcode is Opcode.CLOSE and frame.data[:2] == (4000).to_bytes(2, "big")
    assert frame.data[2:] == b"too slow"


async def test_the_running_loops_transports_take_the_fast_path():
    """Whatever the loop (uvloop here), a real socket transport gets the direct sink."""
    accepted: list[asyncio.StreamWriter] = []
    server = await asyncio.start_server(lambda r, w: accepted.append(w), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)

    class Protocol:
        transport = writer.transport

        async def send(self, message):  # stands for uvicorn's bound ASGI send
            pass

    try:
        assert isinstance(sink_for(Protocol().send, 1024), TransportSink)
    finally:
        for stream in (writer, *accepted):
            stream.close()
            await stream.wait_closed()
        server.close()
        await server.wait_closed()
