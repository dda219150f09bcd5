"""`appliance identify`: a folder gallery, open-set answers, and nothing written that was not asked for."""

import os
import shutil
import subprocess
import sys

import pytest


@pytest.fixture
def gallery(tmp_path, lfw_dir):
    """Three LFW people enrolled from their first photo; their second photos are the probes."""
    people = ["Aaron_Sorkin", "Abdoulaye_Wade", "Adam_Sandler"]
    g = tmp_path / "gallery"
    for name in people:
        (g / name).mkdir(parents=True)
        shutil.copy(lfw_dir / name / f"{name}_0001.jpg", g / name)
    probes = [lfw_dir / name / f"{name}_0002.jpg" for name in people]
    return g, people, probes


def run(args, cwd, home):
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    if "APPLIANCE_SHARED" in os.environ:
        env["APPLIANCE_SHARED"] = os.environ["APPLIANCE_SHARED"]
    return subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True, text=True, cwd=cwd, env=env)


def test_enrolled_people_are_named_and_strangers_are_not(tmp_path, gallery, lfw_dir):
    g, people, probes = gallery
    stranger = lfw_dir / "Zinedine_Zidane" / "Zinedine_Zidane_0001.jpg"
    if not stranger.exists():
        stranger = sorted(lfw_dir.glob("Z*/*_0001.jpg"))[0]
    work = tmp_path / "cwd"
    work.mkdir()
    r = run(["identify", "--gallery", str(g), *map(str, probes), str(stranger)], cwd=work, home=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    for name, line in zip(people, lines[:3], strict=True):
        assert line.endswith(")") and f": {name} (score" in line, line
    assert "no match" in lines[3]
    # Nothing persists for a face that does not match: the CLI wrote no file anywhere under tmp.
    written = [p for p in tmp_path.rglob("*") if p.is_file() and "gallery" not in p.parts]
    assert written == [], written


def test_threshold_below_the_floor_is_refused(tmp_path, gallery):
    g, _, probes = gallery
    r = run(["identify", "--gallery", str(g), str(probes[0]), "--threshold", "0.21"], cwd=tmp_path, home=tmp_path)
    assert r.returncode == 2
    assert "below the floor" in r.stderr and "Traceback" not in r.stderr
