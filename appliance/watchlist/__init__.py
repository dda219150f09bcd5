"""The watchlist: subjects and their templates, built and signed in the control room, verified and
applied on the van in one transaction, kept encrypted at rest (see docs/watchlist.md, docs/bundle-format.md)."""
