"""Atomic gallery swap: readers hammering identify() while another thread swaps galleries always get an
answer from one whole gallery (its version, its subjects, its scores), never a mix or an error."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from appliance.matching import Gallery, MatchService, l2_normalise

N_VERSIONS = 8
ROWS = 2000


def versioned_galleries(probe: np.ndarray) -> tuple[list[Gallery], dict[int, tuple[str, float]]]:
    """Each version has its own subjects; the probe's best subject and score differ per version."""
    rng = np.random.default_rng(0)
    galleries, expected = [], {}
    for v in range(N_VERSIONS):
        emb = l2_normalise(rng.standard_normal((ROWS, probe.size), dtype=np.float32))
        target = int(rng.integers(ROWS))
        cos = 0.5 + 0.05 * v
        r = emb[target] - (emb[target] @ probe) * probe
        emb[target] = cos * probe + np.sqrt(1 - cos**2) * r / np.linalg.norm(r)
        ids = [f"v{v}-s{i}" for i in range(ROWS)]
        galleries.append(Gallery(ids, emb, watchlist_id="wl", version=v, hash=f"h{v}"))
        expected[v] = (ids[target], cos)
    return galleries, expected


@pytest.mark.parametrize("backend", ["numpy", "usearch-hnsw"])
def test_readers_never_see_a_half_swapped_gallery(backend):
    probe = l2_normalise(np.random.default_rng(1).standard_normal(128, dtype=np.float32))
    galleries, expected = versioned_galleries(probe)
    svc = MatchService(threshold=0.3, backend=backend, top_k=3, gallery=galleries[0])
    stop = threading.Event()
    seen: list[tuple] = []
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                m = svc.identify(probe)
                seen.append((m.watchlist_version, m.watchlist_hash, m.subject_id, m.score,
                             tuple(c.subject_id for c in m.candidates)))
        except BaseException as e:  # any error at all fails the test
            errors.append(e)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in readers:
        t.start()
    for g in galleries[1:] * 2:  # swap through every version, twice
        svc.swap(g)
        # Let the readers answer a few times from this gallery before the next swap.
        deadline, before = time.monotonic() + 5, len(seen)
        while len(seen) < before + 3 and time.monotonic() < deadline:
            time.sleep(0.001)
    stop.set()
    for t in readers:
        t.join()

    assert not errors
    assert len({s[0] for s in seen}) == N_VERSIONS  # the readers lived through every swap
    for version, h, subject, score, candidates in seen:
        assert h == f"h{version}"
        want_subject, want_score = expected[version]
        assert subject == want_subject
        assert score == pytest.approx(want_score, abs=1e-4)
        assert all(c.startswith(f"v{version}-") for c in candidates)
