"""The daemon's HTTP side: webhooks, the JSON API, the status page and /metrics."""
