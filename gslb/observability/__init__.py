"""Operating the server: logs, the query log, metrics, dnstap, fleet heartbeats."""

from gslb.observability.logs import setup_logging

__all__ = ["setup_logging"]
