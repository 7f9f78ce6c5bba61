"""The stepped kernel client: a message whose wake-up was lost is read within one step, not at the timeout."""

from __future__ import annotations

import asyncio
import time
from queue import Empty

import pytest
import zmq
from jupyter_client.channels import AsyncZMQSocketChannel

from opportunity_research.batch import kernel_client


class _LostWakeUp:
    """A socket as pyzmq's asyncio poll sees it after a lost edge: ``poll`` sleeps until its timeout (forever
    without one) and only then, checking the socket once more, finds what is there."""

    def __init__(self, waiting: bool):
        self.waiting, self.polls = waiting, []

    async def poll(self, timeout=None):
        self.polls.append(timeout)
        if timeout is None:
            await asyncio.Event().wait()
        await asyncio.sleep(timeout / 1000)
        return zmq.POLLIN if self.waiting else 0


def _channel(cls, socket):
    channel = object.__new__(cls)  # no real socket: the channel's own waiting is under test
    channel.socket = socket

    async def recv():
        return {"msg_type": "execute_reply"}

    channel._recv = recv
    return channel


def _get(channel, timeout, limit=5.0):
    async def go():
        return await asyncio.wait_for(channel.get_msg(timeout=timeout), limit)

    return asyncio.run(go())


def test_a_message_whose_wake_up_was_lost_is_read_within_a_step(monkeypatch):
    monkeypatch.setattr(kernel_client, "STEP", 0.05)
    # control: jupyter_client's channel sleeps through it (here until the test's own limit of a second)
    with pytest.raises(TimeoutError):
        _get(_channel(AsyncZMQSocketChannel, _LostWakeUp(waiting=True)), None, limit=1.0)
    for timeout in (None, 600):
        socket = _LostWakeUp(waiting=True)
        start = time.monotonic()
        assert _get(_channel(kernel_client._SteppedChannel, socket), timeout) == {"msg_type": "execute_reply"}
        assert time.monotonic() - start < 1 and socket.polls == [50]


def test_no_message_is_still_empty_at_the_timeout_and_not_before(monkeypatch):
    monkeypatch.setattr(kernel_client, "STEP", 0.05)
    socket = _LostWakeUp(waiting=False)
    start = time.monotonic()
    with pytest.raises(Empty):
        _get(_channel(kernel_client._SteppedChannel, socket), 0.2)
    assert 0.2 <= time.monotonic() - start < 2
    assert len(socket.polls) >= 4 and all(p <= 50 for p in socket.polls)
    socket = _LostWakeUp(waiting=False)
    with pytest.raises(Empty):
        _get(_channel(kernel_client._SteppedChannel, socket), 0)
    assert socket.polls == [0]
