"""The web console in a real Chromium (Debian's chromium and chromium-driver, through
Selenium, with no download of anything) against a real `gslb serve --api`, checked
with real dig and a real HTTP backend under a health check.

One server and one browser serve the whole module; the tests run in order (a drain,
then its rollback). Each main page is saved as a screenshot at 1280 px and at a 390 px
phone width into docs/console/ (the README shows them).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from tests.e2e.test_api import make_token
from tests.e2e.test_health import Backend, dig
from tests.redis_server import require
from tests.servers import DEMO_ZONES, ROOT, GslbProcess, free_port, wait_until

pytestmark = pytest.mark.browser

SHOTS = ROOT / "docs" / "console"
INTERVAL, FALL = 0.5, 2
DOWN_BOUND = INTERVAL * FALL + 2.0  # the bound: interval x fall + 2 s, in the open page
SHOP = """
  # A member probed over HTTP (the browser test kills its backend).
  shop:
    type: A
    ttl: 5
    pools:
      web:
        members:
          - {value: 192.0.2.60, check: shop-http, probe: 127.0.0.1, datacenter: us-east}
          - {value: 192.0.2.61, datacenter: eu-west}
    rules: [{pool: web}]
    policies: [health]
    select: 2

  # Geo rules, for the world map (without a GeoIP database the map still shows the rules).
  world:
    type: A
    ttl: 30
    pools:
      europe: {members: [192.0.2.70]}
      france: {members: [192.0.2.71]}
      rest: {members: [192.0.2.72]}
    rules:
      - {geos: [FR], pool: france}
      - {geos: [EU], pool: europe}
      - {pool: rest}

