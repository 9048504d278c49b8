"""The ``yard build``, ``yard cache`` and ``yard slice`` commands."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import YardError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._build import BuildOptions
    from ._remote import RemoteCache
    from ._slice import Selection
    from ._workspace import Workspace

COMMANDS = ("build", "cache", "slice", "test")
EXIT_FAILED = 1


def remote_options() -> argparse.ArgumentParser:
    """The remote cache options of build, slice and test (see docs/yard-build.md)."""
    remote = argparse.ArgumentParser(add_help=False)
    remote.add_argument(
        "--remote-cache",
        metavar="URL",
        help="a remote cache (Bazel's HTTP protocol) for this run; default: $YARD_REMOTE_CACHE, "
        "else [tool.yard.cache] remote",
    )
    remote.add_argument("--no-remote-cache", action="store_true", help="use the local cache only")
    remote.add_argument(
        "--remote-read-only", action="store_true", help="download from the remote, never upload"
    )
    return remote


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add build, cache, slice and test to the ``yard`` subcommands."""
    from ._testcli import add_parser as add_test

    remote = remote_options()
    shared = argparse.ArgumentParser(add_help=False, parents=[remote])
    shared.add_argument("--jobs", "-j", metavar="N", help="parallel builds (default: cores + 1)")
    shared.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="build cache folder (default: ~/.cache/yard/build)",
    )
    shared.add_argument("--json", action="store_true", help="print the result as JSON")

    build = commands.add_parser(
        "build",
        help="build wheels, dependencies first, in parallel, from the cache",
        parents=[common, shared],
    )
    build.add_argument("members", nargs="*", metavar="MEMBER", help="members to build")
    build.add_argument("--all", action="store_true", help="every member")
    build.add_argument("--affected", action="store_true", help="what a git change affects")
    build.add_argument("--base", metavar="REF", help="with --affected: compare against REF")
    build.add_argument("--head", metavar="REF", help="with --affected: the changed ref")
    build.add_argument(
        "--shard", metavar="I/N", help="only shard I of N of the selection (1-based)"
    )
    build.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: dist/)")
    build.add_argument("--sdist", action="store_true", help="build source distributions too")
    build.add_argument(
        "--no-sources",
        action="store_true",
        help="build as for publishing: ignore [tool.uv.sources], check internal pins",
    )

    cache = commands.add_parser("cache", help="the build cache", parents=[common])
    actions = cache.add_subparsers(dest="cache_command", metavar="ACTION")
    actions.required = True
    cache_shared = argparse.ArgumentParser(add_help=False)
    cache_shared.add_argument("--cache-dir", type=Path, metavar="DIR", help="build cache folder")
    info = actions.add_parser(
        "info", help="where it is, entries, size", parents=[common, cache_shared]
    )
    info.add_argument("--json", action="store_true", help="print JSON")
    prune = actions.add_parser(
        "prune", help="drop least recently used entries", parents=[common, cache_shared]
    )
    prune.add_argument("--max-size", required=True, metavar="SIZE", help="e.g. 500M, 2G")

    slice_ = commands.add_parser(
        "slice",
        help="the wheels a plugin consumer needs for chosen plugins, with manifest",
        parents=[common, shared],
    )
    slice_.add_argument("--consumer", required=True, metavar="MEMBER", help="e.g. the worker")
    slice_.add_argument(
        "--include",
        action="append",
        metavar="GLOBS",
        help="entry-point name globs, comma-separated",
    )
    slice_.add_argument(
        "--queue", action="append", metavar="NAME", help="entry points routed to this queue"
    )
    slice_.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    add_test(commands, remote)


def _jobs(text: str | None) -> int:
    if text is None:
        return (os.cpu_count() or 1) + 1  # a build waits on process start and files too
    if not text.isdigit() or int(text) < 1:
        raise YardError(f"--jobs {text}: expected a whole number of at least 1")
    return int(text)


def _cache_dir(args: argparse.Namespace) -> Path:
    from ._cache import default_cache_dir

    return args.cache_dir.absolute() if args.cache_dir is not None else default_cache_dir()


def open_remote(args: argparse.Namespace, root: Path) -> tuple[RemoteCache | None, list[str]]:
    """The remote cache the options, the environment and the root pyproject name (or None),
    and the list its warnings are collected in (each is also printed on stderr at once)."""
    from ._cacheconf import remote_settings
    from ._remote import RemoteCache

    settings = remote_settings(
        root,
        url=args.remote_cache,
        disabled=args.no_remote_cache,
        read_only=args.remote_read_only,
    )
    warnings: list[str] = []
    if settings is None:
        return None, warnings

    def warn(line: str) -> None:
        warnings.append(line)
        print(f"yard: warning: {line}", file=sys.stderr, flush=True)

    return RemoteCache(settings, warn=warn), warnings


