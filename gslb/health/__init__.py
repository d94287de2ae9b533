"""Member health: probes (HTTP(S), TCP, DNS), the agent that runs them on a schedule with
rise/fall and jitter, the quorum of several agents' verdicts, and `gslb checker`, the
agent that writes its verdicts to Redis for the DNS nodes.
"""
