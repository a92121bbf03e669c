"""One benchmark suite: every figure measured side by side with what a user would run instead.

``python -m benchmarks.suite [--quick]`` (``make bench``) runs each area in turn (serving,
following, statistics, publishing, building, scale), prints one table and rewrites
BENCHMARKS.md. Figures pasted from different days told nobody anything (the same code measured
30,000 and 57,000 events/s on two machines of one kind), so each figure here is the median of
several runs taken in the same run as its comparison, interleaved round by round.
"""
