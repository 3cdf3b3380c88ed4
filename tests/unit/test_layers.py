"""The house's floors (issue 8): every application module sits in one layer of the
import-linter contract, no import cycle exists, and every task a queue.py sends exists."""

from __future__ import annotations

import graphlib
import tomllib
from pathlib import Path

import grimp
import pytest
from django.conf import settings

from federation import queue as federation_queue
from portal import queue as portal_queue
from portal.celery import app
from requests_app import queue as requests_queue

ROOT = Path(settings.BASE_DIR)
PACKAGES = ("portal", "requests_app", "federation")


def _contract() -> dict:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    [layers] = [c for c in config["contracts"] if c["type"] == "layers"]
    return layers


def _layer_modules() -> list[str]:
    names = []
    for layer in _contract()["layers"]:
        names += [n.strip() for n in layer.replace("|", ":").split(":")]
    return names


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def _application_modules(graph: grimp.ImportGraph) -> list[str]:
    return sorted(m for m in graph.modules if m not in PACKAGES and ".migrations" not in m)


def test_every_application_module_is_in_exactly_one_layer(graph):
    layered = _layer_modules()
    assert len(layered) == len(set(layered)), "a module is named in two layers"
    outside = []
    for module in _application_modules(graph):
        owners = [n for n in layered if module == n or module.startswith(n + ".")]
        if len(owners) != 1:
            outside.append((module, owners))
    assert outside == [], "place each module in one layer of pyproject.toml's contract"


def test_there_is_no_import_cycle(graph):
    order = graphlib.TopologicalSorter(
        {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    )
    try:
        order.prepare()
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


@pytest.mark.parametrize("queue", [portal_queue, requests_queue, federation_queue])
def test_every_task_a_queue_sends_is_registered(queue):
    app.loader.import_default_modules()
    names = [v for k, v in vars(queue).items() if k.isupper() and isinstance(v, str)]
    assert names, f"{queue.__name__} names no task"
    assert [n for n in names if n not in app.tasks] == []


def test_every_task_has_a_time_limit():
    app.loader.import_default_modules()
    ours = [t for name, t in app.tasks.items() if name.split(".")[0] in PACKAGES]
    assert len(ours) >= 15
    for task in ours:
        soft = task.soft_time_limit or app.conf.task_soft_time_limit
        hard = task.time_limit or app.conf.task_time_limit
        assert soft and hard and soft < hard, task.name


def test_every_beat_entry_names_a_registered_task():
    app.loader.import_default_modules()
    tasks = [entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()]
    assert len(tasks) >= 12
    assert [t for t in tasks if t not in app.tasks] == []
