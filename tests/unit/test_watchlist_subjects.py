"""The control room's subjects file: CSV and JSON, required metadata, dates, photos."""

from __future__ import annotations

import json

import pytest

from appliance.errors import WatchlistError
from appliance.watchlist.subjects import find_photos, read_subjects
from appliance.watchlist.validation import metadata_problem

HEADER = "id,display_name,category,legal_basis,image_source,image_date,added_by,review_due,expires_at,notes,photos\n"


def test_csv(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text(HEADER + "S-1, Ann ,wanted,PACE s.24,custody,2024-01-02,sgt x,2026-06-01,2030-01-01,,a.jpg;b.jpg\n")
    (s,) = read_subjects(p)
    assert s["photos"] == ["a.jpg", "b.jpg"]
    assert s["meta"]["display_name"] == "Ann"  # stripped
    assert s["meta"]["expires_at"] == "2030-01-01T23:59:59Z"  # a bare date: end of that day, UTC
    assert s["meta"]["review_due"] == "2026-06-01T23:59:59Z"
    assert "notes" not in s["meta"]  # blank -> absent
    assert metadata_problem(s["meta"]) is None


@pytest.mark.parametrize("field", ["category", "legal_basis", "image_source", "expires_at"])
def test_required_fields_enforced(tmp_path, field):
    row = {"id": "S-1", "display_name": "A", "category": "wanted", "legal_basis": "b", "image_source": "c",
           "expires_at": "2030-01-01"}
    row[field] = ""
    p = tmp_path / "s.csv"
    p.write_text(",".join(row) + "\n" + ",".join(row.values()) + "\n")
    (s,) = read_subjects(p)
    assert metadata_problem(s["meta"]) == f"missing {field}"


def test_bad_expiry_reported_by_validation(tmp_path):
    p = tmp_path / "s.json"
    p.write_text(json.dumps([{"id": "S-1", "display_name": "A", "category": "w", "legal_basis": "b",
                              "image_source": "c", "expires_at": "soon"}]))
    (s,) = read_subjects(p)
    assert "expires_at" in metadata_problem(s["meta"])


def test_json_forms(tmp_path):
    subj = {"id": "S-1", "display_name": "A", "category": "w", "legal_basis": "b", "image_source": "c",
            "expires_at": "2030-01-01T00:00:00Z", "photos": "x.jpg"}
    for data in ([subj], {"subjects": [subj]}):
        p = tmp_path / "s.json"
        p.write_text(json.dumps(data))
        (s,) = read_subjects(p)
        assert s["photos"] == ["x.jpg"] and s["meta"]["expires_at"] == "2030-01-01T00:00:00Z"


def test_json_missing_required_refused_at_read(tmp_path):
    p = tmp_path / "s.json"
    p.write_text(json.dumps([{"id": "S-1", "display_name": "A"}]))
    with pytest.raises(WatchlistError, match="missing"):
        read_subjects(p)


@pytest.mark.parametrize(
    ("content", "match"),
    [("name,x\n", "no header row with an 'id'"), (HEADER.replace("notes", "colour"), "unknown column"),
     (HEADER + "S-1,A,w,b,c,,,,2030-01-01,,\nS-1,B,w,b,c,,,,2030-01-01,,\n", "appears twice"),
     (HEADER + ",A,w,b,c,,,,2030-01-01,,\n", "has no id")],
)
def test_malformed_files(tmp_path, content, match):
    p = tmp_path / "s.csv"
    p.write_text(content)
    with pytest.raises(WatchlistError, match=match):
        read_subjects(p)


def test_missing_file_and_bad_json(tmp_path):
    with pytest.raises(WatchlistError, match="not found"):
        read_subjects(tmp_path / "nope.csv")
    (tmp_path / "b.json").write_text("{")
    with pytest.raises(WatchlistError, match="not valid JSON"):
        read_subjects(tmp_path / "b.json")


def test_find_photos(tmp_path):
    (tmp_path / "S-1.jpg").write_bytes(b"x")
    (tmp_path / "S-2").mkdir()
    for n in ("b.png", "a.jpg", "notes.txt"):
        (tmp_path / "S-2" / n).write_bytes(b"x")
    assert find_photos(tmp_path, "S-1", []) == [tmp_path / "S-1.jpg"]
    assert [p.name for p in find_photos(tmp_path, "S-2", [])] == ["a.jpg", "b.png"]
    assert find_photos(tmp_path, "S-3", []) == []
    assert find_photos(tmp_path, "S-3", ["x.jpg"]) == [tmp_path / "x.jpg"]
