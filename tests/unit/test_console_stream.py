"""The bridge from the events store's writer threads to the pages' asyncio queues (server-sent events)."""

from __future__ import annotations

import asyncio
import json
import threading

from appliance.console.stream import CLOSE, QUEUE_MAX, Hub, sse


def parse(msg: str) -> tuple[str, dict]:
    lines = dict(line.split(": ", 1) for line in msg.strip().split("\n"))
    return lines["event"], json.loads(lines["data"])


def test_events_published_from_other_threads_reach_every_page_in_order():
    async def main():
        hub = Hub()
        pages = [hub.attach(), hub.attach()]
        writers = [threading.Thread(target=lambda: [hub.publish("alert", {"n": i}) for i in range(50)])]
        for w in writers:
            w.start()
        for w in writers:
            w.join()
        for page in pages:
            got = [parse(await asyncio.wait_for(page.queue.get(), 2)) for _ in range(50)]
            assert got == [("alert", {"n": i}) for i in range(50)]
        hub.detach(pages[0])
        hub.publish("decision", {"x": 1})
        assert parse(await asyncio.wait_for(pages[1].queue.get(), 2)) == ("decision", {"x": 1})
        await asyncio.sleep(0.05)
        assert pages[0].queue.empty() and hub.clients() == 1
        hub.close()
        assert await asyncio.wait_for(pages[1].queue.get(), 2) is CLOSE
        late = hub.attach()  # a page opening after close is ended at once
        assert await asyncio.wait_for(late.queue.get(), 2) is CLOSE

    asyncio.run(main())


def test_a_page_that_stops_reading_is_told_to_reload_not_buffered_forever():
    async def main():
        hub = Hub()
        page = hub.attach()
        for i in range(QUEUE_MAX + 10):
            hub.publish("alert", {"n": i})
        await asyncio.sleep(0.1)
        assert page.queue.qsize() <= 3
        first = await page.queue.get()
        assert parse(first)[0] == "reload"
        rest = []
        while not page.queue.empty():
            rest.append(page.queue.get_nowait())
        assert CLOSE in rest

    asyncio.run(main())


def test_sse_framing():
    assert sse("status", {"a": 1}) == 'event: status\ndata: {"a":1}\n\n'
    assert "\n" not in sse("alert", {"note": "two\nlines"}).split("data: ")[1].rstrip("\n")
