"""`appliance watchlist build|receive|status|erase` and `keys generate` on real photos and real SQLCipher:
refused photos with their reasons, required metadata, status --json, wrong/missing key lines, crypto-erase."""

from __future__ import annotations

import json
import shutil
import sqlite3

import cv2
import numpy as np
import pytest

from appliance.cli.main import main
from appliance.watchlist.schemas import first_error

POSE = "Adolfo_Rodriguez_Saa/Adolfo_Rodriguez_Saa_0002.jpg"  # head turned: refused for pose by the van's gate


@pytest.fixture
def control_room(tmp_path, lfw_dir, capsys):
    """Keys, a photo folder with good and bad photos, and a subjects CSV naming them."""
    keys = tmp_path / "keys"
    assert main(["keys", "generate", "control-room", "--out", str(keys)]) == 0
    assert main(["keys", "generate", "device", "--out", str(keys), "--name", "van-01"]) == 0
    photos = tmp_path / "photos"
    photos.mkdir()
    face = cv2.imread(str(lfw_dir / "Adam_Sandler" / "Adam_Sandler_0001.jpg"))
    other = cv2.imread(str(sorted((lfw_dir / "Adrien_Brody").glob("*.jpg"))[0]))
    shutil.copy(sorted((lfw_dir / "Aaron_Peirsol").glob("*.jpg"))[0], photos / "good1.jpg")
    shutil.copy(sorted((lfw_dir / "Abdullah_Gul").glob("*.jpg"))[0], photos / "good2.jpg")
    gradient = np.tile(np.linspace(40, 220, 200, dtype=np.uint8)[:, None, None], (1, 200, 3))  # a wall, no face
    cv2.imwrite(str(photos / "noface.jpg"), gradient)
    cv2.imwrite(str(photos / "two.jpg"), np.hstack([face, other]))
    cv2.imwrite(str(photos / "small.jpg"), cv2.resize(face, (40, 40)))
    cv2.imwrite(str(photos / "blurred.jpg"), cv2.GaussianBlur(face, (0, 0), 4))
    shutil.copy(lfw_dir / POSE, photos / "pose.jpg")
    (photos / "notanimage.jpg").write_bytes(b"hello")
    rows = [
        ("S-1", "good1.jpg", "warrant 1"),
        ("S-2", "good2.jpg", "warrant 2"),
        ("S-3", "noface.jpg", "w"),
        ("S-4", "two.jpg", "w"),
        ("S-5", "small.jpg", "w"),
        ("S-6", "blurred.jpg", "w"),
        ("S-7", "pose.jpg", "w"),
        ("S-8", "good1.jpg", ""),  # no legal basis
        ("S-9", "notanimage.jpg", "w"),
    ]
    csv = tmp_path / "subjects.csv"
    csv.write_text("id,display_name,category,legal_basis,image_source,expires_at,photos\n" + "".join(
        f"{sid},Person {sid},wanted,{basis},custody record,2099-12-31,{photo}\n" for sid, photo, basis in rows))
    capsys.readouterr()
    return type("CR", (), dict(keys=keys, photos=photos, csv=csv, tmp=tmp_path))


def build_args(cr, out, *extra):
    return ["watchlist", "build", "--subjects", str(cr.csv), "--photos", str(cr.photos), "--out", str(out),
            "--watchlist-id", "wl-cli", "--version", "1", "--signing-key", str(cr.keys / "control-room.ed25519.key"),
            "--recipient", f"van-01={cr.keys / 'van-01.x25519.pub'}", *extra]


