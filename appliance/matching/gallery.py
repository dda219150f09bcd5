"""The in-memory gallery: watchlist templates as an (N, D) matrix of L2-normalised float32 rows.

A subject may have several templates (rows). Matching reports subjects, scored by their best row.
A Gallery is immutable once built: the matcher and every reader share it without copying or locking.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from appliance.matching.errors import GalleryError

# float32 rounding of a normalised 128-d vector stays well inside this; a raw model output does not.
NORM_TOLERANCE = 1e-3


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, as float32 (a zero row is left at zero and caught by validation)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


@dataclass(frozen=True, eq=False)
class Gallery:
    """Templates and the subject each belongs to, plus the watchlist identity they came from.

    subject_ids has one entry per row of embeddings; repeats mean several templates of one subject.
    """

    subject_ids: Sequence[str]
    embeddings: np.ndarray
    metadata: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    watchlist_id: str | None = None
    version: int | None = None
    hash: str | None = None
    # Derived on construction:
    subjects: tuple[str, ...] = field(init=False)  # unique subject ids, first-seen order
    row_subject: np.ndarray = field(init=False, repr=False)  # (N,) int64: row -> index into subjects
    max_templates: int = field(init=False)

    def __post_init__(self) -> None:
        ids = tuple(self.subject_ids)
        emb = np.asarray(self.embeddings)
        if emb.ndim != 2:
            raise GalleryError(f"gallery embeddings must be a 2-D (N, D) array, got shape {emb.shape}")
        if emb.shape[0] != len(ids):
            raise GalleryError(f"gallery has {len(ids)} subject ids but {emb.shape[0]} embedding rows")
        if emb.shape[1] == 0:
            raise GalleryError("gallery embeddings have dimension 0")
        if not all(isinstance(s, str) and s for s in ids):
            raise GalleryError("every gallery subject id must be a non-empty string")
        emb = np.ascontiguousarray(emb, dtype=np.float32)
        if not np.isfinite(emb).all():
            bad = int(np.flatnonzero(~np.isfinite(emb).all(axis=1))[0])
            raise GalleryError(f"gallery row {bad} (subject {ids[bad]!r}) has a non-finite value")
        if len(ids):
            norms = np.linalg.norm(emb, axis=1)
            off = np.abs(norms - 1.0) > NORM_TOLERANCE
            if off.any():
                bad = int(np.flatnonzero(off)[0])
                raise GalleryError(
                    f"gallery row {bad} (subject {ids[bad]!r}) is not L2-normalised (norm {norms[bad]:.4f})"
                )
        emb.setflags(write=False)  # shared by concurrent readers: nobody may change it in place

        index: dict[str, int] = {}
        row_subject = np.fromiter((index.setdefault(s, len(index)) for s in ids), dtype=np.int64, count=len(ids))
        row_subject.setflags(write=False)
        unknown = set(self.metadata) - index.keys()
        if unknown:
            raise GalleryError(f"gallery metadata names {len(unknown)} subject(s) with no template")

        set_ = object.__setattr__
        set_(self, "subject_ids", ids)
        set_(self, "embeddings", emb)
        set_(self, "metadata", MappingProxyType({k: MappingProxyType(dict(v)) for k, v in self.metadata.items()}))
        set_(self, "subjects", tuple(index))
        set_(self, "row_subject", row_subject)
        set_(self, "max_templates", int(np.bincount(row_subject).max()) if len(ids) else 0)

    @classmethod
    def empty(cls, dim: int = 128, **watchlist: Any) -> Gallery:
        return cls((), np.zeros((0, dim), np.float32), **watchlist)

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    @property
    def n_templates(self) -> int:
        return int(self.embeddings.shape[0])

    @property
    def n_subjects(self) -> int:
        return len(self.subjects)

    def __len__(self) -> int:
        return self.n_subjects

    def __repr__(self) -> str:  # never print templates
        return (
            f"Gallery(subjects={self.n_subjects}, templates={self.n_templates}, dim={self.dim}, "
            f"watchlist_id={self.watchlist_id!r}, version={self.version!r})"
        )
