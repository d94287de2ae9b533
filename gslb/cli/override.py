"""`gslb override`: force a member up, down or drained until a time."""

from __future__ import annotations

import argparse
import getpass
import socket
import sys
import time
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction) -> None:
    override = commands.add_parser(
        "override", help="force a member up, down or drained until a time",
        description="Manual overrides on a member value (an address, or a CNAME target), "
        "for every record that has it. Each carries an expiry, after which it no longer "
        "counts: a forgotten override reverts by itself. In Redis (--redis) every node "
        "applies it within a second; with --state FILE the node watching that file does.")
    override.add_argument("action", choices=["set", "clear", "list"])
    override.add_argument("value", nargs="?", metavar="VALUE", help="the member value")
    override.add_argument("mode", nargs="?", choices=["up", "down", "drain"],
                          help="for set: up, down, or drain (answered only when nothing "
                          "else in its pool is up)")
    override.add_argument("--for", dest="duration", metavar="DURATION",
                          help="for set: how long, e.g. 90s, 10m, 2h, 1d (required)")
    override.add_argument("--reason", default="", help="for set: a note shown by list")
    where = override.add_mutually_exclusive_group(required=True)
    where.add_argument("--redis", metavar="URL", help="the shared store")
    where.add_argument("--state", type=Path, metavar="FILE", help="a state file a server watches")
    override.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gslb.state import overrides
    from gslb.state.redis import connect_sync, errors, parse_url
    from gslb.state.store import StateFileError, format_time

    try:
        if args.action != "list" and not args.value:
            raise ValueError(f"override {args.action} needs VALUE")
        client = connect_sync(parse_url(args.redis)) if args.redis else None
        by = f"{getpass.getuser()}@{socket.gethostname()}"  # who, in the override log
        if args.action == "set":
            if args.mode is None or args.duration is None:
                raise ValueError("override set needs VALUE, a mode (up, down, drain) and --for")
            now = time.time()
            until = now + overrides.parse_duration(args.duration)
            if client is not None:
                overrides.set_in_redis(client, args.value, args.mode, until, by, args.reason)
            else:
                overrides.set_in_file(args.state, args.value, args.mode, until, by, args.reason)
            overrides.log_change(client if client is not None else args.state, {
                "time": now, "by": by, "value": args.value, "action": "set", "mode": args.mode,
                "until": until, "reason": args.reason or ""})
            print(f"{args.value}: {args.mode} until {format_time(until)}")
        elif args.action == "clear":
            removed = (overrides.clear_in_redis(client, args.value) if client is not None
                       else overrides.clear_in_file(args.state, args.value))
            if removed:
                overrides.log_change(client if client is not None else args.state, {
                    "time": time.time(), "by": by, "value": args.value, "action": "clear"})
            print(f"{args.value}: {'cleared' if removed else 'had no override'}")
        else:
            active = (overrides.list_in_redis(client) if client is not None
                      else overrides.list_in_file(args.state))
            for value, entry in sorted(active.items()):
                note = f" ({entry['reason']})" if entry.get("reason") else ""
                by = f" by {entry['by']}" if entry.get("by") else ""
                print(f"{value} {entry['mode']} until {format_time(float(entry['until']))}{by}{note}")
    except (ValueError, StateFileError, OSError) as exc:
        print(f"gslb override: {exc}", file=sys.stderr)
        return 2
    except errors() as exc:
        print(f"gslb override: Redis: {exc}", file=sys.stderr)
        return 1
    return 0
