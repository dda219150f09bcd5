"""Officer decisions on alerts: what is forwarded as confirmed (two-officer confirmation)."""
