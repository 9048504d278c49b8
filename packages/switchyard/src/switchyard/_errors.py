"""The error types of switchyard.

Every error subclasses :class:`SwitchyardError`, carries its fields as attributes, reads as one
line for people (what, where, what next) and turns into a JSON-able dict with ``to_dict()`` so a
transport can carry it. Keep this module free of third-party imports: ``import switchyard`` loads
it eagerly.
"""

from __future__ import annotations

from typing import Any, NamedTuple, final

__all__ = [
    "ActionDefinitionError",
    "ConfigError",
    "FieldError",
    "HandlerError",
    "InvalidInputError",
    "InvalidOutputError",
    "ManifestError",
    "PluginConflictError",
    "PluginLoadError",
    "PluginValidationError",
    "StaleManifestError",
    "SwitchyardError",
    "UnknownActionError",
]


class FieldError(NamedTuple):
    """One problem in some data: where (dotted ``loc``), what (``message``), pydantic's ``type``."""

    loc: str
    message: str
    type: str

    def __str__(self) -> str:
        return f"{self.loc}: {self.message}" if self.loc else self.message

    def to_dict(self) -> dict[str, str]:
        return {"loc": self.loc, "message": self.message, "type": self.type}


def _restore(cls: type[SwitchyardError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class SwitchyardError(Exception):
    """Base class of every switchyard error. ``action`` is the action it concerns, if any."""

    def __init__(self, message: str, *, action: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.action = action

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors defeat Exception's default pickling; rebuild from state.
        return (_restore, (type(self), self.args, dict(self.__dict__)))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description: ``type``, ``message``, ``action`` (plus subclass fields)."""
        return {"type": type(self).__name__, "message": self.message, "action": self.action}


def _join(errors: tuple[FieldError, ...]) -> str:
    return "; ".join(str(e) for e in errors) or "no details"


@final
class ActionDefinitionError(SwitchyardError):
    """An action is defined wrongly (bad name, models or options): raised at definition time."""


@final
class UnknownActionError(SwitchyardError):
    """No action of that name is registered; ``suggestions`` holds close matches."""

    def __init__(self, name: str, suggestions: tuple[str, ...] = ()) -> None:
        hint = f" (did you mean: {', '.join(suggestions)}?)" if suggestions else ""
        super().__init__(f"unknown action {name!r}{hint}", action=name)
        self.name = name
        self.suggestions = tuple(suggestions)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "suggestions": list(self.suggestions)}


@final
class InvalidInputError(SwitchyardError):
    """The data given to an action does not validate against its input model."""

    def __init__(self, action: str, errors: tuple[FieldError, ...]) -> None:
        super().__init__(f"invalid input for {action}: {_join(errors)}", action=action)
        self.errors = tuple(errors)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "errors": [e.to_dict() for e in self.errors]}


@final
class HandlerError(SwitchyardError):
    """The action's handler raised; the original exception is ``cause`` (and ``__cause__``)."""

    def __init__(self, action: str, cause: BaseException) -> None:
        self.cause = cause
        self.error_type = type(cause).__name__
        detail = str(cause)
        text = f"{self.error_type}: {detail}" if detail else self.error_type
        super().__init__(f"action {action} failed: {text}", action=action)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "error_type": self.error_type}


@final
class JobCancelledError(SwitchyardError):
    """Raised by ``ctx.raise_if_cancelled()`` in a job that was asked to stop: the job ends as
    canceled (not failed, not retried)."""

    def __init__(self, action: str) -> None:
        super().__init__(f"action {action} was cancelled while it ran", action=action)


@final
class InvalidOutputError(SwitchyardError):
    """A handler returned something its output model rejects: a bug in the plugin."""

    def __init__(
        self, action: str, distribution: str | None, errors: tuple[FieldError, ...]
    ) -> None:
        who = (
            f"bug in plugin {distribution}: action {action}"
            if distribution
            else (f"bug in action {action}")
        )
        super().__init__(f"{who} returned invalid output: {_join(errors)}", action=action)
        self.distribution = distribution
        self.errors = tuple(errors)

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "distribution": self.distribution,
            "errors": [e.to_dict() for e in self.errors],
        }


@final
class PluginLoadError(SwitchyardError):
    """Importing a plugin's target failed; only the actions (or hooks) it provides are broken.

    ``kind`` is ``"action"`` or ``"hook"``; for a hook plugin ``action`` holds the hook
    entry point's name.
    """

    def __init__(
        self,
        action: str,
        distribution: str | None,
        target: str,
        cause: BaseException,
        *,
        kind: str = "action",
    ) -> None:
        self.distribution = distribution
        self.target = target
        self.cause = cause
        self.kind = kind
        origin = f" from {distribution}" if distribution else ""
        what = f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__
        super().__init__(f"cannot load {kind} {action}{origin} ({target}): {what}", action=action)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "distribution": self.distribution, "target": self.target}


@final
class PluginValidationError(SwitchyardError):
    """A plugin registered something that is not what it claims (wrong object, wrong name)."""

    def __init__(self, action: str, distribution: str | None, message: str) -> None:
        who = f"plugin {distribution}" if distribution else "plugin"
        super().__init__(f"invalid {who}: {message}", action=action)
        self.distribution = distribution
        self.detail = message

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "distribution": self.distribution}


@final
class PluginConflictError(SwitchyardError):
    """Two or more distributions register the same action name."""

    def __init__(self, action: str, distributions: tuple[str, ...]) -> None:
        names = " and ".join(distributions)
        super().__init__(
            f"action {action} is registered by more than one distribution: {names}; "
            "uninstall one of them or rename its entry point",
            action=action,
        )
        self.distributions = tuple(distributions)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "distributions": list(self.distributions)}


class ManifestError(SwitchyardError):
    """A manifest file is missing, unreadable or malformed."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"manifest {path}: {message}")
        self.path = str(path)
        self.detail = message

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "path": self.path}


@final
class StaleManifestError(ManifestError):
    """The installed plugins differ from those the manifest was written for."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(
            path,
            f"stale ({reason}); rebuild it with `switchyard manifest write {path}`",
        )
        self.reason = reason


@final
class ConfigError(SwitchyardError):
    """Configuration is malformed or holds a bad value; names the file and, when known, line."""

    def __init__(self, path: str, message: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")
        self.path = str(path)
        self.line = line
        self.detail = message

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "path": self.path, "line": self.line}
