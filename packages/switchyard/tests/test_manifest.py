from __future__ import annotations

import builtins
import importlib.metadata
import json
import logging
import os
import sys

import pytest
from switchyard import (
    ManifestError,
    PluginLoadError,
    Registry,
    StaleManifestError,
    call_action,
    default_registry,
    write_manifest,
)


@pytest.fixture
def math_plugin(plugins):
    return plugins.add(
        "sytest-math",
        "0.1.0",
        actions={"math.add": "sytest_math:add", "math.echo_context": "sytest_math:echo_context"},
        modules={"sytest_math": plugins.source("math")},
    )


def _own(reg: Registry) -> Registry:
    return Registry([reg.info(n) for n in reg.names() if n.startswith("math.")])


def test_write_and_read_back_without_metadata_scan(plugins, math_plugin, tmp_path, monkeypatch):
    path = tmp_path / "out" / "manifest.json"
    write_manifest(path, _own(Registry.from_entry_points()))
    document = json.loads(path.read_text())
    assert document["format"] == 1
    assert isinstance(document["fingerprint"], str)
    add = next(a for a in document["actions"] if a["name"] == "math.add")
    assert add["target"] == "sytest_math:add"
    assert (add["distribution"], add["dist_version"]) == ("sytest-math", "0.1.0")
    assert (add["queue"], add["policy"]["retries"], add["version"]) == ("fast", 2, "1")
    assert add["policy"] == Registry.from_entry_points().resolve("math.add").policy.to_json()
    assert add["input_schema"]["required"] == ["a", "b"]
    assert add["output_schema"]["title"] == "AddOut"

    for name in list(sys.modules):
        if name.startswith("sytest_math"):
            del sys.modules[name]
    plugins.log.unlink()

    def no_scan(*args, **kwargs):
        raise AssertionError("a manifest registry must not scan installed metadata")

    monkeypatch.setattr(importlib.metadata, "distributions", no_scan)
    monkeypatch.setattr(importlib.metadata, "entry_points", no_scan)
    opened = []
    real_open = builtins.open

    def spy_open(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    listed = []
    real_listdir = os.listdir

    def spy_listdir(folder="."):
        listed.append(folder)
        return real_listdir(folder)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(os, "listdir", spy_listdir)
    reg = Registry.from_manifest(path)
    monkeypatch.setattr(builtins, "open", real_open)
    monkeypatch.setattr(os, "listdir", real_listdir)
    assert opened == [str(path)]  # no entry_points.txt, no METADATA
    assert listed == []  # one stat per sys.path folder and per plugin, nothing more
    assert reg.names() == ["math.add", "math.echo_context"]
    info = reg.info("math.add")
    assert (info.queue, info.description, info.distribution) == (
        "fast",
        "Add two integers.",
        "sytest-math",
    )
    assert plugins.imported() == []
    assert call_action("math.add", {"a": 2, "b": 3}, registry=reg).total == 5  # type: ignore[attr-defined]
    assert plugins.imported() == ["sytest_math"]


def test_a_manifest_written_into_a_folder_on_sys_path_stays_fresh(
    plugins, math_plugin, tmp_path, monkeypatch
):
    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.syspath_prepend(str(here))
    path = write_manifest(here / "m.json", _own(Registry.from_entry_points()))
    (here / "other.txt").write_text("changes the folder's mtime")
    assert Registry.from_manifest(path).names() == ["math.add", "math.echo_context"]


def test_new_plugin_distribution_makes_it_stale(plugins, math_plugin, tmp_path):
    path = write_manifest(tmp_path / "m.json", _own(Registry.from_entry_points()))
    Registry.from_manifest(path)  # fresh
    plugins.add("sytest-unrelated", modules={"sytest_unrelated": ""})
    Registry.from_manifest(path)  # a distribution without switchyard entry points: still fresh
    plugins.add(
        "sytest-geo",
        actions={"geo.add": "sytest_geo:add"},
        modules={"sytest_geo": plugins.source("geo")},
    )
    with pytest.raises(StaleManifestError) as caught:
        Registry.from_manifest(path)
    assert "new distribution sytest-geo provides switchyard.actions" in caught.value.reason
    assert "switchyard manifest write" in str(caught.value)
    assert Registry.from_manifest(path, check_fresh=False).names() == [
        "math.add",
        "math.echo_context",
    ]


def test_version_change_and_removal_are_named(plugins, math_plugin, tmp_path):
    path = write_manifest(tmp_path / "m.json", _own(Registry.from_entry_points()))
    plugins.remove(math_plugin)
    with pytest.raises(StaleManifestError, match=r"sytest-math 0\.1\.0 is no longer installed"):
        Registry.from_manifest(path)
    plugins.add("sytest-math", "0.2.0", actions={"math.add": "sytest_math:add"})
    with pytest.raises(StaleManifestError, match=r"sytest-math 0\.1\.0 -> 0\.2\.0"):
        Registry.from_manifest(path)


def test_a_plugin_folder_that_leaves_sys_path_makes_it_stale(plugins, math_plugin, tmp_path):
    """The folder is still on disk, its files unchanged: only sys.path says the plugin is gone."""
    path = write_manifest(tmp_path / "m.json", _own(Registry.from_entry_points()))
    sys.path.remove(str(plugins.site))  # (the plugins fixture's monkeypatch puts it back)
    with pytest.raises(StaleManifestError, match=r"sytest-math 0\.1\.0 is no longer installed"):
        Registry.from_manifest(path)


def test_a_new_egg_info_plugin_makes_it_stale(plugins, math_plugin, tmp_path, monkeypatch):
    """A legacy install (``setup.py develop``) leaves ``.egg-info`` metadata, here in a sys.path
    folder that held no distribution when the manifest was written."""
    eggs = tmp_path / "eggs"
    eggs.mkdir()
    monkeypatch.syspath_prepend(str(eggs))
    path = write_manifest(tmp_path / "m.json", _own(Registry.from_entry_points()))
    Registry.from_manifest(path)  # fresh
    info = eggs / "sytest_geo-0.1.0-py3.11.egg-info"
    info.mkdir()
    (info / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: sytest-geo\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[switchyard.actions]\ngeo.add = sytest_geo:add\n")
    with pytest.raises(StaleManifestError) as caught:
        Registry.from_manifest(path)
    assert "new distribution sytest-geo provides switchyard.actions" in caught.value.reason


def test_changed_entry_points_of_the_same_version_are_stale(plugins, math_plugin, tmp_path):
    path = write_manifest(tmp_path / "m.json", _own(Registry.from_entry_points()))
    import os
    import time

    entry_points = math_plugin / "entry_points.txt"
    entry_points.write_text("[switchyard.actions]\nmath.add = sytest_math:add\n")
    later = time.time() + 5
    os.utime(entry_points, (later, later))
    with pytest.raises(StaleManifestError, match=r"entry points of sytest-math 0\.1\.0 changed"):
        Registry.from_manifest(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "top level must be a JSON object"),
        ('{"format": 99}', "unsupported format 99"),
        ('{"format": 1, "actions": [{"name": "a.b"}], "hooks": []}', "actions[0]: needs 'name'"),
        ('{"format": 1, "actions": [], "hooks": [3]}', "hooks[0]: needs 'name' and 'target'"),
        (
            '{"format":1,"index_fields":["name","target","distribution","dist_version",'
            '"queue","description"],"index":[["a.b",null,null,null,null,null]],\n"actions":[]}',
            "index[0]: expected",
        ),
        ('{"format": 1, "actions": [], "hooks": []}', "'environment' is missing"),
    ],
)
def test_corrupt_manifests_are_reported(tmp_path, content, message):
    path = tmp_path / "m.json"
    path.write_text(content)
    with pytest.raises(ManifestError) as caught:
        Registry.from_manifest(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_missing_manifest(tmp_path):
    with pytest.raises(ManifestError, match="cannot read it") as caught:
        Registry.from_manifest(tmp_path / "nope.json")
    assert not isinstance(caught.value, StaleManifestError)


def test_write_refuses_broken_plugins(plugins, tmp_path):
    plugins.add(
        "sytest-broken",
        actions={"broken.fail": "sytest_broken:fail"},
        modules={"sytest_broken": "raise ImportError('no')\n"},
    )
    reg = Registry([Registry.from_entry_points().info("broken.fail")])
    with pytest.raises(ManifestError, match=r"cannot load action broken\.fail") as caught:
        write_manifest(tmp_path / "m.json", reg)
    assert isinstance(caught.value.__cause__, PluginLoadError)
    assert not (tmp_path / "m.json").exists()


def test_default_registry_uses_a_fresh_manifest(plugins, math_plugin, tmp_path, monkeypatch):
    path = write_manifest(tmp_path / "m.json", _own(Registry.from_entry_points()))
    monkeypatch.setenv("SWITCHYARD_MANIFEST", str(path))
    reg = default_registry()
    assert reg.source == f"manifest {path}"
    assert reg.problems() == []


def test_default_registry_reports_a_stale_manifest_and_scans(
    plugins, math_plugin, tmp_path, monkeypatch, caplog
):
    path = write_manifest(tmp_path / "m.json", _own(Registry.from_entry_points()))
    plugins.add(
        "sytest-geo",
        actions={"geo.add": "sytest_geo:add"},
        modules={"sytest_geo": plugins.source("geo")},
    )
    monkeypatch.setenv("SWITCHYARD_MANIFEST", str(path))
    with caplog.at_level(logging.WARNING, logger="switchyard"):
        reg = default_registry()
    assert reg.source == "entry points"
    assert "geo.add" in reg
    stale = [p for p in reg.problems() if isinstance(p, StaleManifestError)]
    assert len(stale) == 1
    assert "new distribution sytest-geo" in caplog.text
    assert "using the installed entry points instead" in caplog.text


def test_hook_plugins_come_from_the_manifest(plugins, math_plugin, tmp_path, monkeypatch):
    hooks = (
        "from switchyard import hookimpl\n"
        "CALLS = []\n"
        "@hookimpl\n"
        "def switchyard_before_call(action, context, data):\n"
        "    CALLS.append(action.name)\n"
    )
    plugins.add(
        "sytest-hooks", hooks={"sytest_counter": "sytest_hooks"}, modules={"sytest_hooks": hooks}
    )
    scanned = Registry.from_entry_points()
    own = Registry(
        [scanned.info(n) for n in scanned.names() if n.startswith("math.")],
        hook_entries=[h for h in scanned.hook_entries() if h.distribution == "sytest-hooks"],
    )
    path = write_manifest(tmp_path / "m.json", own)
    assert json.loads(path.read_text())["hooks"] == [
        {"name": "sytest_counter", "target": "sytest_hooks", "distribution": "sytest-hooks"}
    ]
    monkeypatch.setenv("SWITCHYARD_MANIFEST", str(path))
    assert "sytest_hooks" not in sys.modules
    call_action("math.add", {"a": 1, "b": 1})
    import sytest_hooks  # type: ignore[import-not-found]

    assert sytest_hooks.CALLS == ["math.add"]
    assert default_registry().source == f"manifest {path}"
