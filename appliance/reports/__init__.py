"""The transparency report of a deployment: counts only, no biometric data, no names."""
