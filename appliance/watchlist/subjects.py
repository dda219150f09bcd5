"""The control room's subjects file (CSV or JSON): one subject per row, with its enrolment photo(s)."""

from __future__ import annotations

import contextlib
import csv
import json
from pathlib import Path

from appliance.errors import WatchlistError
from appliance.watchlist.records import FIELDS
from appliance.watchlist.schemas import first_error
from appliance.watchlist.timeutil import normalise_time

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")


def _clean(row: dict) -> dict:
    """Strip strings, turn blanks into None, normalise times to UTC ISO 8601 (dates: end of that day)."""
    out: dict = {}
    for k, v in row.items():
        if k is None:
            continue
        k = k.strip()
        if isinstance(v, str):
            v = v.strip() or None
        out[k] = v
    for f in ("expires_at", "review_due"):
        if out.get(f):
            with contextlib.suppress(ValueError):  # left as is: validation reports the field
                out[f] = normalise_time(out[f], end_of_day=True)
    if out.get("image_date"):
        out["image_date"] = str(out["image_date"])
    return out


def read_subjects(path: Path) -> list[dict]:
    """Rows with the metadata fields plus `photos` (a list of names, possibly empty). Raises WatchlistError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise WatchlistError(f"subjects file {path} not found") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise WatchlistError(f"subjects file {path} is not valid JSON: {e}") from None
        problem = first_error("watchlist_subjects", data)
        if problem:
            raise WatchlistError(f"subjects file {path}: {problem}")
        rows = data["subjects"] if isinstance(data, dict) else data
    else:
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or "id" not in [f.strip() for f in reader.fieldnames]:
            raise WatchlistError(f"subjects file {path} has no header row with an 'id' column")
        unknown = {f.strip() for f in reader.fieldnames} - set(FIELDS) - {"photos", "photo"}
        if unknown:
            raise WatchlistError(f"subjects file {path}: unknown column(s) {', '.join(sorted(unknown))}")
        rows = list(reader)
    subjects, seen = [], set()
    for i, raw in enumerate(rows, start=1):
        row = _clean(dict(raw))
        photos = row.pop("photos", None) or row.pop("photo", None)
        row.pop("photo", None)
        if isinstance(photos, str):
            photos = [p.strip() for p in photos.split(";") if p.strip()]
        sid = row.get("id")
        if not sid:
            raise WatchlistError(f"subjects file {path}: row {i} has no id")
        if sid in seen:
            raise WatchlistError(f"subjects file {path}: subject id {sid} appears twice")
        seen.add(sid)
        meta = {k: row.get(k) for k in FIELDS if row.get(k) is not None}
        subjects.append({"meta": meta, "photos": list(photos or [])})
    return subjects


def find_photos(photos_dir: Path, subject_id: str, names: list[str]) -> list[Path]:
    """The subject's photo files: the named ones, else <dir>/<id>.jpg|.jpeg|.png, else everything in <dir>/<id>/."""
    photos_dir = Path(photos_dir)
    if names:
        return [photos_dir / n for n in names]
    for suffix in PHOTO_SUFFIXES:
        p = photos_dir / f"{subject_id}{suffix}"
        if p.exists():
            return [p]
    folder = photos_dir / subject_id
    if folder.is_dir():
        return sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
    return []
