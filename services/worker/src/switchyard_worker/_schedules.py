"""The supervisor's scheduler thread: find the schedules, then fire them while holding the lease.

The supervisor imports no plugin at boot. The schedules of ``[tool.switchyard.schedules]`` are
known from the config; those declared on actions (``schedule=``/``every=``) are read from the
manifest when there is one, else found by a helper process (``python -m
switchyard_worker._schedules``) that imports every plugin, prints the actions that declare a
schedule, and exits, so that the supervisor imports only the plugins of scheduled actions, to
check their data and shape their jobs. That happens once the first pool process serves, off
the path to ready.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, final

if TYPE_CHECKING:
    import switchyard

    from ._boot import Boot
    from ._settings import WorkerSettings

__all__ = ["SchedulerThread", "scheduled_actions"]

log = logging.getLogger("switchyard_worker")

_READY_WAIT: Final = 10.0  # at most this long for the first pool process before looking
_DISCOVERY_TIMEOUT: Final = 300.0


def scheduled_actions() -> list[str]:
    """The installed actions that declare a schedule (imports every plugin: run in a helper)."""
    import switchyard

    registry = switchyard.Registry.from_entry_points()
    names = []
    for name in registry.names():
        try:
            action = registry.resolve(name)
        except switchyard.SwitchyardError:
            continue  # a broken plugin: `switchyard doctor` says so; it declares nothing here
        if action.policy.scheduled:
            names.append(name)
    return names


@final
class SchedulerThread:
    """Runs ``switchyard_rq.Scheduler`` in a daemon thread of the supervisor."""

    def __init__(
        self,
        settings: WorkerSettings,
        boot: Boot,
        *,
        connection: Any,
        serving: Callable[[], bool],
    ) -> None:
        self.settings = settings
        self.boot = boot
        self._connection = connection
        self._serving = serving
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="switchyard-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop firing and give the lease up, so that another scheduler takes over at once."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _discover(self) -> list[str] | None:
        """The actions that declare a schedule, from a helper process (None: it failed)."""
        import json
        import subprocess
        import sys

        helper = subprocess.Popen(
            [sys.executable, "-m", "switchyard_worker._schedules"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + _DISCOVERY_TIMEOUT
        while True:
            try:
                out, err = helper.communicate(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if self._stop.is_set() or time.monotonic() > deadline:
                    helper.kill()
                    helper.communicate()
                    return None
        if helper.returncode != 0:
            lines = err.strip().splitlines()
            log.warning("schedules: the helper that finds them failed: %s",
                        lines[-1] if lines else f"exit {helper.returncode}")  # fmt: skip
            return None
        lines = out.strip().splitlines()  # the last line: a plugin may print when imported
        names: list[str] = json.loads(lines[-1]) if lines else []
        return names

    def _load(self) -> list[switchyard.Schedule] | None:
        import switchyard

        waited = 0.0
        while not self._serving() and waited < _READY_WAIT and not self._stop.is_set():
            self._stop.wait(0.1)
            waited += 0.1
        actions = None
        if self.boot.manifest is None:
            actions = self._discover()
            if actions is None:
                log.warning("schedules: cannot find the actions that declare one; firing only "
                            "[tool.switchyard.schedules]")  # fmt: skip
                actions = []
        return switchyard.load_schedules(
            self.boot.config, self.boot.registry, manifest=self.boot.manifest, actions=actions
        )

    def _run(self) -> None:
        import switchyard_rq

        try:
            schedules = self._load()
        except Exception as exc:
            log.error("schedules: %s; no schedule fires from this worker", exc)
            return
        if not schedules or self._stop.is_set():
            return
        log.info("schedules: %s", ", ".join(f"{s.name} ({s.when})" for s in schedules))
        try:
            scheduler = switchyard_rq.Scheduler(
                schedules,
                registry=self.boot.registry,
                connection=self._connection,
                lease=self.settings.schedule_lease,
            )
        except ValueError as exc:  # a Redis Cluster
            log.error("schedules: %s; no schedule fires from this worker", exc)
            return
        try:
            scheduler.run(self._stop)
        except Exception:
            log.exception("schedules: the scheduler stopped; no schedule fires from this worker")


if __name__ == "__main__":  # the helper: python -m switchyard_worker._schedules
    import json

    print(json.dumps(scheduled_actions()))
