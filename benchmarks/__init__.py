"""The measurements the README and BENCHMARKS.md quote: one script each, and the suite.

A package so that the suite (``python -m benchmarks.suite``) can import the scripts' helpers.
"""
