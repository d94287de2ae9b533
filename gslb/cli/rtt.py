"""`gslb rtt`: push latency samples (client, datacenter, milliseconds) to Redis."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

RATE_LIMIT = 50  # samples per second per client; gslb.state.telemetry.DEFAULT_LIMIT (a test
# checks they agree: importing it here would import redis for every `gslb --help`)


def add_parser(commands: argparse._SubParsersAction) -> None:
    rtt = commands.add_parser(
        "rtt", help="push latency samples (client, datacenter, milliseconds) to Redis",
        description="Ingest RTT samples for the latency policy: each is CLIENT (a network "
        "such as 10.0.0.0/8, or a region code such as EU) DATACENTER MS. Samples are "
        "aggregated per (client, datacenter) into an EWMA; nodes use a figure once it has "
        "--rtt-min-samples samples. At most --limit samples per second per client are "
        "accepted; the rest are counted as rate-limited.")
    rtt.add_argument("sample", nargs="*", metavar="CLIENT DATACENTER MS",
                     help="one sample as three words; or use --file")
    rtt.add_argument("--file", type=Path, metavar="FILE",
                     help="samples, one 'CLIENT DATACENTER MS' per line ('-' for stdin)")
    rtt.add_argument("--redis", required=True, metavar="URL", help="where to store them")
    rtt.add_argument("--limit", type=int, default=RATE_LIMIT, metavar="N",
                     help=f"samples per second per client accepted (default: {RATE_LIMIT})")
    rtt.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gslb.state.redis import connect_sync, errors, parse_url
    from gslb.state.telemetry import Sample, ingest

    words = list(args.sample)
    if args.file is not None:
        text = sys.stdin.read() if str(args.file) == "-" else args.file.read_text()
        words += [w for line in text.splitlines() if not line.startswith("#") for w in line.split()]
    if not words or len(words) % 3:
        print("gslb rtt: expected samples as CLIENT DATACENTER MS, three words each", file=sys.stderr)
        return 2
    try:
        samples = [Sample(words[i], words[i + 1], float(words[i + 2])) for i in range(0, len(words), 3)]
        result = ingest(connect_sync(parse_url(args.redis)), samples, limit=max(1, args.limit))
    except ValueError as exc:
        print(f"gslb rtt: {exc}", file=sys.stderr)
        return 2
    except errors() as exc:
        print(f"gslb rtt: Redis: {exc}", file=sys.stderr)
        return 1
    for problem in result.invalid or []:
        print(f"gslb rtt: refused: {problem}", file=sys.stderr)
    print(f"{result.accepted} accepted, {result.limited} rate-limited, "
          f"{len(result.invalid or [])} refused")
    return 1 if result.invalid else 0
