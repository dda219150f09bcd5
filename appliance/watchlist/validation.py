"""Checks on one entry, used twice: by the control room before signing, and by the van before applying."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from appliance.watchlist.records import REQUIRED_FIELDS, Entry
from appliance.watchlist.schemas import first_error
from appliance.watchlist.timeutil import parse_time

NORM_TOLERANCE = 1e-3
_JPEG_MAGIC = b"\xff\xd8\xff"


def metadata_problem(meta: dict) -> str | None:
    """Why this subject's metadata is unacceptable (the first reason), or None. Never names the person."""
    for f in REQUIRED_FIELDS:
        v = meta.get(f)
        if v is None or (isinstance(v, str) and not v.strip()):
            return f"missing {f}"
    return first_error("watchlist_entry", meta)


def entry_problem(entry: Entry, *, now: datetime, dim: int | None = None) -> str | None:
    """Why this entry must not go on a watchlist, or None. `dim` is the device's embedding size."""
    problem = metadata_problem(entry.meta)
    if problem:
        return problem
    if parse_time(entry.meta["expires_at"]) <= now:
        return f"expired at {entry.meta['expires_at']}"
    t = entry.templates
    if t.ndim != 2 or len(t) == 0:
        return "no template"
    if dim is not None and t.shape[1] != dim:
        return f"template dimension {t.shape[1]}, the model makes {dim}"
    if not np.isfinite(t).all():
        return "template has non-finite values"
    if np.abs(np.linalg.norm(t, axis=1) - 1.0).max() > NORM_TOLERANCE:
        return "template is not L2-normalised"
    if not entry.photo_jpeg.startswith(_JPEG_MAGIC):
        return "reference photo is not a JPEG"
    return None
