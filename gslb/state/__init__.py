"""Live state, as opposed to configuration: health verdicts, manual overrides and RTT
figures, merged into the state views a node's steering reads.

The state file and the in-process store (store), the state service that turns probes,
the file and Redis into views (service), the node's view of Redis (shared) and Redis
itself (redis: URLs, Sentinel, backoff, key layout), overrides with an expiry
(overrides), RTT telemetry (telemetry).
"""
