"""Headless Chromium for the browser tests (on ``sys.path`` through pytest's ``pythonpath``).

Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs both), driven by selenium (the
``[test]`` extra). `require` skips the calling test module, with its reason, where any is missing.
"""

import pathlib

import pytest

CHROMIUM, CHROMEDRIVER = pathlib.Path("/usr/bin/chromium"), pathlib.Path("/usr/bin/chromedriver")


def require():
    """Skips the calling module unless selenium, chromium and chromedriver are here."""
    pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the [test] extra)")
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(
            "needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver)",
            allow_module_level=True,
        )


def chrome(*, script_timeout: float = 30, console_log: bool = False):
    """A headless Chromium driver, 1400x1400; ``console_log`` keeps the browser console for ``get_log``."""
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for a in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1400",
    ):
        opts.add_argument(a)
    if console_log:
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    d.set_script_timeout(script_timeout)
    return d
