from __future__ import annotations

import sys

import pytest
from switchyard import (
    ActionInfo,
    PluginConflictError,
    PluginLoadError,
    PluginValidationError,
    Registry,
    UnknownActionError,
    call_action,
)


def test_entry_point_registry_lists_without_importing(plugins):
    plugins.add(
        "sytest-math",
        "1.2.0",
        actions={"math.add": "sytest_math:add", "math.echo_context": "sytest_math:echo_context"},
        modules={"sytest_math": plugins.source("math")},
    )
    reg = Registry.from_entry_points()
    assert {"math.add", "math.echo_context"} <= set(reg.names())
    assert reg.names() == sorted(reg.names())
    assert "math.add" in reg
    assert len(reg) >= 2
    assert reg.info("math.add") == ActionInfo(
        "math.add", "sytest_math:add", "sytest-math", "1.2.0", None, None
    )
    assert "sytest_math" not in sys.modules
    assert plugins.imported() == []

    action = reg.resolve("math.add")
    assert action.name == "math.add"
    assert "sytest_math" in sys.modules
    assert reg.resolve("math.add") is action
    reg.resolve("math.echo_context")
    assert plugins.imported() == ["sytest_math"]  # imported once for both actions
    assert call_action("math.add", {"a": 1, "b": 2}, registry=reg).total == 3  # type: ignore[attr-defined]


def test_unknown_action_suggests_close_names(plugins):
    plugins.add(
        "sytest-math",
        actions={"math.add": "sytest_math:add"},
        modules={"sytest_math": plugins.source("math")},
    )
    reg = Registry.from_entry_points()
    with pytest.raises(UnknownActionError) as caught:
        reg.resolve("math.ad")
    assert caught.value.suggestions == ("math.add",)
    assert str(caught.value) == "unknown action 'math.ad' (did you mean: math.add?)"
    with pytest.raises(UnknownActionError, match=r"^unknown action 'zzz\.qqq'$"):
        reg.info("zzz.qqq")


def test_conflict_names_both_distributions_and_spares_the_rest(plugins):
    plugins.add(
        "sytest-one",
        actions={"math.add": "sytest_one:add", "math.echo_context": "sytest_one:echo_context"},
        modules={"sytest_one": plugins.source("math")},
    )
    plugins.add(
        "sytest-two",
        actions={"math.add": "sytest_two:add"},
        modules={"sytest_two": plugins.source("math")},
    )
    reg = Registry.from_entry_points()
    conflicts = [p for p in reg.problems() if isinstance(p, PluginConflictError)]
    assert [(c.action, set(c.distributions)) for c in conflicts if c.action == "math.add"] == [
        ("math.add", {"sytest-one", "sytest-two"})
    ]
    assert plugins.imported() == []  # found without importing
    with pytest.raises(PluginConflictError) as caught:
        reg.resolve("math.add")
    assert "sytest-one" in str(caught.value)
    assert "sytest-two" in str(caught.value)
    assert reg.resolve("math.echo_context").name == "math.echo_context"


def test_broken_plugin_breaks_only_its_actions(plugins):
    plugins.add(
        "sytest-broken",
        "0.3.0",
        actions={"broken.fail": "sytest_broken:fail"},
        modules={"sytest_broken": "import sytest_no_such_module\n"},
    )
    plugins.add(
        "sytest-math",
        actions={"math.add": "sytest_math:add"},
        modules={"sytest_math": plugins.source("math")},
    )
    reg = Registry.from_entry_points()
    with pytest.raises(PluginLoadError) as caught:
        reg.resolve("broken.fail")
    error = caught.value
    assert (error.action, error.distribution, error.target) == (
        "broken.fail",
        "sytest-broken",
        "sytest_broken:fail",
    )
    assert isinstance(error.cause, ModuleNotFoundError)
    assert "broken.fail" in str(error)
    assert "sytest-broken" in str(error)
    assert "No module named 'sytest_no_such_module'" in str(error)
    assert error.__cause__ is error.cause
    with pytest.raises(PluginLoadError):
        reg.resolve("broken.fail")  # the failure is remembered
    assert reg.resolve("math.add").name == "math.add"


def test_missing_attribute_is_a_load_error(plugins):
    plugins.add(
        "sytest-math",
        actions={"math.nope": "sytest_math:nope"},
        modules={"sytest_math": plugins.source("math")},
    )
    with pytest.raises(PluginLoadError, match="AttributeError"):
        Registry.from_entry_points().resolve("math.nope")


def test_entry_point_object_must_be_an_action(plugins):
    plugins.add(
        "sytest-odd",
        actions={"odd.plain": "sytest_odd:plain", "odd.renamed": "sytest_odd:renamed"},
        modules={
            "sytest_odd": plugins.source("odd")
            + "\n\ndef plain(x):\n    return x\n\nrenamed = add\n"
        },
    )
    reg = Registry.from_entry_points()
    with pytest.raises(PluginValidationError) as caught:
        reg.resolve("odd.plain")
    assert caught.value.distribution == "sytest-odd"
    assert "'odd.plain'" in str(caught.value)
    assert "function, not a switchyard Action" in str(caught.value)
    with pytest.raises(PluginValidationError) as named:
        reg.resolve("odd.renamed")
    assert "sytest-odd" in str(named.value)
    assert "'odd.renamed'" in str(named.value)
    assert "'odd.add'" in str(named.value)


def test_from_actions_rejects_duplicates_and_non_actions(plugins):
    from switchyard import ActionDefinitionError

    plugins.add(
        "sytest-math",
        actions={"math.add": "sytest_math:add"},
        modules={"sytest_math": plugins.source("math")},
    )
    add = Registry.from_entry_points().resolve("math.add")
    reg = Registry.from_actions(add)
    assert reg.names() == ["math.add"]
    assert reg.info("math.add").queue == "fast"
    assert reg.info("math.add").description == "Add two integers."
    with pytest.raises(ActionDefinitionError, match=r"two actions are named math\.add"):
        Registry.from_actions(add, add)
    with pytest.raises(ActionDefinitionError, match="takes Action objects"):
        Registry.from_actions(lambda: None)  # type: ignore[arg-type]


def test_a_distribution_shadowed_further_down_sys_path_is_not_a_conflict(
    plugins, tmp_path, monkeypatch
):
    import importlib

    plugins.add(
        "sytest-math",
        "2.0.0",
        actions={"math.add": "sytest_math:add"},
        modules={"sytest_math": plugins.source("math")},
    )
    older = tmp_path / "older-site"
    info = older / "sytest_math-1.0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sytest-math\nVersion: 1.0.0\n")
    (info / "entry_points.txt").write_text("[switchyard.actions]\nmath.add = sytest_math:add\n")
    monkeypatch.setattr(sys, "path", [*sys.path, str(older)])  # after the plugins' site folder
    importlib.invalidate_caches()
    reg = Registry.from_entry_points()
    assert reg.info("math.add").dist_version == "2.0.0"
    assert not [p for p in reg.problems() if p.action == "math.add"]
