"""Tasks for logs: rsyslog collector and TLS forwarding."""
