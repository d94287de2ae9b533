"""`import gslb` spares the server `importlib.metadata`, and dnspython still learns what
is installed (gslb/__init__.py: `_defer_package_metadata`)."""

from __future__ import annotations

import json
import subprocess
import sys

FEATURES = ("idna", "dnssec", "doh", "doq", "trio")


def _run(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    return json.loads(done.stdout)


def test_serving_imports_leave_importlib_metadata_and_email_out() -> None:
    seen = _run("import json, sys\n"
                "import gslb.cli.main, gslb.server.single, gslb.dns.handler, dns.name\n"
                "print(json.dumps(sorted(m for m in sys.modules\n"
                "    if m == 'importlib.metadata' or m.split('.')[0] == 'email')))")
    assert seen == []


def test_dnspython_sees_the_same_features_as_without_gslb() -> None:
    ask = ("import json, dns._features as f\n"
           f"print(json.dumps({{k: f.have(k) for k in {FEATURES!r}}}))")
    with_gslb = _run("import gslb, dns.name\n" + ask)
    without = _run(ask)
    assert with_gslb == without
    assert with_gslb["idna"] is True  # a run dependency of dnspython's IDNA 2008 codec


def test_the_stand_in_hands_every_other_question_to_the_real_module() -> None:
    """Code that reaches `importlib.metadata` through the package without importing it
    (it works by accident in CPython) still gets real answers."""
    seen = _run("import json, gslb, dns.name, importlib\n"
                "found = importlib.metadata.packages_distributions().get('dns')\n"
                "print(json.dumps([found, type(importlib.metadata).__name__]))")
    assert seen == [["dnspython"], "module"]


def test_a_later_import_gets_the_real_module_and_unknown_names_still_raise() -> None:
    seen = _run(
        "import json, gslb, dns.name, importlib, importlib.metadata as m\n"
        "try:\n"
        "    importlib.metadata.version('no-such-distribution-here')\n"
        "    raised = False\n"
        "except m.PackageNotFoundError:\n"
        "    raised = True\n"
        "print(json.dumps([hasattr(m, 'distributions'), raised,\n"
        "                  importlib.metadata is m, m.version('dnspython')]))")
    assert seen[:3] == [True, True, True]
    import importlib.metadata
    assert seen[3] == importlib.metadata.version("dnspython")
