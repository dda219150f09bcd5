"""Private key files: created 0600 and never overwritten; refused when their mode lets others read them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from appliance.errors import KeyMaterialError


def write_private(path: Path, data: bytes) -> Path:
    """Write `data` to a new file readable by its owner only; an existing file is never replaced."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyMaterialError(f"{path} already exists; refusing to overwrite a key") from None
    try:
        os.fchmod(fd, 0o600)  # the umask could have narrowed it further, never widened; make it exact
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def write_public(path: Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        raise KeyMaterialError(f"{path} already exists; refusing to overwrite a key")
    path.write_bytes(data)
    path.chmod(0o644)
    return path


def check_private(path: Path) -> None:
    """Refuse a private key file that is missing or that group or others may read or write."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeyMaterialError(f"key file {path} not found") from None
    if not stat.S_ISREG(st.st_mode):
        raise KeyMaterialError(f"key file {path} is not a regular file")
    loose = st.st_mode & 0o077
    if loose:
        raise KeyMaterialError(
            f"key file {path} has mode {stat.S_IMODE(st.st_mode):04o}; it must be 0600 (run: chmod 600 {path})"
        )


def read_private(path: Path) -> bytes:
    check_private(path)
    return Path(path).read_bytes()


def shred(path: Path) -> bool:
    """Overwrite a key file with random bytes, flush, and unlink it. Returns False if it did not exist.

    On flash storage an overwrite is not a guarantee, which is why the key is small and the data is
    encrypted: losing the key is what makes the data unreadable.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    with open(path, "r+b", buffering=0) as f:
        f.write(os.urandom(max(size, 64)))
        os.fsync(f.fileno())
    path.unlink()
    return True
