"""Benchmarks that print numbers (speed, memory, quality, steadiness): run each as `python -m bench.NAME --help`.

Their results, with the commands that made them, are in bench/RESULTS.md.
"""
