"""What the gateway tells about its actions without importing any plugin: the listing (from the
registry: metadata or the manifest's index) and the OpenAPI document (the schemas the manifest
froze at build time; without a manifest, an action's input and output are any JSON object).
"""

from __future__ import annotations

import json
from typing import Any, Final

from switchyard import Config, Registry

__all__ = ["Catalog"]

_MANIFEST: Final = "manifest "


def _rewrite(node: Any, prefix: str) -> Any:
    """A schema whose local ``#/$defs/X`` references point at ``#/components/schemas/<prefix>X``
    (in OpenAPI a reference resolves against the whole document)."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
                out[key] = "#/components/schemas/" + prefix + value.removeprefix("#/$defs/")
            elif key != "$defs":
                out[key] = _rewrite(value, prefix)
        return out
    if isinstance(node, list):
        return [_rewrite(item, prefix) for item in node]
    return node


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }


_PROBLEM_SCHEMA: Final = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
        "suggestions": {"type": "array", "items": {"type": "string"}},
        "retry_after": {"type": "number"},
    },
}

_JOB_SCHEMA: Final = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "action": {"type": "string"},
        "status": {
            "type": "string",
            "enum": ["queued", "scheduled", "deferred", "started", "finished", "failed",
                     "canceled", "stopped"],
        },
        "queue": {"type": "string"},
        "attempts": {"type": "integer"},
        "result": {"description": "the action's output (finished jobs)"},
        "error": {"type": "object", "description": "why it failed or was canceled"},
    },
    "required": ["id", "action", "status"],
}  # fmt: skip


class Catalog:
    """The registry's actions as the API lists them, and the OpenAPI document (built once)."""

    __slots__ = ("_entries", "_openapi", "config", "registry")

    def __init__(self, registry: Registry, config: Config) -> None:
        self.registry = registry
        self.config = config
        self._entries: dict[str, dict[str, Any]] | None = None
        self._openapi: bytes | None = None

    def _manifest_entries(self) -> dict[str, dict[str, Any]]:
        """The manifest's full action entries (with schemas), or none without a manifest."""
        if self._entries is None:
            found: dict[str, dict[str, Any]] = {}
            source = self.registry.source
            if source.startswith(_MANIFEST):
                with open(source.removeprefix(_MANIFEST), encoding="utf-8") as handle:
                    document = json.load(handle)
                for entry in document.get("actions", []):
                    if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                        found[entry["name"]] = entry
            self._entries = found
        return self._entries

    def listing(self) -> list[dict[str, Any]]:
        """Every action: name, queue it is routed to, distribution, description."""
        out = []
        for name in self.registry.names():
            info = self.registry.info(name)
            out.append(
                {
                    "name": name,
                    "queue": self.config.route(name, info.queue),
                    "distribution": info.distribution,
                    "description": info.description,
                    "url": f"/v1/actions/{name}",
                }
            )
        return out

    def suggestions(self, name: str) -> list[str]:
        from difflib import get_close_matches

        return get_close_matches(name, self.registry.names(), n=3, cutoff=0.6)

    def openapi(self) -> bytes:
        if self._openapi is None:
            self._openapi = json.dumps(self._document(), separators=(",", ":")).encode()
        return self._openapi

    def _document(self) -> dict[str, Any]:
        entries = self._manifest_entries()
        schemas: dict[str, Any] = {"Problem": _PROBLEM_SCHEMA, "Job": _JOB_SCHEMA}
        paths: dict[str, Any] = {}
        for item in self.listing():
            name = item["name"]
            entry = entries.get(name, {})
            refs = {}
            for side in ("input", "output"):
                schema = entry.get(f"{side}_schema")
                component = f"{name}.{side}"
                if isinstance(schema, dict):
                    for def_name, definition in schema.get("$defs", {}).items():
                        schemas[f"{name}.{def_name}"] = _rewrite(definition, f"{name}.")
                    schemas[component] = _rewrite(schema, f"{name}.")
                else:
                    schemas[component] = {"type": "object", "description": "(no manifest: any)"}
                refs[side] = {"$ref": f"#/components/schemas/{component}"}
            paths[f"/v1/actions/{name}"] = {
                "post": {
                    "operationId": name,
                    "summary": item["description"] or name,
                    "tags": [name.split(".", 1)[0]],
                    "description": (
                        f"Runs {name} in the gateway and answers its output; with "
                        "`Prefer: respond-async`, schedules it as a job on queue "
                        f"`{item['queue']}` and answers 202 with the job's URL."
                    ),
                    "parameters": [
                        {
                            "name": "Prefer",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "enum": ["respond-async"]},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": refs["input"]}},
                    },
                    "responses": {
                        "200": {
                            "description": "the action's output",
                            "content": {"application/json": {"schema": refs["output"]}},
                        },
                        "202": {
                            "description": "scheduled (Location: the job's URL)",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/Job"}}
                            },
                        },
                        "400": _problem("malformed JSON"),
                        "401": _problem("no or bad credentials"),
                        "403": _problem("no scope for this action"),
                        "413": _problem("request body too large"),
                        "422": _problem("the input does not validate (errors: each field)"),
                        "429": _problem("over the client's rate (Retry-After)"),
                        "500": _problem("the action failed"),
                        "503": _problem("the action's circuit breaker is open (Retry-After)"),
                    },
                }
            }
        job = {
            "parameters": [
                {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
        }
        paths["/v1/jobs/{id}"] = {
            **job,
            "get": {
                "operationId": "get_job",
                "summary": "a job's status, result or error",
                "responses": {
                    "200": {
                        "description": "the job",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Job"}}
                        },
                    },
                    "404": _problem("no such job"),
                },
            },
            "delete": {
                "operationId": "cancel_job",
                "summary": "cancel a job: a waiting one at once, a running one is asked to stop",
                "responses": {
                    "200": {"description": "canceled (it had not started)"},
                    "202": {"description": "running: asked to stop (it ends as canceled)"},
                    "404": _problem("no such job"),
                    "409": _problem("the job already ended"),
                },
            },
        }
        paths["/v1/actions"] = {
            "get": {
                "operationId": "list_actions",
                "summary": "every action this gateway serves",
                "responses": {"200": {"description": "the actions"}},
            }
        }
        return {
            "openapi": "3.1.0",
            "info": {
                "title": "Switchyard gateway",
                "version": "1",
                "description": "Every installed Switchyard action over HTTP.",
            },
            "paths": paths,
            "components": {
                "schemas": schemas,
                "securitySchemes": {
                    "bearer": {"type": "http", "scheme": "bearer"},
                    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                },
            },
            "security": [{"bearer": []}, {"apiKey": []}],
        }
