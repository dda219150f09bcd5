"""From matched looks of a track to an alert for a person to review (never an action)."""
