"""Errors of the matching layer, each with one line a person can act on."""

from __future__ import annotations

from appliance.errors import ApplianceError


class GalleryError(ApplianceError):
    """A gallery (watchlist templates) is malformed: wrong shape, not finite, or not L2-normalised."""


class BackendUnavailable(ApplianceError):
    """An optional search back-end was chosen but its package is not installed."""
