"""An LFW-style dataset: `Name/Name_0001.jpg` folders plus `pairs.txt` (View-2 format)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from appliance.errors import ApplianceError


@dataclass(frozen=True)
class Pair:
    a: str  # image key "Name/Name_0001.jpg"
    b: str
    same: bool
    fold: int


@dataclass(frozen=True)
class Dataset:
    root: Path
    images: list[str]  # keys, sorted: "Name/Name_0001.jpg"
    identity: list[str]  # identity of each image, same order
    pairs: list[Pair]
    folds: int

    def path(self, key: str) -> Path:
        return self.root / key


def image_key(name: str, number: int) -> str:
    return f"{name}/{name}_{number:04d}.jpg"


def parse_pairs(path: Path) -> tuple[list[Pair], int]:
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    try:
        folds, per_fold = int(lines[0][0]), int(lines[0][1])
    except (IndexError, ValueError):
        raise ApplianceError(f"{path}: first line must be '<folds> <pairs per fold>'") from None
    pairs: list[Pair] = []
    body = lines[1:]
    if len(body) != folds * 2 * per_fold:
        raise ApplianceError(f"{path}: expected {folds * 2 * per_fold} pair lines, found {len(body)}")
    for i, parts in enumerate(body):
        fold = i // (2 * per_fold)
        if len(parts) == 3:
            pairs.append(Pair(image_key(parts[0], int(parts[1])), image_key(parts[0], int(parts[2])), True, fold))
        elif len(parts) == 4:
            pairs.append(Pair(image_key(parts[0], int(parts[1])), image_key(parts[2], int(parts[3])), False, fold))
        else:
            raise ApplianceError(f"{path}: line {i + 2} is neither a same nor a different pair")
    return pairs, folds


def load_dataset(root: Path) -> Dataset:
    if not root.is_dir():
        raise ApplianceError(f"dataset folder {root} not found")
    images = sorted(str(p.relative_to(root)) for p in root.glob("*/*.jpg"))
    if not images:
        raise ApplianceError(f"dataset folder {root} has no Name/*.jpg images")
    pairs_file = root / "pairs.txt"
    pairs, folds = parse_pairs(pairs_file) if pairs_file.is_file() else ([], 0)
    known = set(images)
    missing = [p for p in pairs for k in (p.a, p.b) if k not in known]
    if missing:
        raise ApplianceError(f"{pairs_file}: {len(missing)} pair images are missing, e.g. {missing[0].a}")
    return Dataset(root, images, [k.split("/")[0] for k in images], pairs, folds)
