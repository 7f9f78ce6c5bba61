"""An asynchronous kernel client that does not sleep through a message already waiting on its socket.

jupyter_client's asynchronous channels wait for a message with ``zmq.asyncio``'s ``poll``, which wakes on the
socket's ``ZMQ_FD``. That file descriptor is edge-triggered: when its edge is consumed without the poller
noticing, a message can sit on the socket while the poll sleeps on. The poll then returns only at its timeout,
when pyzmq checks the socket once more (``zmq_poll`` with no wait) and finds the message (the same symptom as
zeromq/pyzmq#1558 and jupyter/nbclient#312). Measured here with nbclient on ``notebooks/explore.ipynb``: now and
then a cell whose kernel had long gone idle completed exactly at its timeout (60 s of 60 s; 5 of 90 runs on a
loaded machine), the message having been on the socket all along; with this client, none in 60 runs. A batch district would wait out the whole
cell timeout (30 minutes by default), and a wait without a timeout would never end.

:class:`SteppedKernelClient` waits in steps of at most :data:`STEP` seconds instead: each step ends, like any
timeout, with that check of the socket, so a lost wake-up costs at most one step. Its channels are otherwise
jupyter_client's own. :class:`SteppedKernelManager` hands out that client (for nbclient's
``kernel_manager_class``); the batch's warm kernels make theirs directly (:mod:`opportunity_research.batch.warm_kernel`).
"""

from __future__ import annotations

import time
from queue import Empty

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.manager import AsyncKernelManager
from traitlets import DottedObjectName, Type

__all__ = ["STEP", "SteppedKernelClient", "SteppedKernelManager"]

#: Longest single wait of a channel for a message, in seconds: the most a lost wake-up can delay it.
STEP = 1.0


class _SteppedChannel(AsyncZMQSocketChannel):
    """A channel whose :meth:`get_msg` polls its socket in steps of at most :data:`STEP` seconds."""

    async def get_msg(self, timeout: float | None = None) -> dict:
        """The next message; ``queue.Empty`` if none came within ``timeout`` seconds (None: wait for it)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = STEP if deadline is None else max(0.0, min(STEP, deadline - time.monotonic()))
            if await self.socket.poll(int(wait * 1000)):
                return await self._recv()
            if deadline is not None and time.monotonic() >= deadline:
                raise Empty


class SteppedKernelClient(AsyncKernelClient):
    """jupyter_client's asynchronous client, whose channels wait for a message in steps (see the module).

    Examples
    --------
    >>> from jupyter_client.manager import KernelManager
    >>> km = KernelManager(kernel_name="python3")
    >>> km.start_kernel()
    >>> kc = SteppedKernelClient(parent=km, session=km.session)  # alive = the manager's process, not heartbeats
    >>> kc.load_connection_info(km.get_connection_info())
    >>> kc.start_channels()
    >>> from jupyter_core.utils import run_sync
    >>> run_sync(kc.wait_for_ready)(timeout=60)  # iopub subscribed before the request (else its replies are lost)
    >>> reply = run_sync(kc.execute_interactive)("6 * 7", timeout=60, output_hook=lambda msg: None)
    >>> reply["content"]["status"], type(kc.shell_channel).__name__
    ('ok', '_SteppedChannel')
    >>> kc.stop_channels(); km.shutdown_kernel(now=True)
    """

    shell_channel_class = Type(_SteppedChannel)
    iopub_channel_class = Type(_SteppedChannel)
    stdin_channel_class = Type(_SteppedChannel)
    control_channel_class = Type(_SteppedChannel)


class SteppedKernelManager(AsyncKernelManager):
    """nbclient's kernel manager, handing out :class:`SteppedKernelClient` clients.

    Examples
    --------
    >>> import nbformat
    >>> from nbclient import NotebookClient
    >>> type(SteppedKernelManager(kernel_name="python3").client().shell_channel).__name__
    '_SteppedChannel'
    >>> nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
    >>> _ = NotebookClient(nb, timeout=60, kernel_name="python3", kernel_manager_class=SteppedKernelManager).execute()
    >>> nb.cells[0].outputs[0].text
    '42\\n'
    """

    client_class = DottedObjectName("opportunity_research.batch.kernel_client.SteppedKernelClient")
    # AsyncKernelManager sets its own factory: client_class alone is not read
    client_factory = Type(SteppedKernelClient)
