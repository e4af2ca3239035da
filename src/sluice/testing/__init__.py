"""Test helpers shipped with the package (a mock upstream provider), so tests and benchmarks share them.

The mock needs aiohttp, which only the `test` extra installs: the server itself never imports it.
"""
