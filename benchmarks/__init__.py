"""asv benchmarks of odebench: thin modules over the harness (see docs/benchmarking.md)."""
