"""`make bench`: speed and memory figures (1:N search per back-end, vision stages, peak memory).

Run with `python -m appliance.bench --out DIR [--quick]`; writes DIR/bench.json and DIR/bench.md.
These are benchmark figures, not tests: nothing here asserts a speed.
"""
