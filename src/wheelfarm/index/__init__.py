"""The published index: the static tree (simple pages, project pages, JSON API) and its server."""
