"""Throwaway venvs for the cold-start benchmark (see coldstart.py).

One venv per plugin count N, each built by uv and holding:

- about 200 ordinary distributions: real PyPI packages pinned in ``coldstart_ordinary.txt``
  (requests, flask, sqlalchemy, celery, sphinx, ipython, ... and their dependencies);
- switchyard, built from this workspace as a wheel and installed non-editable, with pydantic,
  pluggy and stevedore;
- N generated plugin distributions, each a real wheel (dist-info with METADATA, WHEEL,
  entry_points.txt and a RECORD of sha256 hashes) installed by ``uv pip install``. Each plugin
  module imports stdlib modules as a real plugin would, defines pydantic models and registers
  three actions in the entry-point group ``switchyard.actions``.

Everything is installed with ``--compile-bytecode``, as a production image would be, so no run
pays for compiling. A venv is reused while its inputs (the pinned list, the plugin template, the
switchyard sources) are unchanged; a changed switchyard is reinstalled in place.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

BENCH_DIR: Final = Path(__file__).resolve().parent
ROOT: Final = BENCH_DIR.parent
ORDINARY: Final = BENCH_DIR / "coldstart_ordinary.txt"
CORE: Final = ROOT / "packages" / "switchyard"
PLUGIN_PREFIX: Final = "benchplug_"
ACTIONS_PER_PLUGIN: Final = 3
# The first call: one action of the plugin in the middle of the installed ones.
CALL_PAYLOAD: Final = {
    "customer": "ACME Corp",
    "currency": "EUR",
    "lines": [
        {"sku": "ABC-0001", "quantity": 3, "unit_price": "19.99"},
        {"sku": "XYZ-0420", "quantity": 1, "unit_price": "250.00"},
    ],
}
CALL_TOTAL: Final = "371.96"  # (3 * 19.99 + 250.00) * 1.20 VAT, to cents

PLUGIN_TEMPLATE: Final = '''\
"""Orders, customers and events for tenant {index:03d} (a generated benchmark plugin)."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import enum
import hashlib
import json
import re
import uuid

from pydantic import BaseModel, ConfigDict, Field

from switchyard import Context, action

_EVENT = re.compile(r"^(?P<kind>[a-z]+)\\.(?P<verb>[a-z_]+)$")


class Currency(str, enum.Enum):
    EUR = "EUR"
    USD = "USD"
    GBP = "GBP"


@dataclasses.dataclass(frozen=True, slots=True)
class _Tax:
    rate: decimal.Decimal

    def apply(self, amount: decimal.Decimal) -> decimal.Decimal:
        gross = amount * (1 + self.rate)
        return gross.quantize(decimal.Decimal("0.01"), rounding=decimal.ROUND_HALF_EVEN)


_VAT = _Tax(decimal.Decimal("0.20"))


class Line(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sku: str = Field(pattern=r"^[A-Z]{{3}}-[0-9]{{4}}$")
    quantity: int = Field(ge=1, le=10_000)
    unit_price: decimal.Decimal = Field(gt=0, max_digits=12, decimal_places=2)


class QuoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer: str = Field(min_length=1, max_length=200)
    currency: Currency = Currency.EUR
    lines: list[Line] = Field(min_length=1, max_length=500)
    requested_at: dt.datetime | None = None


class QuoteOut(BaseModel):
    quote_id: str
    currency: Currency
    total: decimal.Decimal
    digest: str
    valid_until: dt.datetime


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(pattern=r"^[^@\\s]+@[^@\\s]+$", max_length=320)
    tags: list[str] = Field(default_factory=list, max_length=20)


class CustomerOut(BaseModel):
    customer_id: str
    token: str


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=100)
    body: str = Field(max_length=65_536)


class EventOut(BaseModel):
    kind: str
    verb: str
    keys: list[str]


@action("p{index:03d}.quote_order", description="Price an order with VAT.", queue="fast",
        retries=2, timeout=5.0)
def quote_order(data: QuoteIn, ctx: Context) -> QuoteOut:
    net = sum((line.unit_price * line.quantity for line in data.lines), decimal.Decimal(0))
    total = _VAT.apply(net)
    now = data.requested_at or dt.datetime.now(dt.timezone.utc)
    digest = hashlib.sha256(data.model_dump_json().encode()).hexdigest()
    return QuoteOut(
        quote_id=str(uuid.uuid5(uuid.NAMESPACE_URL, ctx.call_id)),
        currency=data.currency,
        total=total,
        digest=digest,
        valid_until=now + dt.timedelta(days=30),
    )


