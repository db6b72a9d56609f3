"""axe-core (npm, pinned in tests/accessibility/package-lock.json) run inside real Chromium on the
pages the browser tests visit: WCAG 2.1 A and AA rules, a serious or critical violation fails.

The script is injected through WebDriver, which the page's Content-Security-Policy does not
govern, so the IdP's CSP stays as strict in the tests as in production.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.npm_install import NpmUnavailable, npm_ci

HERE = Path(__file__).resolve().parent
AXE_SCRIPT = HERE / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
FAILING_IMPACTS = {"serious", "critical"}

_RUN = """
const done = arguments[arguments.length - 1];
axe.run(document, {runOnly: {type: "tag", values: arguments[0]}, resultTypes: ["violations"]})
  .then(result => done(JSON.stringify(result.violations)))
  .catch(error => done(JSON.stringify({error: String(error)})));
"""


class AxeUnavailable(Exception):
    """axe-core is not installed and cannot be (no npm, or no registry)."""


def axe_source() -> str:
    """The axe-core bundle, installed from the lock file on first use (`npm ci`)."""
    try:
        npm_ci(HERE)
    except NpmUnavailable as error:
        raise AxeUnavailable(str(error)) from None
    return AXE_SCRIPT.read_text(encoding="utf-8")


def violations(driver: Any) -> list[dict[str, Any]]:
    """Every serious or critical WCAG 2.1 A/AA violation on the page the driver shows."""
    if not driver.execute_script("return typeof window.axe === 'object'"):
        driver.execute_script(axe_source())
    answer = json.loads(driver.execute_async_script(_RUN, TAGS))
    assert not isinstance(answer, dict), answer
    return [v for v in answer if v.get("impact") in FAILING_IMPACTS]


def describe(found: list[dict[str, Any]]) -> str:
    lines = []
    for violation in found:
        targets = [", ".join(node["target"]) for node in violation["nodes"][:5]]
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']} → {targets}")
    return "\n".join(lines)


class Auditor:
    """Runs axe on each page it is shown and remembers the pages, so that a test can visit the
    same pages again in the other language."""

    def __init__(self) -> None:
        self.pages: list[str] = []
        self.failures: list[str] = []
        self.unavailable: str | None = None

    def audit(self, driver: Any) -> None:
        """Never stops the test that calls it: without axe-core, `assert_clean` skips instead."""
        lang = driver.execute_script("return document.documentElement.lang")
        url = driver.current_url
        try:
            found = violations(driver)
        except AxeUnavailable as error:
            self.unavailable = str(error)
            found = []
        weak = weak_field_borders(driver)
        if weak:
            self.failures.append(f"{url} [lang={lang}]\nfield borders under 3:1 (1.4.11): {weak}")
        if url not in self.pages:
            self.pages.append(url)
        if found:
            self.failures.append(f"{url} [lang={lang}]\n{describe(found)}")

    def assert_clean(self) -> None:
        assert self.failures == [], "axe-core:\n" + "\n\n".join(self.failures)
        if self.unavailable:
            pytest.skip(self.unavailable)


_FIELD_BORDERS = """
function luminance(css) {
  const [r, g, b] = css.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number).map(v => {
    v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
function background(element) {
  for (let e = element.parentElement; e; e = e.parentElement) {
    const colour = getComputedStyle(e).backgroundColor;
    if (!colour.startsWith("rgba(0, 0, 0, 0)") && colour !== "transparent") return colour;
  }
  return "rgb(255, 255, 255)";
}
return [...document.querySelectorAll(
  "input:not([type=hidden]):not([type=checkbox]):not([type=radio]), select, textarea"
)].map(field => {
  const [a, b] = [luminance(getComputedStyle(field).borderTopColor),
                  luminance(background(field))].sort((x, y) => y - x);
  return [field.name, (a + 0.05) / (b + 0.05)];
});
"""


def weak_field_borders(driver: Any) -> list[tuple[str, float]]:
    """WCAG 1.4.11 (which axe does not check): a text field's border against what surrounds it,
    at least 3:1, so an empty field can be seen."""
    return [(name, round(ratio, 2)) for name, ratio in driver.execute_script(_FIELD_BORDERS)
            if ratio < 3]
