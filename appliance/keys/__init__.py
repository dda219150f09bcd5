"""Key pairs (Ed25519 signing, X25519 encryption) and the files that hold private keys (mode 0600)."""
