"""A real client: JupyterLab on loopback, headless Chromium runs the playground notebook.

Checks that the ipywidgets controls and the plot render in the browser (not just in the kernel)
and saves a screenshot to ``runs/browser/06_ablation_playground.png``. Needs Debian's ``chromium``
(``make test`` installs it as root) and the ``playwright`` package (`_browser`); it fails, never skips,
without them.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from _browser import offline_page

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "06_ablation_playground.ipynb"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """JupyterLab serving a copy of the playground notebook; yields (base_url, token)."""
    root, config = tmp_path / "root", tmp_path / "config"
    root.mkdir(), config.mkdir()
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, root / NOTEBOOK)
    (config / "jupyter_server_config.json").write_text(json.dumps({
        "LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                   "extension_manager": "readonly"},
        "ServerApp": {"open_browser": False},
    }))
    settings = config / "lab" / "user-settings" / "@jupyterlab"
    for extension, name, value in [("notebook-extension", "tracker", {"windowingMode": "none"}),
                                   ("apputils-extension", "notification", {"fetchNews": "false"})]:
        (settings / extension).mkdir(parents=True, exist_ok=True)
        (settings / extension / f"{name}.jupyterlab-settings").write_text(json.dumps(value))
    port, token = free_port(), os.urandom(16).hex()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "METAKIT_PROFILE": "smoke", "METAKIT_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],
        env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "lab.log", "wb"))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start; log:\n{(tmp_path / 'lab.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield base, token
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.mark.slow
def test_playground_widgets_and_plot_render_in_chromium(lab):
    base, token = lab
    shots = ROOT / "runs" / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    with offline_page() as (page, seen):
        page.goto(f"{base}/lab/tree/{NOTEBOOK}?token={token}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        try:  # JupyterLab may ask which kernel to start
            page.locator(".jp-Dialog button", has_text="Select").click(timeout=15_000)
        except Exception:
            pass
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-item", has_text="Run All Cells").first.click()
        try:
            page.wait_for_selector("text=✓ best imbalance", timeout=300_000)   # the last cell ran
        except Exception:
            page.screenshot(path=str(shots / "failure.png"), full_page=True)
            errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
            pytest.fail(f"the notebook did not finish in the browser; screenshot {shots / 'failure.png'}; "
                        f"stderr outputs: {errors.all_inner_texts()[:3]}")
        dropdown = page.wait_for_selector(".jupyter-widgets.widget-dropdown select", timeout=60_000)
        plot = page.wait_for_selector(".jupyter-widgets.widget-output img", timeout=60_000)
        assert page.locator(".jupyter-widgets.widget-slider").count() >= 2
        assert dropdown.input_value() == "ce"
        box = plot.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 100
        assert page.locator(".jp-OutputArea-output img").count() >= 2     # the playground and the ablation
        assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'] "
                            ":text('Traceback')").count() == 0
        page.locator(".jupyter-widgets.widget-dropdown").first.scroll_into_view_if_needed()
        page.wait_for_timeout(1000)
        page.screenshot(path=str(shots / "06_ablation_playground.png"))
    print(f"screenshot: {shots / '06_ablation_playground.png'}; blocked non-loopback requests: {seen.outside}")
