"""gslb: an authoritative DNS server with global server load balancing.

The pure core (dns/, steering/, snapshot.py), the layers around it (load/: files to
data; config/: the configuration of record; health/, state/: live state;
observability/), the processes and sockets of `gslb serve` (server/), and the command
(cli/). docs/architecture.md draws which may import which; tests/test_layering.py
enforces it.
"""

__version__ = "0.1.0"