"""
CHECK = ("  shop-http: {{type: http, port: {port}, path: /health, interval: %s, timeout: 0.4, "
         "rise: 2, fall: %s, jitter: 0}}\n" % (INTERVAL, FALL))


class Console:
    """The browser and the server it talks to."""

    def __init__(self, driver: Any, server: GslbProcess, api: str, tokens: dict[str, str],
                 backend: Backend | None = None) -> None:
        self.driver, self.server, self.api, self.tokens, self.backend = driver, server, api, tokens, backend

    def by(self, css: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def wait(self, predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
        """Poll `predicate` (None, False or an exception: not yet) until it gives a value.
        Generous: the API process runs at the lowest CPU priority, so on a busy machine
        (the suite's other workers) a dry run can take seconds; bounds the issue sets are
        measured apart."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                value = predicate()
                if value:
                    return value
            except Exception as exc:  # an element not there yet
                last = exc
            time.sleep(0.05)
        raise AssertionError(f"timed out; last error: {last!r}; page: {self.text()[:2000]}")

    def click(self, css: str) -> None:
        """Click the element once it is there (a page redrawn meanwhile is retried)."""
        def clicked() -> bool:
            self.by(css).click()
            return True

        self.wait(clicked)

    def text(self) -> str:
        return self.driver.execute_script("return document.body.innerText")

    def open(self, hash_path: str) -> None:
        """The page afresh (the same address again is reloaded: a hash alone would not be)."""
        target = f"{self.api}/ui/{hash_path}"
        if self.driver.current_url == target:
            self.driver.refresh()
        else:
            self.driver.get(target)
        self.wait(lambda: "Loading" not in self.by("#view").text and self.by("#view").text)

    def sign_in(self, role: str = "admin") -> None:
        from selenium.webdriver.common.keys import Keys

        self.driver.get(f"{self.api}/ui/")
        self.driver.execute_script("sessionStorage.clear()")
        self.driver.get(f"{self.api}/ui/")
        field = self.wait(lambda: self.by("#token"))
        field.send_keys(self.tokens[role], Keys.ENTER)  # the keyboard submits the form
        self.wait(lambda: f"({role})" in self.by("#who").text)
        self.wait(lambda: "Loading" not in self.by("#view").text and self.by("#view").text)

    def shoot(self, name: str) -> None:
        """The page at 1280 px and at 390 px wide, whole height, into docs/console/."""
        self.driver.execute_script("document.getElementById('notice').textContent = ''")
        for width in (1280, 390):
            self.driver.set_window_size(width, 900)
            time.sleep(0.2)
            height, chrome = self.driver.execute_script(
                "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]")
            self.driver.set_window_size(width, min(max(height, 700), 3000) + chrome)
            self.driver.execute_script("window.scrollTo(0, 0)")
            time.sleep(0.2)
            self.driver.save_screenshot(str(SHOTS / f"{name}-{width}.png"))
        self.driver.set_window_size(1280, 900)

    def http(self, role: str = "admin") -> httpx.Client:
        return httpx.Client(base_url=self.api, timeout=30,
                            headers={"Authorization": f"Bearer {self.tokens[role]}"})


def chromium() -> Any:
    """Chromium headless, driven by the system chromedriver (Selenium Manager never runs:
    the driver's path is given)."""
    browser = require("chromium", "chromium")
    driver_path = require("chromedriver", "chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="gslb-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-size=1280,900", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.profile_dir = profile
    return driver


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    require("dig", "bind9-dnsutils")
    zones = tmp_path_factory.mktemp("console") / "zones"
    shutil.copytree(DEMO_ZONES, zones)
    backend = Backend().start()
    steering = zones / "example.com.gslb.yaml"
    text = steering.read_text().replace("\n# Health check definitions", SHOP + "# Health check definitions")
    steering.write_text(text + CHECK.format(port=backend.port))
    tokens = {role: make_token(zones, role) for role in ("admin", "read")}
    api_port = free_port()
    server = GslbProcess(zones, ["--api", f"127.0.0.1:{api_port}", "--prewarm", "0"])
    server.start(ready_zones=["example.com."])
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver = None
    try:
        driver = chromium()
        yield Console(driver, server, f"http://127.0.0.1:{api_port}", tokens, backend)
    finally:
        if driver is not None:
            driver.quit()
            shutil.rmtree(driver.profile_dir, ignore_errors=True)
        server.stop()
        backend.stop()


def accessible_names(console: Console) -> list[str]:
    """Controls on the page without an accessible name (as Chromium computes it)."""
    missing = []
    for element in console.all("button, input, select, textarea, a[href]"):
        if element.is_displayed() and not (element.accessible_name or "").strip():
            missing.append(element.get_attribute("outerHTML")[:120])
    return missing


def answers(console: Console, name: str, times: int = 24) -> set[str]:
    found: set[str] = set()
    for _ in range(times):
        found |= dig(console.server, name)
    return found


def test_sign_in_shows_the_overview(console: Console) -> None:
    console.driver.get(f"{console.api}/ui/")
    first = console.wait(lambda: console.driver.execute_script(
        "const p = performance.getEntriesByName('first-contentful-paint')[0];"
        "return p ? p.startTime : null"))
    loaded = console.driver.execute_script(
        "return performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))"
        ".map(e => [e.name, e.encodedBodySize])")
    weight = sum(size for _, size in loaded)
    started = time.monotonic()
    console.sign_in()
    overview_ms = (time.monotonic() - started) * 1000  # Enter on the token -> overview drawn
    overview = console.text()
    assert "example.com." in overview and "2026112401" in overview  # zones with serials
    assert "this node" in overview and "serving" in overview  # the node and its version
    assert "health checks down" in overview and "demo-dead@127.0.0.1" in overview
    assert not accessible_names(console)
    print(f"\nconsole first page: {len(loaded)} files, {weight} bytes; first contentful paint "
          f"{first:.0f} ms; signed in to overview drawn {overview_ms:.0f} ms")
    (SHOTS / "figures.json").write_text(json.dumps(
        {"files": len(loaded), "bytes": weight, "first_contentful_paint_ms": round(first),
         "sign_in_to_overview_ms": round(overview_ms)}) + "\n")
    assert weight < 100_000 and all(name.startswith(console.api) for name, _ in loaded)
    console.shoot("overview")


def test_drain_after_the_preview_then_roll_back(console: Console) -> None:
    assert "192.0.2.11" in answers(console, "www2.example.com")
    console.open("#/record/example.com./www2/A")
    console.wait(lambda: console.by("button[aria-label='drain 192.0.2.11']")).click()
    dialog = console.wait(lambda: console.by("dialog[open]"))
    chart = console.wait(lambda: dialog.find_element("css selector", ".chart svg"))
    assert "192.0.2.11" in dialog.text and "25% → 0%" in dialog.text, dialog.text
    assert chart.find_elements("css selector", "rect.after")
    console.shoot("preview")
    assert "192.0.2.11" in answers(console, "www2.example.com")  # the preview wrote nothing
    console.by("#confirm-apply").click()
    console.wait(lambda: "drained" in console.by("tr[data-member='192.0.2.11']").text)
    assert wait_until(lambda: "192.0.2.11" not in answers(console, "www2.example.com", 4), timeout=5)
    assert answers(console, "www2.example.com") == {"192.0.2.10"}

    console.open("#/history")
    latest = console.wait(lambda: console.by("#view section.card:nth-of-type(2) button.primary"))
    assert "drain 192.0.2.11" in console.text()
    diff = [line.split() for line in console.by(".diff").text.splitlines()]
    assert ["+", "state:", "drained"] in diff and ["value:", "192.0.2.11"] in diff  # per record
    console.by("#audit-name").send_keys("www2")
    console.by("#audit-author").send_keys("e2e")
    console.by("form[aria-label='filter the audit trail'] button[type=submit]").click()
    audit = console.wait(lambda: [row.text for row in console.all("form[aria-label='filter the audit trail'] ~ table tbody tr")
                                  if "www2" in row.text])
    assert all("e2e" in row and "drain 192.0.2.11" in row for row in audit), audit
    console.by("#audit-author").send_keys("-nobody")
    console.by("form[aria-label='filter the audit trail'] button[type=submit]").click()
    console.wait(lambda: "No change matches." in console.text())
    console.by("#audit-author").clear()
    console.shoot("history")
    latest.click()
    dialog = console.wait(lambda: console.by("dialog[open]"))
    assert "0% → 25%" in dialog.text, dialog.text
    console.by("#confirm-apply").click()
    console.wait(lambda: "rollback to version" in console.text())
    assert wait_until(lambda: "192.0.2.11" in answers(console, "www2.example.com", 8), timeout=5)


# From now on in the page, the audit trail's unfiltered answers come 1.5 s late: the API
# of a busy node answering an older request after a newer one.
SLOW_UNFILTERED_AUDIT = """
const real = window.fetch;
window.fetch = (url, init) => String(url).includes("/v1/audit") && !String(url).includes("author=")
  ? new Promise((resolve) => setTimeout(() => resolve(real(url, init)), 1500))
  : real(url, init);
"""


def test_an_older_answer_never_replaces_a_newer_one(console: Console) -> None:
    """The history page fills its audit trail when it opens, and a filter asked meanwhile
    must not be overwritten when that first, slower answer comes (seen in a full run:
    the unfiltered rows came back over "No change matches.")."""
    console.open("#/history")
    console.wait(lambda: console.by("#audit-author"))
    console.driver.execute_script(SLOW_UNFILTERED_AUDIT)
    submit = "form[aria-label='filter the audit trail'] button[type=submit]"
    console.by(submit).click()  # unfiltered: slow
    console.by("#audit-author").send_keys("nobody-at-all")
    console.by(submit).click()  # filtered: at once
    console.wait(lambda: "No change matches." in console.text())
    time.sleep(2.5)  # the unfiltered answer has come by now
    assert "No change matches." in console.text()
    console.by("#audit-author").clear()


def test_a_killed_backend_turns_down_in_the_open_page(console: Console) -> None:
    console.open("#/record/example.com./shop/A")
    health = "tr[data-member='192.0.2.60'] td[data-label='Health']"
    console.wait(lambda: console.by(health).get_attribute("data-health") == "up")
    console.driver.execute_script("window.notReloaded = true")
    assert console.backend is not None
    console.backend.stop()
    started = time.monotonic()
    console.wait(lambda: console.by(health).get_attribute("data-health") == "down", timeout=DOWN_BOUND + 3)
    took = time.monotonic() - started
    print(f"\nthe page showed the member down {took:.2f} s after its backend died")
    assert took <= DOWN_BOUND, f"the page showed the member down after {took:.2f} s"
    assert console.driver.execute_script("return window.notReloaded") is True
    verdicts = console.by("tr[data-member='192.0.2.60'] td[data-label='Verdicts']").text
    assert "local down" in verdicts and "ConnectError" in verdicts, verdicts  # why it failed
    assert dig(console.server, "shop.example.com") == {"192.0.2.61"}
    console.shoot("record")
    console.backend = Backend(console.backend.port).start()


def test_a_concurrent_change_is_shown_not_overwritten(console: Console) -> None:
    console.open("#/record/example.com./www2/A")
    console.wait(lambda: console.by("button[aria-label='drain 192.0.2.12']"))
    with console.http() as client:
        # The user reads the preview of a drain; meanwhile someone else sets a weight.
        console.by("button[aria-label='drain 192.0.2.12']").click()
        console.wait(lambda: console.by("dialog[open]"))
        changed = client.patch("/v1/zones/example.com/steered/www2/A/members/192.0.2.10", json={"weight": 5})
        assert changed.status_code == 200, changed.text
        head = client.get("/v1/versions", params={"limit": 1}).json()[0]["number"]
        console.by("#confirm-apply").click()
        alert = console.wait(lambda: console.by("#view .alert"))
        assert "changed this record since you opened it" in alert.text
        assert "Nothing was written" in alert.text
        assert not console.all("dialog[open]")
        assert client.get("/v1/versions", params={"limit": 1}).json()[0]["number"] == head
        record = client.get("/v1/zones/example.com/steered/www2/A").json()["record"]
        assert "state" not in record["pools"]["web"]["members"][2]
    weight = console.by("input[aria-label='weight of 192.0.2.10']")
    console.wait(lambda: weight.get_attribute("value") == "5")  # reloaded, not overwritten

    # Now the change goes through: a weight set in the page, previewed, applied.
    weight.clear()
    weight.send_keys("2")
    console.by("button[aria-label='save weight of 192.0.2.10']").click()
    dialog = console.wait(lambda: console.by("dialog[open]"))
    assert "set weight 2 on 192.0.2.10" in dialog.text and "83% → 67%" in dialog.text, dialog.text
    console.by("#confirm-apply").click()
    console.wait(lambda: "applied as version" in console.by("#notice").text)
    with console.http() as client:
        members = client.get("/v1/zones/example.com/steered/www2/A").json()["record"]["pools"]["web"]["members"]
        assert members[0]["weight"] == 2
        head = client.get("/v1/versions", params={"limit": 1}).json()[0]["number"]
        # A datacenter's drain is previewed too; Cancel writes nothing.
        console.by("button[aria-label='drain datacenter eu-west']").click()
        dialog = console.wait(lambda: console.by("dialog[open]"))
        assert "drain datacenter eu-west" in dialog.text and "geo.example.com." in dialog.text
        console.by("#confirm-cancel").click()
        console.wait(lambda: not console.all("dialog[open]"))
        assert client.get("/v1/versions", params={"limit": 1}).json()[0]["number"] == head


def test_the_keyboard_drives_a_change(console: Console) -> None:
    """Tab to a member's Undrain... here: drain 192.0.2.12 by keyboard, confirm with
    Enter on the dialog's Apply; every control on every page has a name."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    console.open("#/record/example.com./www2/A")
    target = console.wait(lambda: console.by("button[aria-label='drain 192.0.2.12']"))
    body = console.by("body")
    body.click()
    for _ in range(60):
        ActionChains(console.driver).send_keys(Keys.TAB).perform()
        if console.driver.switch_to.active_element == target:
            break
    assert console.driver.switch_to.active_element == target, "Tab never reached the drain button"
    ActionChains(console.driver).send_keys(Keys.ENTER).perform()
    console.wait(lambda: console.all("dialog[open]"))
    console.wait(lambda: console.driver.switch_to.active_element == console.by("#confirm-apply"))
    ActionChains(console.driver).send_keys(Keys.ENTER).perform()
    console.wait(lambda: "drained" in console.by("tr[data-member='192.0.2.12']").text)
    for page in ("#/", "#/record/example.com./www2/A", "#/history", "#/zones",
                 "#/zone/example.com.", "#/explain"):
        console.open(page)
        time.sleep(0.3)
        assert not accessible_names(console), (page, accessible_names(console))


def test_where_traffic_goes_for_a_client(console: Console) -> None:
    console.open("#/explain")
    console.by("#explain-name").send_keys("geo.example.com")
    client = console.by("#explain-client")
    client.clear()
    client.send_keys("192.0.2.7")
    console.by("#explain-ecs").send_keys("10.1.2.0/24")
    console.by("#view form button[type=submit]").click()
    answer = console.wait(lambda: console.by(".answer").text)
    assert "10.0.0.80" in answer and "pool internal" in answer, answer
    console.by("#explain-ecs").clear()
    console.by("#explain-ecs").send_keys("not-a-subnet")
    console.by("#view form button[type=submit]").click()
    error = console.wait(lambda: console.by("#explain-ecs-error").text)
    assert error
    console.by("#explain-ecs").clear()
    console.by("#view form button[type=submit]").click()
    console.wait(lambda: "pool public" in console.by(".answer").text)
    console.shoot("explain")


def test_an_rrset_edit_shows_the_field_at_fault(console: Console) -> None:
    console.open("#/zone/example.com.")
    console.by("#rrset-search").send_keys("web")
    console.click("button[aria-label='edit web.example.com. A']")
    rdata = console.wait(lambda: console.by("#edit-rdata"))
    rdata.clear()
    rdata.send_keys("192.0.2.80\n192.0.2.300")  # the second line is no address
    console.by("section[aria-label='edit RRset'] button[type=submit]").click()
    error = console.wait(lambda: console.by("#edit-rdata-error").text)
    assert "line 2" in error and "not valid A data" in error, error
    assert rdata.get_attribute("aria-invalid") == "true"
    console.shoot("zone")
    rdata.clear()
    rdata.send_keys("192.0.2.82")
    console.by("section[aria-label='edit RRset'] button[type=submit]").click()
    dialog = console.wait(lambda: console.by("dialog[open]"))  # previewed, like every write
    assert "save web.example.com. A" in dialog.text and "rrset web.example.com. A" in dialog.text
    console.by("#confirm-apply").click()
    console.wait(lambda: "192.0.2.82" in console.by("#view table").text)
    assert wait_until(lambda: dig(console.server, "web.example.com") == {"192.0.2.82"}, timeout=3)


def test_a_large_zone_is_paged(console: Console) -> None:
    hosts = "".join(f"host{i:03d} 300 IN A 192.0.2.{i % 250 + 1}\n" for i in range(70))
    text = ("$ORIGIN paged.test.\n@ 3600 IN SOA ns1.paged.test. h.paged.test. 1 7200 3600 1209600 300\n"
            "@ 3600 IN NS ns1.paged.test.\nns1 3600 IN A 192.0.2.53\n" + hosts)
    with console.http() as client:
        made = client.post("/v1/zones", json={"name": "paged.test.", "text": text})
        assert made.status_code == 201, made.text
    console.open("#/zone/paged.test.")
    first = console.wait(lambda: "host000.paged.test." in console.by("#view table").text
                         and console.by("#view table").text)
    assert "host069.paged.test." not in first
    console.click("#page-next")
    console.wait(lambda: "host069.paged.test." in console.by("#view table").text)
    assert "page 2" in console.text() and "host000.paged.test." not in console.by("#view table").text


def test_values_are_text_never_markup(console: Console) -> None:
    hostile = "<img src=x id=injected><script id=injected2>window.pwned=1</script>"
    with console.http() as client:
        put = client.put("/v1/zones/example.com/rrsets/markup/TXT", json={"ttl": 60, "rdata": [f'"{hostile}"']})
        assert put.status_code == 200, put.text
    console.open("#/zone/example.com.")
    console.by("#rrset-search").send_keys("markup")
    console.wait(lambda: hostile in console.by("#view table").text)
    assert not console.all("#injected, #injected2")
    assert console.driver.execute_script("return window.pwned") is None


def test_a_read_token_sees_no_write_controls(console: Console) -> None:
    console.sign_in("read")
    for page in ("#/record/example.com./www2/A", "#/history", "#/zone/example.com."):
        console.open(page)
        time.sleep(0.3)
        buttons = [b.accessible_name for b in console.all("#view button, #view input.weight")]
        writes = [b for b in buttons if any(w in b.lower() for w in
                                            ("drain", "disable", "enable", "weight", "roll back", "edit"))]
        assert not writes, (page, writes)
    console.open("#/record/example.com./www2/A")
    assert "read-only" in console.text()
    forced = console.driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch('/v1/zones/example.com/steered/www2/A/members/192.0.2.11/drain', {method: 'POST',
              headers: {Authorization: 'Bearer ' + sessionStorage.getItem('gslb-token')}})
          .then(r => done(r.status));""")
    assert forced == 403
    assert console.tokens["read"] not in console.driver.current_url
    console.shoot("readonly")
    logs = console.driver.get_log("browser")
    assert not [e for e in logs if "Content Security Policy" in e["message"]], logs
    assert not [e for e in logs if console.tokens["read"] in e["message"]]
    assert not any(token in console.server.log() for token in console.tokens.values())


def test_the_world_map_colours_each_country_by_its_pool(console: Console) -> None:
    console.open("#/explain/world.example.com./A")
    svg = console.wait(lambda: console.by(".map svg"))
    colour = {code: svg.find_element("css selector", f"path[data-country='{code}']").get_attribute("class")
              for code in ("FR", "DE", "ES", "US", "BR")}
    assert colour["DE"] == colour["ES"] != colour["FR"], colour
    assert colour["US"] == colour["BR"] not in (colour["DE"], colour["FR"]), colour
    legend = console.by(".map .legend").text
    assert "europe" in legend and "france (1)" in legend and "rest" in legend, legend
    answer = console.by(".answer").text  # the client's own answer beside the map
    assert "192.0.2.72" in answer and "pool rest" in answer, answer
    console.shoot("map")
