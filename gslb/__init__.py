"""gslb: an authoritative DNS server with global server load balancing.

The pure core (dns/, steering/, snapshot.py), the layers around it (load/: files to
data; config/: the configuration of record; health/, state/: live state;
observability/), the processes and sockets of `gslb serve` (server/), and the command
(cli/). docs/architecture.md draws which may import which; tests/test_layering.py
enforces it.
"""

__version__ = "0.1.0"


def _defer_package_metadata() -> None:
    """Spare `gslb serve` the import of `importlib.metadata` (with `email`, `zipfile`, ...):
    1.5 MiB of a server's RSS and 18 ms of every start, for one question.

    dnspython asks, as `dns.name` is imported, which version of `idna` is installed
    (`dns._features`, through `importlib.metadata.version`). Until dnspython's features
    module is imported, `importlib.metadata` is a stand-in whose `version` reads an
    installed wheel's version from its `NAME-VERSION.dist-info` folder name (the wheel
    format fixes that name) and asks the real module for anything else. The stand-in then
    leaves `sys.modules`, so any later `import importlib.metadata` gets the real one."""
    import importlib
    import os
    import sys
    import types

    if "importlib.metadata" in sys.modules or "dns._features" in sys.modules:
        return

    def real() -> types.ModuleType:
        if sys.modules.get("importlib.metadata") is stand_in:  # asked while dnspython loads
            del sys.modules["importlib.metadata"]
        import importlib.metadata as module  # noqa: PLC0415 (the point is to defer it)
        return module

    def version(distribution: str) -> str:
        wanted = _normalized(distribution)
        found = set()
        for folder in sys.path:
            try:
                names = os.listdir(folder or ".")
            except OSError:
                continue
            for name in names:
                if name.endswith(".dist-info") and "-" in name:
                    project, _, release = name[:-len(".dist-info")].rpartition("-")
                    if _normalized(project) == wanted:
                        found.add(release)
        if len(found) == 1:  # else (none, an egg, two copies) the real module decides
            return found.pop()
        return real().version(distribution)

    stand_in = types.ModuleType("importlib.metadata")
    setattr(stand_in, "version", version)
    setattr(stand_in, "__getattr__", lambda attribute: getattr(real(), attribute))
    sys.modules["importlib.metadata"] = stand_in
    try:
        import dns._features  # noqa: F401 (binds the stand-in)
    finally:
        del sys.modules["importlib.metadata"]
    setattr(importlib, "metadata", stand_in)  # until a real import replaces it


def _normalized(project: str) -> str:
    return "".join("_" if c in "-." else c for c in project.lower())


_defer_package_metadata()
