"""Benchmarks: scripts, never timed tests. Run each from the repository root as `python -m benchmarks.<name>`."""
