"""gslb: an authoritative DNS server with global server load balancing."""

__version__ = "0.1.0"
