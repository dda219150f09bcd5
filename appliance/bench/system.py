"""Machine description and memory probes for the benchmark report."""

from __future__ import annotations

import os
import platform
import resource
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ["numpy", "ai-edge-litert", "tflite-runtime", "opencv-python-headless", "usearch", "faiss-cpu"]


def cpu_model() -> str:
    try:
        info = dict(
            (k.strip().lower(), v.strip())
            for k, _, v in (line.partition(":") for line in Path("/proc/cpuinfo").read_text().splitlines())
        )
        for key in ("model name", "hardware", "model"):  # x86, then Arm boards (the Pi reports "Model")
            if info.get(key):
                return info[key]
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "packages": versions,
        "memory_total_mb": total_memory_mb(),
        # The machine may be shared: a load well above the core count means the figures are pessimistic.
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def total_memory_mb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


def current_rss_mb() -> float | None:
    """Resident memory now (Linux /proc); None where unavailable."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return round(pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024), 1)


class Section:
    """Wall time, this process's CPU time and the peak-memory rise of one benchmark section."""

    def __enter__(self) -> Section:
        self._wall, self._cpu, self._peak = time.perf_counter(), time.process_time(), peak_rss_mb()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self._wall
        self.cpu_s = time.process_time() - self._cpu
        self.peak_delta_mb = peak_rss_mb() - self._peak

    def to_json(self) -> dict[str, Any]:
        return {
            "wall_s": round(self.wall_s, 1),
            "cpu_s": round(self.cpu_s, 1),
            # CPU seconds per wall second: near the core count when the machine was ours alone.
            "cores_used": round(self.cpu_s / self.wall_s, 2) if self.wall_s else None,
            "peak_rss_mb": peak_rss_mb(),
            "peak_rss_delta_mb": round(self.peak_delta_mb, 1),
            "load_average_at_end": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        }
