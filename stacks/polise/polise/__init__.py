"""Polise: the office's portal, fed by swarmops' read API (catalog, news, docs, contributions)."""
