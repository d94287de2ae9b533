"""Snapshot swaps from different threads never undo each other: a zone reload (built in
a thread of its own) and live state changes (applied on the event loop) both survive,
whatever their order. Found in a full run: a state update that straddled a reload's swap
put the old zones back, so the new serial vanished again after it had been served."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import dns.name
import pytest

from gslb.server.control import StateUpdate
from gslb.server.node import Server
from gslb.settings import Settings
from gslb.state.store import StateView
from gslb.steering.model import Health
from tests.servers import DEMO_ZONES, copy_demo_zones

SERIAL = 2026112401


def _bump(zones: Path, serial: int) -> None:
    path = zones / "example.com.zone"
    text = path.read_text()
    assert str(serial - 1) in text
    path.write_text(text.replace(str(serial - 1), str(serial), 1))


def _serial(server: Server) -> int:
    zone = server.snapshot.zones.by_origin[dns.name.from_text("example.com.")]
    return zone.serial()


def _view(version: int, up: bool) -> StateView:
    return StateView(version=version, health={"api-primary": Health(up=up, source="test")})


def _state_version(server: Server) -> int:
    steering = server.snapshot.steering
    assert steering is not None
    return steering.version


@pytest.fixture
def server(tmp_path: Path) -> Server:
    zones = copy_demo_zones(tmp_path)
    for steering_file in DEMO_ZONES.glob("*.gslb.yaml"):
        shutil.copy(steering_file, zones / steering_file.name)
    server = Server(Settings(zones_dir=zones, prewarm=0, udp="python", workers=1))
    assert server.load()
    assert _serial(server) == SERIAL
    return server


def test_a_state_change_during_a_reload_is_kept(server: Server,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    build = server._steering

    def steering_then_state_arrives(records):  # type: ignore[no-untyped-def]
        built = build(records)
        server.apply(StateUpdate(_view(4242, up=False)))  # lands while the reload builds
        return built

    monkeypatch.setattr(server, "_steering", steering_then_state_arrives)
    _bump(server.settings.zones_dir, SERIAL + 1)
    assert server.reload_zones()
    assert _serial(server) == SERIAL + 1
    assert _state_version(server) == 4242


def test_state_changes_never_undo_a_reload(server: Server) -> None:
    stop = threading.Event()

    def flap() -> None:
        up = True
        version = 1
        while not stop.is_set():
            server.apply(StateUpdate(_view(version, up)))
            up, version = not up, version + 1

    flapper = threading.Thread(target=flap)
    flapper.start()
    try:
        for step in range(1, 11):
            _bump(server.settings.zones_dir, SERIAL + step)
            assert server.reload_zones()
        stop.set()
        flapper.join()
        assert _serial(server) == SERIAL + 10
    finally:
        stop.set()
        flapper.join()


def test_a_reload_a_stop_abandoned_swaps_nothing_in(server: Server,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """A stop does not wait for a reload's thread; what the thread loads after the stop
    is dropped: no new snapshot, no "reloaded" line after the node said it stops."""
    from gslb.server import loading

    reading, stopped = threading.Event(), threading.Event()
    load = loading.load_zones

    def load_during_the_stop(zones_dir: Path) -> object:
        reading.set()
        assert stopped.wait(5)
        return load(zones_dir)

    monkeypatch.setattr(loading, "load_zones", load_during_the_stop)
    _bump(server.settings.zones_dir, SERIAL + 1)
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(server.reload_zones()))
    thread.start()
    assert reading.wait(5)
    server.abandon_reloads()
    stopped.set()
    thread.join(5)
    assert result == [False]
    assert _serial(server) == SERIAL
    assert "reloaded" not in caplog.text


def test_only_a_worker_records_the_version_it_serves(tmp_path: Path) -> None:
    """The supervisor applies a version before its workers do: had it written its own
    version into a worker's slot of the served table, a write through the API would
    answer before that worker served it (a query to it then got NXDOMAIN)."""
    from gslb.config.changes import RRSET, Change, Version
    from gslb.server.served import VACANT, ServedTable

    supervisor = Server(Settings(zones_dir=copy_demo_zones(tmp_path), workers=2, prewarm=0))
    assert supervisor.load()
    supervisor.served = ServedTable(2)
    change = Change(RRSET, "example.com.", "t1.example.com.", "A", None,
                    {"ttl": 30, "rdata": ["192.0.2.1"]})
    supervisor.apply_versions([Version(supervisor.live.version + 1, "ops", 0.0, "", (change,))])
    assert supervisor.live.version == 1
    assert supervisor.served.versions() == [VACANT, VACANT]
    supervisor.slot = 1  # a worker forked from it
    supervisor.apply_versions([Version(2, "ops", 0.0, "", (change,))])
    assert supervisor.served.versions() == [VACANT, 2]


def test_geoip_rebuilds_run_niced_in_threads_of_their_own() -> None:
    """A replaced GeoIP database is walked and the steering rebuilt in threads at
    LOW_NICE (a waking UDP loop preempts them), never in the event loop's thread, whose
    niceness stays as it was (`ps -L -o tid,ni,comm` shows the same)."""
    import asyncio
    import os

    from gslb.server.loading import LOW_NICE

    server = Server(Settings(zones_dir=DEMO_ZONES, prewarm=0))
    assert server.load()
    seen: dict[str, tuple[int, int]] = {}

    def noting(name: str) -> bool:
        tid = threading.get_native_id()
        # niced, not SCHED_IDLE: this thread holds the GIL (lower_this_thread says why)
        assert os.sched_getscheduler(tid) == os.SCHED_OTHER
        seen[name] = (tid, os.getpriority(os.PRIO_PROCESS, tid))
        return True

    server.geo_changed = lambda: noting("walk")  # type: ignore[method-assign]
    server.refresh_geo = lambda: noting("rebuild")  # type: ignore[method-assign]
    main = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    async def replaced() -> None:
        assert await server.geo_check()
        await server.follow_geo()

    asyncio.run(replaced())
    assert {name: nice for name, (_, nice) in seen.items()} == {"walk": LOW_NICE, "rebuild": LOW_NICE}
    assert threading.get_native_id() not in {tid for tid, _ in seen.values()}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main


def test_a_supervisor_hands_its_geoip_work_to_a_niced_thread() -> None:
    """The supervisor walks a replaced database and rebuilds its steering in its main
    loop; `at_low_priority` runs that work in a thread at LOW_NICE (its main thread
    keeps its niceness, which the workers it forks inherit) and gives back what the
    work returned or raised."""
    import os

    from gslb.server.loading import LOW_NICE, at_low_priority

    main = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def where() -> tuple[int, int]:
        tid = threading.get_native_id()
        assert os.sched_getscheduler(tid) == os.SCHED_OTHER
        return tid, os.getpriority(os.PRIO_PROCESS, tid)

    tid, nice = at_low_priority(where)
    assert tid != threading.get_native_id() and nice == LOW_NICE

    def broken() -> None:
        raise KeyError("no such database")

    with pytest.raises(KeyError, match="no such database"):
        at_low_priority(broken)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main


def test_the_first_load_logs_each_of_a_few_zones_and_counts_many(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A few zones: a line each (zone, serial, file). Thousands: one line says how many
    (each zone's line is at DEBUG), so the log is not thousands of lines long."""
    from gslb.server.loading import ZONE_LINES
    few = copy_demo_zones(tmp_path)
    with caplog.at_level("INFO", logger="gslb.server"):
        assert Server(Settings(zones_dir=few, prewarm=0, udp="python", workers=1)).load()
    each = [r.getMessage() for r in caplog.records if r.getMessage().startswith("loaded zone ")]
    assert len(each) == len(list(few.glob("*.zone"))) and "serial" in each[0]

    many = tmp_path / "many"
    many.mkdir()
    for i in range(ZONE_LINES + 1):
        (many / f"z{i}.test.zone").write_text(
            f"$ORIGIN z{i}.test.\n@ 300 IN SOA ns hm {i + 1} 2 3 4 5\n@ 300 IN NS ns\n"
            "ns 300 IN A 192.0.2.1\n")
    caplog.clear()
    with caplog.at_level("DEBUG", logger="gslb.server"):
        assert Server(Settings(zones_dir=many, prewarm=0, udp="python", workers=1)).load()
    loaded = [r for r in caplog.records if r.getMessage().startswith("loaded ")]
    assert [r.getMessage() for r in loaded if r.levelname == "INFO"] == [
        f"loaded {ZONE_LINES + 1} zones from {many} (each zone's line at DEBUG)"]
    assert sum(r.levelname == "DEBUG" for r in loaded) == ZONE_LINES + 1
