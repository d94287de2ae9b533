"""Every bound on a number or a list of the steering configuration, in one place.

The loader checks them, so `gslb check`, a reload and every API request (which is
validated by the same loader) refuse the same inputs with the same `file:line` or field
message. They keep any one record cheap to check, to build and to answer from: without
them a 4,000-digit `min_healthy` turned every answer for its name into SERVFAIL, and a
pool of 6,000 members made each change to its zone cost seconds. The documented ranges
(docs/steering.md) are these. Policy parameters are bounded where the policies are
registered (gslb/steering/policies.py, `ParamKind`).
"""

MAX_TTL = 86400  # seconds, a steered record's ttl: 0..MAX_TTL
MAX_WEIGHT = 1000  # a member's weight: 0..MAX_WEIGHT
MAX_PRIORITY = 1000  # a member's priority: 0..MAX_PRIORITY
MAX_SELECT = 64  # answers per response: 1..MAX_SELECT
MAX_MEMBERS = 256  # members per pool
MAX_POOLS = 64  # pools per record
MAX_RULES = 256  # rules per record
MAX_RECORDS = 10_000  # steered records per zone
MIN_INTERVAL = 0.05  # seconds, a check's interval and timeout: MIN_INTERVAL..MAX_INTERVAL
MAX_INTERVAL = 3600.0
MAX_JITTER = 0.5  # a check's jitter, a fraction of its interval: 0..MAX_JITTER
MAX_RISE_FALL = 100  # a check's rise and fall: 1..MAX_RISE_FALL
