"""The dashboard's path allow-list (app/paths.py) and its launcher (app/launch.py).

Issue #14 item 5: a label-augmented file whose recorded source is `imagefolder:/outside`
made a dashboard job read that folder; class folders linked to outside the workspace were
followed; `streamlit run /abs/path/app/main.py` started elsewhere listened on every interface.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the app package lives at the repository root
    sys.path.insert(0, str(ROOT))

from app.launch import streamlit_command  # noqa: E402
from app.paths import PathNotAllowed, check_path, check_source  # noqa: E402
from ladd.sets import LabelAugmentedSet, load_set  # noqa: E402


@pytest.fixture
def roots(tmp_path, monkeypatch) -> tuple[Path, Path, Path]:
    """(workspace, an allowed extra folder, a folder outside both)."""
    ws, extra, outside = tmp_path / "ws", tmp_path / "extra", tmp_path / "outside"
    for p in (ws, extra, outside):
        p.mkdir()
    monkeypatch.setenv("LADD_WORKSPACE", str(ws))
    monkeypatch.setenv("LADD_ALLOWED_DIRS", str(extra))
    monkeypatch.delenv("LADD_SHARED_DATA", raising=False)
    return ws, extra, outside


def images(folder: Path, count: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.new("RGB", (8, 8), (40 * i, 90, 30)).save(folder / f"{i}.png")
    return folder


# ---------------------------------------------------------------------------------------------
# A set's recorded source


def test_a_set_whose_source_is_an_outside_folder_is_refused(roots) -> None:
    """The file is inside the workspace, its metadata names a folder outside: the source
    check refuses it before any job loads that folder (app/tasks.py calls check_source)."""
    ws, _, outside = roots
    images(outside / "secret" / "cat")
    la = LabelAugmentedSet(
        images=torch.rand(2, 3, 8, 8),
        labels=torch.tensor([0, 1]),
        dense=torch.full((2, 4, 2), 0.5),
        n=2,
        r=0.5,
        class_names=("a", "b"),
        mean=(0.5,) * 3,
        std=(0.25,) * 3,
        source=f"imagefolder:{outside / 'secret'}",
    )
    path = la.save(ws / "sets" / "la.safetensors")
    source = load_set(check_path(path)).source  # the file itself may be read
    with pytest.raises(PathNotAllowed, match="outside the folders the dashboard may read"):
        check_source(source)


def test_cam_images_of_a_run_whose_source_is_an_outside_folder_are_refused(roots) -> None:
    """Compare runs reads CAM images from the runs' recorded source: checked the same way."""
    from app import cache

    _, _, outside = roots
    images(outside / "secret" / "cat")
    with pytest.raises(PathNotAllowed, match="outside the folders the dashboard may read"):
        cache.cam_inputs(f"imagefolder:{outside / 'secret'}", 8)


def test_sources_inside_the_roots_and_named_sources_pass(roots, monkeypatch) -> None:
    ws, extra, _ = roots
    images(extra / "mine" / "cat")
    assert check_source(f"imagefolder:{extra / 'mine'}") == f"imagefolder:{extra / 'mine'}"
    assert check_source("cifar10") == "cifar10" and check_source("shapes") == "shapes"
    monkeypatch.chdir(ws)  # a relative path is resolved as ladd resolves it: from the cwd
    images(ws / "rel" / "cat")
    assert check_source("imagefolder:rel") == f"imagefolder:{(ws / 'rel').resolve()}"
    with pytest.raises(PathNotAllowed):
        check_source("imagefolder:../outside")
    with pytest.raises(PathNotAllowed):
        check_source("imagefolder:")


def test_a_source_inside_the_roots_with_a_class_folder_linked_outside_is_refused(roots) -> None:
    _, extra, outside = roots
    images(extra / "mine" / "cat")
    (extra / "mine" / "dog").symlink_to(images(outside / "dog"))
    with pytest.raises(PathNotAllowed, match="symlink"):
        check_source(f"imagefolder:{extra / 'mine'}")


# ---------------------------------------------------------------------------------------------
# Symlinks inside folders the dashboard reads


def test_a_class_folder_linked_outside_is_refused(roots) -> None:
    ws, _, outside = roots
    images(ws / "set" / "cat")
    (ws / "set" / "dog").symlink_to(images(outside / "dog"))
    with pytest.raises(PathNotAllowed, match=r"set/dog is a symlink to .*outside"):
        check_path("set")


def test_an_image_linked_outside_is_refused(roots) -> None:
    ws, _, outside = roots
    images(ws / "set" / "cat")
    images(outside / "x")
    (ws / "set" / "cat" / "2.png").symlink_to(outside / "x" / "0.png")
    with pytest.raises(PathNotAllowed, match="symlink"):
        check_path(ws / "set")


