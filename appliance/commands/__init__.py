"""Signed commands from the control room (revoke watchlist, end or start a deployment)."""
