"""Which SIMD level this CPU gives numpy and the interpreter's kernels: recorded beside a calibration and a
background set, because the same code on another level (AVX-512 against AVX2, NEON) rounds differently in the
last bits (docs/accuracy.md, "One threshold on every x86 CPU")."""

from __future__ import annotations

import platform

# the highest of each family that numpy reports, in order (numpy's own names)
_LEVELS = ("AVX512_SPR", "AVX512_ICL", "AVX512_CNL", "AVX512_CLX", "AVX512_SKX", "AVX512F", "AVX2", "AVX", "SSE42",
           "ASIMDHP", "ASIMDDP", "ASIMD", "NEON")
_EXTRAS = ("FMA3", "AVX512VNNI", "ASIMDFHM")


def cpu_simd() -> str:
    """e.g. "x86_64 AVX512_ICL FMA3 AVX512VNNI" or "x86_64 AVX2 FMA3"."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features  # numpy 2
    except ImportError:
        from numpy.core._multiarray_umath import __cpu_features__ as features  # numpy 1
    have = [f for f, on in features.items() if on]
    level = next((f for f in _LEVELS if f in have), "baseline")
    return " ".join([platform.machine(), level, *(f for f in _EXTRAS if f in have)])
