"""The HTML report loads in headless Chromium with every image rendered and no console errors.

Needs Debian's ``chromium`` (``apt-get install -y chromium``); skipped where none is installed.
The report's HTML is copied alone into an empty folder, so a figure that is not embedded shows
up as a broken image. A probe script, added to the copy only, records script errors, failed
loads and console errors and writes them with the image count into the DOM, which Chromium
dumps; console messages Chromium logs itself are read from its stderr as well.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

_CANDIDATES = ("chromium", "chromium-browser", "/usr/bin/chromium", "google-chrome")

_PROBE = """<script>
(function () {
  var errors = [];
  window.addEventListener("error", function (e) {
    var t = e.target;
    var what = (t && (t.currentSrc || t.src || t.href)) || "?";
    errors.push(e.message || ("failed to load " + what).slice(0, 200));
  }, true);
  window.addEventListener("unhandledrejection", function (e) {
    errors.push("unhandled rejection: " + e.reason);
  });
  window.addEventListener("securitypolicyviolation", function (e) {
    errors.push("CSP: " + e.violatedDirective);
  });
  ["error", "warn"].forEach(function (level) {
    var original = console[level];
    console[level] = function () {
      errors.push(level + ": " + Array.prototype.join.call(arguments, " "));
      original.apply(console, arguments);
    };
  });
  window.addEventListener("load", function () {
    var images = Array.prototype.slice.call(document.images);
    var broken = images.filter(function (i) {
      return !i.complete || i.naturalWidth === 0 || i.getBoundingClientRect().width === 0;
    }).map(function (i) { return i.alt || i.src.slice(0, 80); });
    var out = document.createElement("pre");
    out.id = "odebench-probe";
    out.textContent = JSON.stringify({images: images.length, broken: broken, errors: errors});
    document.body.appendChild(out);
  });
})();
</script>"""


def _browser() -> str | None:
    for name in _CANDIDATES:
        path = shutil.which(name)  # absolute paths too, when executable
        if path:
            return path
    return None


BROWSER = _browser()
pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="no headless browser: install Debian's chromium (apt-get install -y chromium)"
)


def _load(html_file: Path, profile: Path) -> tuple[dict, list[str]]:
    """Open `html_file` headless; the probe's report and Chromium's own console lines."""
    command = [
        BROWSER,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--dump-dom",
        html_file.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    found = re.search(r'<pre id="odebench-probe">(.*?)</pre>', done.stdout, re.S)
    assert found, (
        f"Chromium exited {done.returncode} without the probe's output; stderr:\n{done.stderr[-3000:]}"
    )
    probe = json.loads(html.unescape(found.group(1)))
    console = [line for line in done.stderr.splitlines() if re.search(r":CONSOLE[:(]", line)]
    return probe, console


def test_report_html_renders_every_image_without_console_errors(report_dir, tmp_path):
    page = tmp_path / "page"
    page.mkdir()
    text = (report_dir / "report.html").read_text(encoding="utf-8")
    assert "<head>" in text
    (page / "report.html").write_text(text.replace("<head>", "<head>\n" + _PROBE, 1), encoding="utf-8")

    probe, console = _load(page / "report.html", tmp_path / "profile")

    assert probe["images"] == len(list((report_dir / "figures").glob("*.png"))) == 7
    assert probe["broken"] == []
    assert probe["errors"] == []
    assert console == []


def test_the_probe_catches_broken_images_and_errors(tmp_path):
    """Guard against a probe that passes everything."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        f"<!DOCTYPE html><html><head>{_PROBE}</head><body><img src='missing.png' alt='gone'>"
        "<script>console.error('boom'); undefined_function();</script></body></html>"
    )
    probe, console = _load(bad, tmp_path / "profile")
    assert probe["broken"] == ["gone"]
    assert any("boom" in e for e in probe["errors"]) and any(
        "undefined_function" in e for e in probe["errors"]
    )
    assert any("failed to load" in e and "missing.png" in e for e in probe["errors"])
    assert console