def run(args: argparse.Namespace, root: Path) -> int:
    """Run one of :data:`COMMANDS`."""
    if args.command == "cache":
        return _cache(args)
    if args.command == "test":
        from ._testcli import run_test

        return run_test(args, root)
    jobs = _jobs(args.jobs)  # bad input fails before anything is read
    if args.command == "build" and args.shard:
        from ._cli import _shard

        args.shard = _shard(args.shard)
    from ._cli import warn
    from ._workspace import load_workspace

    workspace = load_workspace(root)
    warn(workspace.warnings)
    if args.command == "slice":
        return _slice(args, workspace, jobs)
    return _build(args, workspace, jobs)


def _cache(args: argparse.Namespace) -> int:
    from ._cache import BuildCache, human_size, parse_size

    cache = BuildCache(_cache_dir(args))
    if args.cache_command == "info":
        info = cache.info()
        if args.json:
            print(json.dumps(info, indent=2))
        else:
            print(f"cache:   {info['path']}")
            kinds = info["kinds"]
            print(
                f"entries: {info['entries']} ({len(info['members'])} member(s)): "
                f"{kinds['build']} build(s), {kinds['test']} test result(s)"
            )
            print(f"size:    {human_size(info['size'])}")
        return 0
    limit = parse_size(args.max_size)
    removed, freed = cache.prune(limit)
    print(f"pruned {removed} entr{'y' if removed == 1 else 'ies'}, freed {human_size(freed)}")
    return 0


def _select(args: argparse.Namespace, workspace: Workspace) -> list[str]:
    chosen = sum(bool(x) for x in (args.members, args.all, args.affected))
    if chosen != 1:
        raise YardError("choose what to build: MEMBER ..., --all, or --affected --base REF")
    if (args.base or args.head) and not args.affected:
        raise YardError("--base and --head go with --affected")
    if args.all:
        return list(workspace.members)
    if args.members:
        return sorted({workspace.member(name).name for name in args.members})
    if not args.base:
        raise YardError("--affected needs --base REF (e.g. --base origin/main)")
    from ._affected import compute_affected
    from ._cli import warn
    from ._git import PendingChange
    from ._graph import Graph
    from ._workspace import load_workspace

    pending = PendingChange(workspace.root, args.base, args.head)
    try:
        at_head = workspace if args.head is None else load_workspace(workspace.root, rev=args.head)
        graph = Graph(at_head.members)
        found = compute_affected(at_head, graph, base=args.base, head=args.head, pending=pending)
    finally:
        pending.close()  # stops git when an error came first
    warn(found.warnings)
    missing = [name for name in found.affected if name not in workspace.members]
    if missing:
        raise YardError(
            f"{', '.join(missing)}: affected as of {args.head} but not in the working tree, "
            f"which yard build builds; check out {args.head} to build them"
        )
    return list(found.affected)


def _build(args: argparse.Namespace, workspace: Workspace, jobs: int) -> int:
    from ._build import BuildOptions

    names = _select(args, workspace)
    if args.shard:  # deterministic and balanced, as yard affected --shard
        index, count = args.shard
        names = sorted(names)[index - 1 :: count]
    out = args.out.absolute() if args.out is not None else workspace.root / "dist"
    options = BuildOptions(
        out=out, cache=_cache_dir(args), jobs=jobs, sdist=args.sdist, no_sources=args.no_sources
    )
    if not names:
        return _nothing(args, "nothing to build: no member is affected")
    return _execute(args, workspace, names, options, slice_selection=None)


def _with_remote(options: BuildOptions, remote: RemoteCache | None) -> BuildOptions:
    from dataclasses import replace

    return replace(options, remote=remote)


def _slice(args: argparse.Namespace, workspace: Workspace, jobs: int) -> int:
    from ._build import BuildOptions
    from ._manifests import manifest_config, providers
    from ._slice import consumer_group, select, split_globs

    config = manifest_config(workspace.root)
    consumer = workspace.member(args.consumer).name
    group = consumer_group(workspace, consumer, config.group if config else None)
    selection = select(
        workspace,
        consumer=consumer,
        group=group,
        providers=providers(workspace, group),
        include=split_globs(args.include),
        queues=split_globs(args.queue),
    )
    options = BuildOptions(out=args.out.absolute(), cache=_cache_dir(args), jobs=jobs)
    return _execute(args, workspace, list(selection.members), options, slice_selection=selection)


