"""Moved to appliance/timeutil.py (one helper for every timestamp); kept so the watchlist's imports read as before."""

from appliance.timeutil import iso, normalise_time, parse_time, utcnow

__all__ = ["iso", "normalise_time", "parse_time", "utcnow"]