def test_links_within_the_roots_and_link_loops_are_fine(roots) -> None:
    ws, extra, _ = roots
    images(ws / "set" / "cat")
    (ws / "set" / "dog").symlink_to(images(extra / "dog"))  # another allowed root
    (ws / "set" / "cat" / "up").symlink_to("..")  # a loop: searched once, not forever
    (ws / "set" / "cat" / "self").symlink_to("self")  # a link to itself resolves nowhere
    assert check_path("set") == (ws / "set").resolve()


def test_a_link_inside_the_roots_that_leads_on_to_outside_is_refused(roots) -> None:
    """Linked folders inside the roots are searched too: extra/hop links on to outside."""
    ws, extra, outside = roots
    images(ws / "set" / "cat")
    (extra / "hop").mkdir()
    (extra / "hop" / "far").symlink_to(images(outside / "far"))
    (ws / "set" / "dog").symlink_to(extra / "hop")
    with pytest.raises(PathNotAllowed, match="far is a symlink"):
        check_path("set")


# ---------------------------------------------------------------------------------------------
# The launcher binds to loopback wherever it is started


def test_the_command_passes_loopback_and_the_config_explicitly(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # not the repository: .streamlit/config.toml is not found here
    argv = streamlit_command(8765)
    assert argv[1:4] == ["-m", "streamlit", "run"]
    assert Path(argv[4]).is_absolute() and Path(argv[4]) == ROOT / "app" / "main.py"
    flags = dict(arg[2:].split("=", 1) for arg in argv[5:])
    assert flags["server.address"] == "127.0.0.1"
    assert flags["browser.serverAddress"] == "127.0.0.1"
    assert flags["server.port"] == "8765"
    assert flags["server.headless"] == "true" and flags["server.enableXsrfProtection"] == "true"
    assert flags["server.maxUploadSize"] == "200"  # the rest of config.toml comes along
    with pytest.raises(ValueError, match="port"):
        streamlit_command(0)


def test_the_config_cannot_open_the_bind_address(tmp_path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[server]\naddress = "0.0.0.0"\nport = 80\n')
    flags = dict(arg[2:].split("=", 1) for arg in streamlit_command(9000, config=config)[5:])
    assert flags["server.address"] == "127.0.0.1" and flags["server.port"] == "9000"


def _listening(port: int) -> list[str]:
    """Local addresses (hex, as /proc/net shows them) with a listening socket on `port`."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        with open(table) as f:
            for line in f.read().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    found.append(local.rsplit(":", 1)[0])
    return found


@pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="reads Linux's /proc/net/tcp")
def test_started_from_another_folder_it_listens_on_loopback_only(tmp_path) -> None:
    """A real start from a folder without the config: one listening socket, on 127.0.0.1
    (`streamlit run /abs/app/main.py` listened on [::], every interface)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, LADD_WORKSPACE=str(tmp_path / "ws"))
    proc = subprocess.Popen(
        streamlit_command(port),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not _listening(port):
            assert proc.poll() is None, "streamlit exited before listening"
            assert time.monotonic() < deadline, "streamlit did not start listening in 60 s"
            time.sleep(0.2)
        assert _listening(port) == ["0100007F"]  # 127.0.0.1, and no other address
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_training_job_refuses_a_sets_source_outside_the_allowed_roots(tmp_path, monkeypatch):
    """A label-augmented file whose metadata names `imagefolder:/outside` must not make the
    dashboard's training job read that folder (the set's source is data, not a permission)."""
    import dataclasses

    import torch

    from app import tasks
    from app.jobs import registry
    from ladd.sets import LabelAugmentedSet
    from ladd.training import TrainConfig

    outside = tmp_path / "outside"
    (outside / "cls").mkdir(parents=True)
    monkeypatch.setenv("LADD_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setenv("LADD_ALLOWED_DIRS", "")
    monkeypatch.delenv("LADD_SHARED_DATA", raising=False)
    la = LabelAugmentedSet(
        images=torch.zeros(2, 3, 8, 8),
        labels=torch.tensor([0, 1]),
        dense=torch.full((2, 4, 2), 0.5),
        n=2,
        r=0.5,
        class_names=("a", "b"),
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
    )
    la = dataclasses.replace(la, source=f"imagefolder:{outside}")
    path = la.save(tmp_path / "ws" / "sets" / "la.safetensors")
    before = len(registry().jobs("train"))
    with pytest.raises(Exception, match="outside the folders"):  # at the click, on the page
        tasks.plan_training_job(
            str(tmp_path / "ws"), str(path), TrainConfig(epochs=1, seeds=(0,)), device="cpu"
        )
    assert len(registry().jobs("train")) == before  # no job was started
