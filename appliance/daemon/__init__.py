"""The daemon: wires capture, vision, matching, alerts, events, sync and console together. No logic of its own
beyond the order of things; each part lives in its own package."""
