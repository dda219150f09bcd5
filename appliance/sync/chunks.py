"""Bundle chunks on the wire, and the device's on-disk spool that reassembles them across restarts.

A chunk is one MQTT payload (binary, the one exception to JSON payloads):
    b"LFRC" | u8 format (1) | transfer id (16 bytes) | u32 index | u32 count | u64 total bytes
    | SHA-256 of the whole bundle (32 bytes) | data
Chunks may arrive twice (QoS 1) or after a restart; each is written to the spool before the broker gets
its PUBACK, so an acknowledged chunk is never lost, and a transfer completes once every index is on disk.
The SHA-256 guards the transport only; the bundle's own signature is what the device trusts.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"LFRC"
FORMAT = 1
_HEAD = struct.Struct(">4sB16sIIQ32s")
HEADER_BYTES = _HEAD.size


class ChunkError(ValueError):
    pass


@dataclass(frozen=True)
class Chunk:
    transfer_id: bytes
    index: int
    count: int
    total: int
    sha256: bytes
    data: bytes

    def encode(self) -> bytes:
        return _HEAD.pack(MAGIC, FORMAT, self.transfer_id, self.index, self.count, self.total, self.sha256) + self.data

    @classmethod
    def decode(cls, payload: bytes) -> Chunk:
        if len(payload) < HEADER_BYTES:
            raise ChunkError("chunk shorter than its header")
        magic, fmt, tid, index, count, total, sha = _HEAD.unpack_from(payload)
        if magic != MAGIC or fmt != FORMAT:
            raise ChunkError("not a bundle chunk (bad magic or format)")
        if count == 0 or index >= count:
            raise ChunkError(f"chunk index {index} of {count}")
        return cls(tid, index, count, total, sha, payload[HEADER_BYTES:])


def split(path: Path, chunk_bytes: int, transfer_id: bytes) -> tuple[int, Iterator[Chunk]]:
    """(count, chunks) for the bundle at `path`; chunks are read lazily, one at a time."""
    total = Path(path).stat().st_size
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    sha = h.digest()
    count = max(1, -(-total // chunk_bytes))

    def gen() -> Iterator[Chunk]:
        with open(path, "rb") as f:
            for i in range(count):
                yield Chunk(transfer_id, i, count, total, sha, f.read(chunk_bytes))

    return count, gen()


class Spool:
    """Chunks on disk under `root/<transfer id>/`, one file per index, written atomically."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._held: dict[bytes, int] = {}  # bytes of chunk data on disk per transfer (counted, never declared)
        self._dropped: set[bytes] = set()  # transfers dropped for lying about their size: later chunks too

    def _dir(self, tid: bytes) -> Path:
        return self.root / tid.hex()

    def add(self, chunk: Chunk) -> bool:
        """Store a chunk; True if the transfer is now complete. Raises ChunkError if it contradicts the others,
        or if the bytes held would exceed the transfer's declared size (then the whole transfer is dropped)."""
        if chunk.transfer_id in self._dropped:
            raise ChunkError(f"transfer {chunk.transfer_id.hex()} was dropped (larger than declared)")
        d = self._dir(chunk.transfer_id)
        meta_path = d / "transfer.json"
        meta = {"count": chunk.count, "total": chunk.total, "sha256": chunk.sha256.hex()}
        if meta_path.exists():
            known = json.loads(meta_path.read_text())
            if {k: known[k] for k in meta} != meta:
                raise ChunkError(f"chunk {chunk.index} disagrees with transfer {chunk.transfer_id.hex()}")
        if chunk.total > 0 and (not chunk.data or chunk.count > chunk.total):
            raise ChunkError(f"chunk {chunk.index} of {chunk.count}: {len(chunk.data)} bytes cannot make a "
                             f"{chunk.total}-byte bundle")
        if len(chunk.data) > chunk.total:
            raise ChunkError(f"chunk {chunk.index} holds {len(chunk.data)} bytes, more than the declared "
                             f"{chunk.total}")
        if not meta_path.exists():
            d.mkdir(parents=True, exist_ok=True)
            _atomic_write(meta_path, json.dumps({**meta, "started": time.time()}).encode())
        part = d / f"{chunk.index:08d}.chunk"
        if not part.exists():
            held = self.held(chunk.transfer_id)
            if held + len(chunk.data) > chunk.total:
                self.remove(chunk.transfer_id)
                self._dropped.add(chunk.transfer_id)
                raise ChunkError(f"transfer {chunk.transfer_id.hex()} dropped: its chunks hold more than the "
                                 f"declared {chunk.total} bytes")
            _atomic_write(part, chunk.data)
            self._held[chunk.transfer_id] = held + len(chunk.data)
        return self.is_complete(chunk.transfer_id)

    def held(self, tid: bytes) -> int:
        """Bytes of chunk data this transfer holds on disk (counted from the files once, then kept)."""
        if tid not in self._held:
            d = self._dir(tid)
            self._held[tid] = sum(p.stat().st_size for p in d.glob("*.chunk")) if d.exists() else 0
        return self._held[tid]

    def received(self, tid: bytes) -> int:
        d = self._dir(tid)
        return sum(1 for _ in d.glob("*.chunk")) if d.exists() else 0

    def meta(self, tid: bytes) -> dict | None:
        p = self._dir(tid) / "transfer.json"
        try:
            return json.loads(p.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def is_complete(self, tid: bytes) -> bool:
        meta = self.meta(tid)
        return meta is not None and self.received(tid) >= meta["count"]

    def transfers(self) -> list[bytes]:
        return sorted(bytes.fromhex(p.name) for p in self.root.iterdir() if p.is_dir() and len(p.name) == 32)

    def assemble(self, tid: bytes) -> tuple[Path, bool]:
        """Concatenate the chunks into `<root>/<tid>.bundle`; returns (path, sha256 and size as declared)."""
        meta = self.meta(tid)
        d = self._dir(tid)
        out = self.root / f"{tid.hex()}.bundle"
        h = hashlib.sha256()
        with open(out, "wb") as f:
            for i in range(meta["count"]):
                data = (d / f"{i:08d}.chunk").read_bytes()
                h.update(data)
                f.write(data)
            size = f.tell()
        return out, size == meta["total"] and h.hexdigest() == meta["sha256"]

    def remove(self, tid: bytes) -> None:
        self._held.pop(tid, None)
        shutil.rmtree(self._dir(tid), ignore_errors=True)
        (self.root / f"{tid.hex()}.bundle").unlink(missing_ok=True)

    def drop_stale(self, max_age_s: float) -> list[str]:
        """Forget incomplete transfers older than max_age_s (their sender gave up)."""
        dropped = []
        for tid in self.transfers():
            meta = self.meta(tid)
            started = meta.get("started", 0) if meta else 0
            if time.time() - started > max_age_s and not self.is_complete(tid):
                self.remove(tid)
                dropped.append(tid.hex())
        return dropped


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
