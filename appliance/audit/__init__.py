"""Hash-chained, Ed25519-signed audit log in the events database (docs/audit.md)."""
