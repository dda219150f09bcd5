"""Bundle chunks on the wire and the device's spool: out of order, duplicates, restarts, corruption, staleness."""

from __future__ import annotations

import json
import os
import time

import pytest

from appliance.sync.chunks import HEADER_BYTES, Chunk, ChunkError, Spool, split


@pytest.fixture
def bundle(tmp_path):
    p = tmp_path / "b.lfrwl"
    p.write_bytes(os.urandom(10_000))
    return p


def test_split_encode_decode(bundle):
    tid = os.urandom(16)
    count, chunks = split(bundle, 3000, tid)
    chunks = list(chunks)
    assert count == 4 == len(chunks) and [c.index for c in chunks] == [0, 1, 2, 3]
    assert b"".join(c.data for c in chunks) == bundle.read_bytes()
    wire = chunks[2].encode()
    assert len(wire) == HEADER_BYTES + 3000
    back = Chunk.decode(wire)
    assert back == chunks[2]


@pytest.mark.parametrize("payload", [b"", b"LFRC", b"XXXX" + bytes(100), b'{"schema": "x"}'])
def test_decode_rejects_non_chunks(payload):
    with pytest.raises(ChunkError):
        Chunk.decode(payload)


def test_decode_rejects_index_out_of_range(bundle):
    c = next(split(bundle, 3000, os.urandom(16))[1])
    bad = Chunk(c.transfer_id, 4, 4, c.total, c.sha256, c.data)
    with pytest.raises(ChunkError):
        Chunk.decode(bad.encode())


def test_spool_out_of_order_duplicates_and_restart(tmp_path, bundle):
    tid = os.urandom(16)
    _, chunks = split(bundle, 1000, tid)
    chunks = list(chunks)
    spool = Spool(tmp_path / "spool")
    for c in [chunks[5], chunks[0], chunks[5], chunks[9]]:
        assert spool.add(c) is False
    assert spool.received(tid) == 3
    spool = Spool(tmp_path / "spool")  # the device restarts: what was written is still there
    assert spool.received(tid) == 3 and spool.transfers() == [tid]
    done = [spool.add(c) for c in chunks]
    assert done[-1] is True and spool.is_complete(tid)
    path, intact = spool.assemble(tid)
    assert intact and path.read_bytes() == bundle.read_bytes()
    spool.remove(tid)
    assert spool.transfers() == [] and not path.exists()


def test_spool_detects_corruption_and_contradictions(tmp_path, bundle):
    tid = os.urandom(16)
    chunks = list(split(bundle, 5000, tid)[1])
    spool = Spool(tmp_path)
    spool.add(chunks[0])
    bad = Chunk(tid, 1, 2, chunks[1].total, chunks[1].sha256, b"x" * len(chunks[1].data))
    assert spool.add(bad) is True
    _, intact = spool.assemble(tid)
    assert not intact
    with pytest.raises(ChunkError, match="disagrees"):
        spool.add(Chunk(tid, 1, 3, 1, chunks[0].sha256, b""))


def test_stale_incomplete_transfers_dropped(tmp_path, bundle):
    spool = Spool(tmp_path)
    old, new = os.urandom(16), os.urandom(16)
    spool.add(next(split(bundle, 1000, old)[1]))
    spool.add(next(split(bundle, 1000, new)[1]))
    meta = tmp_path / old.hex() / "transfer.json"
    m = json.loads(meta.read_text())
    m["started"] = time.time() - 10 * 3600  # begun ten hours ago and never finished
    meta.write_text(json.dumps(m))
    assert spool.drop_stale(3600) == [old.hex()]
    assert spool.transfers() == [new]
