"""`make bench`: what the hub costs, measured side by side with a pass-through baseline.

Run with `python -m bench` (or `python -m bench --quick` for a tiny, fast run). Everything is
served on loopback by real processes: `hub serve` with the demo data on SQLite and then on a
fresh PostgreSQL database, a baseline that does the same connector fetch without any of the
hub's checks, and a load generator in a process of its own. The results go to
`bench/results/latest.json` and a regenerated `docs/benchmarks.md`. Nothing here is asserted:
timings belong in the benchmark, not in tests.
"""
