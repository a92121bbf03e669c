"""The build farm: targets, the queue, builders, intake."""
