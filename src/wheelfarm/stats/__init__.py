"""Download and search statistics: record hits, ingest access logs, count, show (docs/stats.md)."""
