"""The control-room side: receive, validate, de-duplicate and store what the vans publish."""
