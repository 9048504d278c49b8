"""``--no-sources``: the internal pins in built wheels must accept the versions being built.

A wheel meant for an index names its internal dependencies by version (``Requires-Dist:
acme-core>=1.2``); ``[tool.uv.sources]`` hides a stale pin in the workspace, because uv takes
the member from its folder whatever the pin says. Once published, the pin is all there is.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Mapping
from email.parser import HeaderParser
from pathlib import Path

from ._names import normalize


def wheel_metadata(wheel: Path) -> tuple[str, str, list[str]]:
    """A wheel's name, version and ``Requires-Dist`` lines, from its METADATA."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(
            n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
        )
        text = archive.read(name).decode("utf-8", "replace")
    headers = HeaderParser().parsestr(text)
    return (
        str(headers.get("Name", "")),
        str(headers.get("Version", "")),
        [str(r) for r in headers.get_all("Requires-Dist") or []],
    )


def check_pins(wheels: Iterable[Path], versions: Mapping[str, str | None]) -> list[str]:
    """One line per internal requirement that the version being built does not satisfy.

    ``versions`` maps every workspace member (normalized) to the version being built (the
    built wheel's, else the pyproject's).
    """
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.version import InvalidVersion, Version

    problems: list[str] = []
    for wheel in wheels:
        name, version, requires = wheel_metadata(wheel)
        for raw in requires:
            try:
                requirement = Requirement(raw)
            except InvalidRequirement:
                problems.append(f"{name} {version}: unreadable Requires-Dist {raw!r} in {wheel}")
                continue
            target = normalize(requirement.name)
            if target not in versions:
                continue
            built = versions[target]
            if requirement.url:
                problems.append(
                    f"{name} {version} requires {target} from a direct reference ({raw!r}); "
                    f"a published wheel needs a version range that accepts {target} {built}"
                )
                continue
            if not requirement.specifier or built is None:
                continue
            try:
                accepted = requirement.specifier.contains(Version(built), prereleases=True)
            except InvalidVersion:
                accepted = False
            if not accepted:
                problems.append(
                    f"{name} {version} requires {raw!r}, but {target} {built} is being built; "
                    f"change the pin in {name}'s pyproject or {target}'s version"
                )
    return problems