def test_build_refuses_bad_photos_and_missing_metadata_with_reasons(control_room, capsys):
    cr = control_room
    out = cr.tmp / "wl.lfrwl"
    assert main(build_args(cr, out)) == 2
    err = capsys.readouterr().err
    assert not out.exists()
    expected = {"S-3": "no face", "S-4": "several faces", "S-5": "face too small", "S-6": "too blurred",
                "S-7": "head turned or tilted", "S-8": "missing legal_basis", "S-9": "not a readable image"}
    for sid, reason in expected.items():
        assert any(line.startswith(f"refused: {sid}") and reason in line for line in err.splitlines()), (sid, err)
    assert "refused: S-1" not in err and "refused: S-2" not in err
    assert err.strip().splitlines()[-1].startswith("appliance watchlist: error: 7 subject(s) or photo(s) refused")

    assert main([*build_args(cr, out, "--allow-refusals"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["subjects"] == 2 and report["kind"] == "full" and len(report["refused"]) == 7
    assert out.exists() and (cr.tmp / "wl.lfrwl.state.json").exists()


@pytest.fixture
def van(tmp_path, control_room, capsys):
    """A device config whose key files come from the control room fixture, and a built bundle."""
    cr = control_room
    data = tmp_path / "van"
    keys = data / "keys"
    keys.mkdir(parents=True)
    shutil.copy(cr.keys / "control-room.ed25519.pub", keys / "control-room.ed25519.pub")
    shutil.copy(cr.keys / "van-01.x25519.key", keys / "device.x25519.key")
    cfg = tmp_path / "van.toml"
    cfg.write_text(f'[device]\nid = "van-01"\ndata_dir = "{data}"\n')
    bundle = cr.tmp / "wl.lfrwl"
    assert main(build_args(cr, bundle, "--allow-refusals")) == 0
    capsys.readouterr()
    return type("Van", (), dict(cfg=cfg, data=data, bundle=bundle, keys=keys))


def test_receive_status_and_erase(van, capsys):
    assert main(["watchlist", "receive", "--config", str(van.cfg), "--file", str(van.bundle)]) == 0
    ack = json.loads(capsys.readouterr().out)
    assert first_error("watchlist_ack", ack) is None and ack["status"] == "applied"

    assert main(["watchlist", "status", "--config", str(van.cfg), "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert first_error("watchlist_status", st) is None
    assert st["watchlist_id"] == "wl-cli" and st["version"] == 1 and st["subjects"] == 2 and not st["expired"]
    assert st["watchlist_sha256"] == ack["watchlist_sha256"] and st["last_refusal"] is None

    # the same bundle again is a replay: refused, recorded, and shown by status
    assert main(["watchlist", "receive", "--config", str(van.cfg), "--file", str(van.bundle)]) == 1
    assert json.loads(capsys.readouterr().out)["reason"] == "replay"
    assert main(["watchlist", "status", "--config", str(van.cfg)]) == 0
    text = capsys.readouterr().out
    assert "watchlist wl-cli v1 (active)" in text and "last refusal" in text and "replay" in text

    # the database file is unreadable without the key
    db = van.data / "watchlist.db"
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(db).execute("SELECT * FROM subjects").fetchall()

    # crypto-erase: needs --yes; then key and files are gone, and status says so in one line
    assert main(["watchlist", "erase", "--config", str(van.cfg)]) == 2
    assert db.exists()
    capsys.readouterr()
    assert main(["watchlist", "erase", "--config", str(van.cfg), "--yes"]) == 0
    out = capsys.readouterr().out
    assert "destroyed" in out and not db.exists() and not (van.keys / "watchlist.key").exists()
    assert not any(van.data.glob("watchlist.db*"))
    assert main(["watchlist", "status", "--config", str(van.cfg)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no database" in err


def test_wrong_or_loose_key_gives_one_clear_line(van, capsys):
    assert main(["watchlist", "receive", "--config", str(van.cfg), "--file", str(van.bundle)]) == 0
    key = van.keys / "watchlist.key"
    key.chmod(0o644)
    capsys.readouterr()
    assert main(["watchlist", "status", "--config", str(van.cfg)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "must be 0600" in err and "Traceback" not in err
    key.chmod(0o600)
    key.write_text("ab" * 32 + "\n")
    assert main(["watchlist", "status", "--config", str(van.cfg)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "wrong key" in err and "file is not a database" not in err
    key.unlink()
    assert main(["watchlist", "status", "--config", str(van.cfg)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "key is missing" in err


def test_inspect(van, control_room, capsys):
    assert main(["watchlist", "inspect", str(van.bundle)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["watchlist_id"] == "wl-cli" and info["recipients"] == ["van-01"]
    assert info["signature_verified"] is False and info["entry_count"] == 2
    pub = control_room.keys / "control-room.ed25519.pub"
    assert main(["watchlist", "inspect", str(van.bundle), "--verify-key", str(pub)]) == 0
    assert json.loads(capsys.readouterr().out)["signature_verified"] is True
    bad = van.bundle.with_name("bad.lfrwl")
    data = bytearray(van.bundle.read_bytes())
    data[-5] ^= 1
    bad.write_bytes(bytes(data))
    assert main(["watchlist", "inspect", str(bad), "--verify-key", str(pub)]) == 2
    assert "tampered" in capsys.readouterr().err
