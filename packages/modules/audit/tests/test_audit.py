from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import acme_audit
import pytest
from switchyard import HandlerError, InvalidInputError, Registry, call_action
from switchyard.testing import make_registry, use_registry


@pytest.fixture(autouse=True)
def registry():
    reg = make_registry(*acme_audit.ACTIONS)
    with use_registry(reg):
        yield reg


@pytest.fixture
def log(tmp_path, monkeypatch):
    """The log the worker (this process) is configured with: no input names it."""
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv(acme_audit.LOG_ENV, str(path))
    return path


def append(log, actor="ada", action="user.login", **extra):
    return call_action("audit.append", {"actor": actor, "action": action, **extra})


def verify(log, **extra):
    return call_action("audit.verify_chain", {**extra})


def rewrite(log, change):
    lines = log.read_text().splitlines()
    change(lines)
    log.write_text("".join(line + "\n" for line in lines))


@pytest.fixture
def three(log):
    return [
        append(log, target="user:1", data={"ip": "10.0.0.1"}),
        append(log, actor="bob", action="invoice.create", data={"total": "12.50"}),
        append(log, action="user.logout"),
    ]


def test_entries_are_numbered_and_chained(log, three):
    assert [e.seq for e in three] == [1, 2, 3]
    assert three[0].prev == "0" * 64
    assert [e.prev for e in three[1:]] == [e.hash for e in three[:-1]]
    out = verify(log)
    assert (out.valid, out.entries, out.head_seq, out.head_hash) == (True, 3, 3, three[-1].hash)
    head = call_action("audit.head", {})
    assert (head.seq, head.hash, head.at) == (3, three[-1].hash, three[-1].at)


def test_edited_entry_is_a_hash_mismatch(log, three):
    def edit(lines):
        entry = json.loads(lines[1])
        entry["data"]["total"] = "1.25"
        lines[1] = json.dumps(entry)

    rewrite(log, edit)
    out = verify(log)
    assert (out.valid, out.reason, out.line, out.seq, out.entries) == (
        False,
        "hash_mismatch",
        2,
        2,
        1,
    )


def test_edited_entry_with_a_recomputed_hash_breaks_the_next_link(log, three):
    import hashlib

    def forge(lines):
        entry = json.loads(lines[1])
        entry["actor"] = "mallory"
        del entry["hash"]
        body = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        entry["hash"] = hashlib.sha256(body.encode()).hexdigest()
        lines[1] = json.dumps(entry)

    rewrite(log, forge)
    out = verify(log)
    assert (out.reason, out.line, out.seq) == ("broken_link", 3, 3)


def test_removed_entry_is_a_sequence_gap(log, three):
    rewrite(log, lambda lines: lines.pop(1))
    out = verify(log)
    assert (out.valid, out.reason, out.line, out.seq) == (False, "sequence_gap", 2, 3)


def test_swapped_entries_are_detected(log, three):
    def swap(lines):
        lines[0], lines[1] = lines[1], lines[0]

    rewrite(log, swap)
    assert verify(log).reason == "sequence_gap"


def test_garbage_line_is_malformed(log, three):
    rewrite(log, lambda lines: lines.insert(2, "{not json"))
    out = verify(log)
    assert (out.reason, out.line, out.seq) == ("malformed", 3, None)


def test_truncation_is_caught_only_with_an_anchor(log, three):
    head = call_action("audit.head", {})
    anchor = {"seq": head.seq, "hash": head.hash}
    assert verify(log, anchor=anchor).valid
    rewrite(log, lambda lines: lines.pop())
    assert verify(log).valid  # a shorter chain is still a chain...
    out = verify(log, anchor=anchor)  # ...but it no longer reaches the recorded head
    assert (out.valid, out.reason, out.head_seq) == (False, "truncated", 2)


def test_anchor_with_another_hash_is_a_mismatch(log, three):
    out = verify(log, anchor={"seq": 2, "hash": "f" * 64})
    assert (out.valid, out.reason, out.seq) == (False, "anchor_mismatch", 2)


