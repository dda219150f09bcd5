"""The thin command-line layer: each module registers one command and calls into the package."""
