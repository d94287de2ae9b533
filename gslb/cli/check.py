"""`gslb check`: validate zone files and steering configuration without serving them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gslb.cli.flags import geoip_paths, zones_flag


def add_parser(commands: argparse._SubParsersAction) -> None:
    check = commands.add_parser(
        "check",
        help="validate zone files and steering configuration without serving them",
        description="Load and validate every *.zone file and every *.gslb.yaml (or "
        "*.gslb.yml) steering file beside them, a steering file even when its zone file has "
        "problems. Prints one 'file:line: message' line per problem and exits 1 if there is "
        "any, else prints a summary and exits 0. Warnings (what Knot DNS also loads with a "
        "warning: no NS at a zone's apex, a name server without an address, out-of-zone "
        "data; rules that can never match with the given --geoip databases) are printed as "
        "'file:line: warning: ...' and do not change the exit status, unless --strict.",
    )
    zones_flag(check)
    check.add_argument(
        "--geoip", action="append", type=Path, metavar="PATH",
        help="the MaxMind databases `gslb serve` will use, repeatable: geos and asns rules "
        "that none of them can match are warned about (env GSLB_GEOIP, comma-separated)",
    )
    check.add_argument("--strict", action="store_true",
                       help="refuse zones with warnings too (exit 1), as `gslb serve` would "
                       "still load them")
    check.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gslb.load.geoip import GeoIPError, open_databases
    from gslb.load.steering import geo_warnings, load_all_steering
    from gslb.load.zonefile import load_zones

    report = load_zones(args.zones, partial=True, strict=args.strict, parallel=True)
    steered, steering_problems = (load_all_steering(args.zones, report.zones + report.partial)
                                  if args.zones.is_dir() else ({}, []))
    problems = report.problems + steering_problems
    for problem in problems:
        print(problem)
    for warning in report.warnings:
        print(f"{warning.file}:{warning.line}: warning: {warning.message}")
    try:
        geo = open_databases(geoip_paths(args))
    except GeoIPError as exc:
        print(f"gslb check: --geoip {exc}", file=sys.stderr)
        return 1
    for warning in geo_warnings(steered, geo.types if geo else []):
        print(f"{warning.file}:{warning.line}: warning: {warning.message}")
    if problems:
        return 1
    for zone in report.zones:
        signed = ""
        if zone.signed:
            denial = zone.denial
            kind = "NSEC3" if denial is not None and denial.nsec3 else "NSEC"
            signed = f", DNSSEC-signed ({kind})"
        print(f"{zone.source}: zone {zone.origin} serial {zone.serial()}, "
              f"{zone.record_count()} records{signed}: ok")
    files: dict[str, int] = {}
    for record in steered.values():
        file = record.source.rsplit(":", 1)[0]
        files[file] = files.get(file, 0) + 1
    for file, count in files.items():
        print(f"{file}: {count} steered record{'s' if count != 1 else ''}: ok")
    return 0
