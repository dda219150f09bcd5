"""Server-sent events: the store's writer threads hand events to every open console page.

The events store calls its subscribers in the writer's thread (the daemon's alert path, the decision
request, the publisher). `Hub.publish` only schedules a put on each page's asyncio queue with
`loop.call_soon_threadsafe`, so a slow page never slows the hot path; a page that falls far behind is
told to reload instead of holding memory.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass

QUEUE_MAX = 256
CLOSE = object()  # the server is stopping: end the stream


def sse(event: str, data) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@dataclass(eq=False)
class Client:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue
    ended: bool = False

    def offer(self, msg) -> None:  # runs in the loop's thread
        if self.ended:
            return
        try:
            self.queue.put_nowait(msg)
        except asyncio.QueueFull:  # the page is not reading: drop its backlog, tell it to reload, end it
            while not self.queue.empty():
                self.queue.get_nowait()
            if msg is not CLOSE:
                self.queue.put_nowait(sse("reload", {"reason": "too many events at once"}))
            self.queue.put_nowait(CLOSE)
            self.ended = True


class Hub:
    def __init__(self) -> None:
        self._clients: set[Client] = set()
        self._lock = threading.Lock()
        self.closed = False

    def attach(self) -> Client:
        """Call from the event loop (inside the stream endpoint)."""
        c = Client(asyncio.get_running_loop(), asyncio.Queue(maxsize=QUEUE_MAX))
        with self._lock:
            self._clients.add(c)
            if self.closed:
                c.offer(CLOSE)
        return c

    def detach(self, c: Client) -> None:
        with self._lock:
            self._clients.discard(c)

    def clients(self) -> int:
        with self._lock:
            return len(self._clients)

    def publish(self, event: str, data) -> None:
        """Thread-safe: queue one SSE message for every open page."""
        self._send(sse(event, data))

    def _send(self, msg) -> None:
        with self._lock:
            clients = list(self._clients)
        for c in clients:
            try:
                c.loop.call_soon_threadsafe(c.offer, msg)
            except RuntimeError:  # that page's loop has closed
                self.detach(c)

    def close(self) -> None:
        with self._lock:
            self.closed = True
        self._send(CLOSE)
