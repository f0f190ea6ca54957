"""The side-by-side benchmark suite of asyncpod (``python -m benchmarks``)."""
