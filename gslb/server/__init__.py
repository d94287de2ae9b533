"""Processes and sockets of `gslb serve`.

The node (node: `Server`, which owns the snapshot and applies state and configuration
versions; loading: the first load and reloads), the single-process main (single), the
supervisor and its forked workers (workers, fork), the state process (stateproc), the
control channel between them (control) and the shared table of served versions
(served); UDP and TCP (udp, tcp, listen) with the native C fast path (native/,
fastpath); the node's metrics, query log and dnstap wiring (telemetry).
"""