@action("p{index:03d}.register_customer", description="Register a customer by email.")
def register_customer(data: CustomerIn) -> CustomerOut:
    key = hashlib.blake2b(data.email.lower().encode(), digest_size=16).digest()
    return CustomerOut(
        customer_id=key.hex(), token=base64.urlsafe_b64encode(key).decode().rstrip("=")
    )


@action("p{index:03d}.parse_event", description="Parse a JSON event.", queue="bulk")
def parse_event(data: EventIn) -> EventOut:
    match = _EVENT.match(data.name)
    if match is None:
        raise ValueError(f"bad event name {{data.name!r}}")
    return EventOut(kind=match["kind"], verb=match["verb"], keys=sorted(json.loads(data.body)))
'''

ENTRY_POINTS: Final = (
    "quote_order",
    "register_customer",
    "parse_event",
)


def plugin_module(index: int) -> str:
    """The import name of plugin ``index``."""
    return f"{PLUGIN_PREFIX}{index:03d}"


def call_action_name(n: int) -> str:
    """The action whose first call is measured in the venv with ``n`` plugins."""
    return f"p{n // 2:03d}.quote_order"


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()[:16]


def _record_hash(data: bytes) -> str:
    raw = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={raw}"


def write_plugin_wheel(index: int, out_dir: Path) -> Path:
    """Write plugin ``index`` as a py3-none-any wheel into ``out_dir``; return its path."""
    module = plugin_module(index)
    dist = f"benchplug-{index:03d}"
    version = "1.0.0"
    info = f"{module}-{version}.dist-info"
    eps = "\n".join(f"p{index:03d}.{name} = {module}.actions:{name}" for name in ENTRY_POINTS)
    files: dict[str, bytes] = {
        f"{module}/__init__.py": f'"""Benchmark plugin {index:03d}."""\n'.encode(),
        f"{module}/actions.py": PLUGIN_TEMPLATE.format(index=index).encode(),
        f"{module}/py.typed": b"",
        f"{info}/METADATA": (
            "Metadata-Version: 2.3\n"
            f"Name: {dist}\n"
            f"Version: {version}\n"
            f"Summary: Orders, customers and events for tenant {index:03d}\n"
            "Requires-Python: >=3.11\n"
            "Requires-Dist: pydantic>=2.7\n"
            "Requires-Dist: switchyard\n"
        ).encode(),
        f"{info}/WHEEL": (
            b"Wheel-Version: 1.0\n"
            b"Generator: switchyard-coldstart-benchmark\n"
            b"Root-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
        f"{info}/entry_points.txt": f"[switchyard.actions]\n{eps}\n".encode(),
    }
    record = "".join(f"{p},{_record_hash(d)},{len(d)}\n" for p, d in files.items())
    record += f"{info}/RECORD,,\n"
    files[f"{info}/RECORD"] = record.encode()
    path = out_dir / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as whl:
        for name, data in files.items():
            whl.writestr(name, data)
    return path


def _core_digest() -> str:
    parts: list[bytes] = []
    for path in sorted((CORE / "src").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            parts += [str(path.relative_to(CORE)).encode(), path.read_bytes()]
    parts.append((CORE / "pyproject.toml").read_bytes())
    return _digest(*parts)


def _run(cmd: list[str], *, quiet: bool = True) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=clean_env())
    if proc.returncode != 0:
        raise RuntimeError(
            f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}{proc.stderr}"
        )
    if not quiet:
        print(proc.stdout, end="")
    return proc.stdout


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the measured processes get: the caller's, without venv/uv/switchyard
    variables that would change what Python imports or which registry switchyard builds."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SWITCHYARD_", "UV_", "PYTHON", "VIRTUAL_ENV", "CONDA"))
    }
    env.update(extra or {})
    return env


@dataclass(frozen=True, slots=True)
class BenchEnv:
    """One built venv: N plugins, its interpreter and its manifest."""

    n: int
    venv: Path
    manifest: Path
    distributions: int  # every distribution installed in the venv
    ordinary: int  # of which from the pinned PyPI list (excluding switchyard's own deps)

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def action(self) -> str:
        return call_action_name(self.n)


class Builder:
    """Builds (or reuses) the venvs under ``workdir``."""

    def __init__(self, workdir: Path, *, log: bool = True) -> None:
        self.workdir = workdir
        self.wheels = workdir / "wheels"
        self.log = log
        self._core_wheel: Path | None = None

    def _say(self, message: str) -> None:
        if self.log:
            print(f"[coldstart] {message}", file=sys.stderr, flush=True)

    def core_wheel(self) -> Path:
        """switchyard's wheel, built from the workspace sources (cached by their digest)."""
        if self._core_wheel is None:
            out = self.wheels / f"switchyard-{_core_digest()}"
            found = sorted(out.glob("switchyard-*.whl")) if out.is_dir() else []
            if not found:
                self._say("building the switchyard wheel from packages/switchyard")
                out.mkdir(parents=True, exist_ok=True)
                _run(["uv", "build", "--wheel", "--out-dir", str(out), str(CORE)])
                found = sorted(out.glob("switchyard-*.whl"))
            self._core_wheel = found[-1]
        return self._core_wheel

    def plugin_wheels(self, n: int) -> list[Path]:
        out = self.wheels / f"plugins-{_digest(PLUGIN_TEMPLATE.encode())}"
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for i in range(n):
            path = out / f"{plugin_module(i)}-1.0.0-py3-none-any.whl"
            paths.append(path if path.exists() else write_plugin_wheel(i, out))
        return paths

    def build(self, n: int, *, rebuild: bool = False) -> BenchEnv:
        venv = self.workdir / f"venv-n{n}"
        marker = venv / "coldstart-inputs.json"
        wanted = {
            "n": n,
            "python": sys.version,
            "ordinary": _digest(ORDINARY.read_bytes()),
            "plugins": _digest(PLUGIN_TEMPLATE.encode()),
            "switchyard": self.core_wheel().parent.name,
        }
        have = json.loads(marker.read_text()) if marker.exists() and not rebuild else {}
        python = str(venv / "bin" / "python")
        if {k: v for k, v in have.items() if k != "switchyard"} != {
            k: v for k, v in wanted.items() if k != "switchyard"
        }:
            self._say(f"N={n}: creating {venv} (uv venv + uv pip install, a minute or two)")
            shutil.rmtree(venv, ignore_errors=True)
            _run(["uv", "venv", "--quiet", "--python", sys.executable, str(venv)])
            _run(
                [
                    "uv", "pip", "install", "--quiet", "--python", python,
                    "--compile-bytecode", "-r", str(ORDINARY), "stevedore",
                    str(self.core_wheel()),
                    *map(str, self.plugin_wheels(n)),
                ]
            )  # fmt: skip
        elif have.get("switchyard") != wanted["switchyard"]:
            self._say(f"N={n}: switchyard changed, reinstalling it")
            _run(
                [
                    "uv", "pip", "install", "--quiet", "--python", python, "--no-deps",
                    "--reinstall-package", "switchyard", "--compile-bytecode",
                    str(self.core_wheel()),
                ]
            )  # fmt: skip
        marker.write_text(json.dumps(wanted, indent=2) + "\n")
        manifest = venv / "switchyard-manifest.json"
        _run(
            [
                python,
                "-c",
                "import sys, switchyard\n"
                "reg = switchyard.Registry.from_entry_points()\n"
                "switchyard.write_manifest(sys.argv[1], registry=reg)\n",
                str(manifest),
            ]
        )
        counts = json.loads(
            _run(
                [
                    python,
                    "-c",
                    "import json, importlib.metadata as m\n"
                    "print(json.dumps(sorted({d.metadata['Name'].lower().replace('_', '-')"
                    " for d in m.distributions()})))",
                ]
            )
        )
        pinned = {
            line.split("==")[0].strip().lower()
            for line in ORDINARY.read_text().splitlines()
            if "==" in line and not line.lstrip().startswith("#")
        }
        own = {"pydantic", "pydantic-core", "pluggy", "typing-extensions", "annotated-types",
               "typing-inspection"}  # fmt: skip
        return BenchEnv(
            n=n,
            venv=venv,
            manifest=manifest,
            distributions=len(counts),
            ordinary=len((pinned - own) & set(counts)),
        )
