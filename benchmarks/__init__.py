"""colorizer's benchmarks: one function per benchmark, registered by name (``benchmarks.harness``).

Run one from the repository root:  python -m benchmarks NAME [options]   (``--list``: the names)

It prints its table and appends its rows to ``benchmarks/results.jsonl``; ``RESULTS.md`` keeps
the tables with what they mean.
"""
