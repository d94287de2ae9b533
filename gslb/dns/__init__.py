"""The DNS protocol, pure: no sockets, no clock, no random source (tests/test_layering.py).

Query parsing (wire, edns, tsig), the RFC 1034 resolver over compact immutable zones
(zone, blob, resolver, denial: DNSSEC denial proofs), rendering (message, render), the
answer cache (answers), AXFR/IXFR (xfr), query counts (tally), and `handler.Responder`:
bytes in, bytes out for one query against a snapshot.
"""
