"""`gslb token`: create, list and revoke API bearer tokens."""

from __future__ import annotations

import argparse
import sys

from gslb.cli.flags import zones_flag
from gslb.settings import env_default


def add_parser(commands: argparse._SubParsersAction) -> None:
    token = commands.add_parser(
        "token", help="create, list and revoke API bearer tokens",
        description="Tokens for the REST API. Roles: read (GET), write (records, steered "
        "records, members, datacenters), admin (zones, rollback). A token may be limited to "
        "zones. Only a hash is stored (zones/.gslb/tokens.json); the token is shown once.",
    )
    actions = token.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a token and print it (once)")
    create.add_argument("--name", required=True, help="who uses it; recorded as the author of changes")
    create.add_argument("--role", required=True, choices=["read", "write", "admin"])
    create.add_argument("--zone", action="append", default=[], metavar="ZONE",
                        help="limit the token to this zone, repeatable (default: every zone)")
    listing = actions.add_parser("list", help="list tokens (never their secrets)")
    revoke = actions.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("id", help="the id shown by `gslb token list`")
    for sub in (create, listing, revoke):
        zones_flag(sub)
        sub.add_argument("--redis", metavar="URL", default=env_default("REDIS"),
                         help="keep the tokens in Redis, for `gslb api --redis` (env GSLB_REDIS)")
    token.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gslb.config.tokens import TokenStore

    if args.redis:
        from gslb.config.redisstore import RedisTokens, connect

        store = TokenStore(RedisTokens(connect(args.redis)))
    else:
        store = TokenStore.for_zones(args.zones)
    if args.action == "create":
        if not args.redis and not args.zones.is_dir():
            print(f"gslb token: --zones {args.zones}: no such folder", file=sys.stderr)
            return 2
        token, secret = store.create(args.name, args.role, args.zone)
        scope = ", ".join(token.zones) if token.zones else "every zone"
        print(secret)
        print(f"token {token.id} ({token.name}, {token.role}, {scope}); shown once: keep it",
              file=sys.stderr)
        return 0
    if args.action == "list":
        for token in store.list():
            scope = ",".join(token.zones) if token.zones else "*"
            print(f"{token.id}\t{token.name}\t{token.role}\t{scope}")
        return 0
    if not store.revoke(args.id):
        print(f"gslb token revoke: no token {args.id}", file=sys.stderr)
        return 1
    print(f"revoked {args.id}")
    return 0
