"""Test helpers shipped with the package (a mock upstream provider), so tests and benchmarks share them."""