def test_append_refuses_to_chain_onto_a_damaged_tail(log, three):
    with log.open("a") as handle:
        handle.write('{"half": "an entry"\n')
    with pytest.raises(HandlerError) as exc:
        append(log)
    assert exc.value.error_type == "DamagedLogError"
    assert "audit.verify_chain" in str(exc.value)


def test_read_filters_and_pages(log, three):
    append(log, actor="bob", action="invoice.void")
    bobs = call_action("audit.read", {"actor": "bob"})
    assert [(e.seq, e.action) for e in bobs.entries] == [(2, "invoice.create"), (4, "invoice.void")]
    first = call_action("audit.read", {"limit": 3})
    assert [e.seq for e in first.entries] == [1, 2, 3]
    assert first.next_after_seq == 3
    rest = call_action("audit.read", {"after_seq": first.next_after_seq})
    assert [e.seq for e in rest.entries] == [4]
    assert rest.next_after_seq is None
    logins = call_action("audit.read", {"action": "user.login"})
    assert logins.entries[0].data == {"ip": "10.0.0.1"}


def test_empty_or_absent_log(log):
    assert call_action("audit.read", {}).entries == []
    out = verify(log)
    assert (out.valid, out.entries, out.head_seq) == (True, 0, 0)
    assert call_action("audit.head", {}).seq == 0


def test_log_path_defaults_to_the_environment_variable(tmp_path, monkeypatch):
    path = tmp_path / "env" / "audit.jsonl"
    monkeypatch.setenv(acme_audit.LOG_ENV, str(path))
    call_action("audit.append", {"actor": "ada", "action": "user.login"})
    assert len(path.read_text().splitlines()) == 1


def test_concurrent_writers_in_separate_processes_keep_one_chain(log):
    script = textwrap.dedent(
        """
        import sys
        import acme_audit
        from switchyard.testing import run
        for i in range(20):
            run(acme_audit.append, {"actor": sys.argv[1], "action": "job.step",
                                    "data": {"i": i}})
        """
    )
    writers = [subprocess.Popen([sys.executable, "-c", script, f"w{n}"]) for n in range(2)]
    assert [w.wait(timeout=60) for w in writers] == [0, 0]
    out = verify(log)
    assert (out.valid, out.entries) == (True, 40)


@pytest.mark.parametrize(
    ("action", "data", "field"),
    [
        ("audit.append", {"actor": "ada lovelace", "action": "user.login"}, "actor"),
        ("audit.append", {"actor": "ada", "action": "User Login"}, "action"),
        ("audit.append", {"actor": "ada", "action": "x", "data": {"v": float("nan")}}, "data"),
        ("audit.append", {"actor": "ada", "action": "x", "data": {"v": "x" * 70_000}}, "data"),
        ("audit.append", {"actor": "ada", "action": "x", "when": "now"}, "when"),
        ("audit.read", {"limit": 0}, "limit"),
        ("audit.read", {"after_seq": -1}, "after_seq"),
        # no input names a file: the log is the worker's configuration ($ACME_AUDIT_LOG)
        ("audit.read", {"log_path": "/etc/passwd"}, "log_path"),
        ("audit.verify_chain", {"anchor": {"seq": 1, "hash": "xyz"}}, "anchor.hash"),
    ],
)
def test_bad_input_names_the_field(log, action, data, field):
    with pytest.raises(InvalidInputError) as exc:
        call_action(action, {**data})
    assert [error.loc for error in exc.value.errors] == [field]
    assert not log.exists()


def test_every_entry_point_resolves_to_the_action_it_names():
    installed = Registry.from_entry_points()
    ours = sorted(action.name for action in acme_audit.ACTIONS)
    assert [name for name in installed.names() if name.startswith("audit.")] == ours
    for name in ours:
        assert installed.info(name).distribution == "acme-audit"
        assert installed.resolve(name).name == name


def test_a_queued_append_round_trips_through_json(log):
    queued = acme_audit.AppendIn(
        actor="ada", action="user.login", data={"n": 1.5, "tags": ["a"]}
    ).model_dump_json()
    entry = call_action("audit.append", queued)
    assert entry.data == {"n": 1.5, "tags": ["a"]}
    assert verify(log).valid
