"""GSLB decisions, pure: no I/O, no clock, no random source (time and random draws are
passed in, so `gslb explain` reproduces a decision).

The configuration as typed data (model), geo rules (geo), the policies (policies), the
engine that decides one record for one client (engine), its front on the DNS path
(front: which names are steered, who the client is), and one question explained
against a snapshot (explain: `gslb explain` and `/v1/explain`).
"""