def _execute(
    args: argparse.Namespace,
    workspace: Workspace,
    names: list[str],
    options: BuildOptions,
    *,
    slice_selection: Selection | None,
) -> int:
    from . import _progress
    from ._build import AfterTask, MemberResult, build
    from ._cache import BuildCache
    from ._manifests import (
        ManifestResult,
        install_set,
        lock_constraints,
        manifest_config,
        write_manifest,
    )

    config = manifest_config(workspace.root)
    consumers: dict[str, list[str]] = {}
    if config is not None:
        shipped = set(names)
        for name in names:
            if config.group in workspace.members[name].consumes:
                consumers[name] = sorted(
                    m for m in shipped if config.group in workspace.members[m].provides
                )
    support = {m for c, ps in consumers.items() for m in install_set(workspace, c, ps)}
    support -= set(names)
    stream = sys.stdout
    reporter = _progress.reporter(stream, quiet=args.json)
    written: dict[str, ManifestResult | str] = {}

    def manifest_task(consumer: str, plugins: list[str]) -> AfterTask:
        """Write ``consumer``'s manifest as soon as the wheels it installs exist (in the build's
        pool, alongside the builds still running)."""
        assert config is not None  # consumers come from it
        needed = install_set(workspace, consumer, plugins)

        def run(results: Mapping[str, MemberResult]) -> None:
            wheels = {}
            for m in needed:
                entry = results[m].cached
                path = entry.path(".whl") if entry is not None else None
                if path is not None:
                    wheels[m] = path
            missing = [m for m in needed if m not in wheels]
            if missing:
                written[consumer] = (
                    f"manifest for {consumer} not written: {', '.join(missing)} did not build"
                )
                return
            written[consumer] = write_manifest(
                workspace,
                config,
                consumer=consumer,
                plugins=plugins,
                wheels=wheels,
                keys={m: results[m].key for m in needed},
                cache=BuildCache(options.cache),
                out=options.out,
                python=options.python,
            )

        return AfterTask(frozenset(needed), run)

    tasks = [manifest_task(c, ps) for c, ps in consumers.items()]
    remote, warnings = open_remote(args, workspace.root)
    try:
        report = build(
            workspace, names, _with_remote(options, remote), reporter, support=support, after=tasks
        )
    finally:
        if remote is not None:
            remote.close()
    if remote is not None:
        report.extra["remote"] = remote.describe()
        report.extra["warnings"] = warnings
    results = report.results
    if options.no_sources:
        from ._pins import check_pins

        built = [p for r in results.values() if r.target for p in r.artifacts if p.suffix == ".whl"]
        versions = {n: m.version for n, m in workspace.members.items()}
        report.errors.extend(check_pins(built, versions))
    manifests: list[ManifestResult] = []
    for consumer in consumers:
        done = written.get(consumer, f"manifest for {consumer} not written: internal error")
        if isinstance(done, str):
            report.errors.append(done)
            continue
        manifests.append(done)
        if done.error:
            report.errors.append(done.error)
    report.extra["manifests"] = [m.as_dict() for m in manifests]
    if slice_selection is not None:
        from ._slice import write_slice_files

        lock_path = workspace.root / "uv.lock"
        lock_text = lock_path.read_text(encoding="utf-8") if lock_path.is_file() else None
        wheels_out = [p for r in results.values() if r.target for p in r.artifacts]
        manifest_path = manifests[0].path if manifests else None
        report.extra["slice"] = write_slice_files(
            options.out,
            slice_selection,
            wheels_out,
            lock_constraints(lock_text, workspace.members),
            manifest_path,
        )
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(_progress.table(report))
        for done in manifests:
            if done.path is not None:
                how = "from cache" if done.state == "cache" else "written"
                print(f"manifest {done.path} ({how}, {len(done.plugins)} plugin(s))")
        if "slice" in report.extra:
            print(f"install: {report.extra['slice']['install']}")
    _progress.failures(report)
    for line in report.errors:
        print(f"yard: error: {line}", file=sys.stderr)
    return 0 if report.ok else EXIT_FAILED


def _nothing(args: argparse.Namespace, message: str) -> int:
    """Report an empty selection (not an error: nothing is affected)."""
    if args.json:
        empty = {"built": 0, "from_cache": 0, "skipped": 0, "failed": 0, "seconds": 0.0}
        data = {"ok": True, "summary": empty, "members": [], "manifests": [], "errors": []}
        print(json.dumps(data, indent=2))
    else:
        print(message)
    return 0
