"""``/docs``: the API's interactive documentation, rendered from the OpenAPI document (so from
the manifest's schemas, importing no plugin): each action's fields, and a form that calls it
(in-process or as a job) with a few lines of inline script. No assets from elsewhere."""

from __future__ import annotations

import json
from html import escape
from typing import TYPE_CHECKING, Any

from ._pages import _STYLE

if TYPE_CHECKING:
    from ._catalog import Catalog

__all__ = ["docs_page"]

_SCRIPT = """
document.querySelectorAll('form.try').forEach(function(form){
  form.addEventListener('submit',function(ev){
    ev.preventDefault();
    var out=form.querySelector('output'),headers={'Content-Type':'application/json'};
    var key=document.getElementById('key').value.trim();
    if(key)headers['Authorization']='Bearer '+key;
    if(form.elements.async.checked)headers['Prefer']='respond-async';
    fetch(form.action,{method:'POST',headers:headers,body:form.elements.body.value})
      .then(function(r){return r.text().then(function(t){
        var loc=r.headers.get('Location');
        out.textContent=r.status+' '+r.statusText+(loc?'\\nLocation: '+loc:'')+'\\n\\n'+t;});})
      .catch(function(e){out.textContent=String(e);});
  });
});
"""


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        found = components.get(ref.removeprefix("#/components/schemas/"), {})
        return found if isinstance(found, dict) else {}
    return schema


def _fields(schema: dict[str, Any], components: dict[str, Any]) -> str:
    schema = _resolve(schema, components)
    props = schema.get("properties")
    if not isinstance(props, dict) or not props:
        return '<p class="meta">Any JSON object (write a manifest for its schema).</p>'
    required = set(schema.get("required", []))
    rows = []
    for name, prop in props.items():
        prop = _resolve(prop, components) if isinstance(prop, dict) else {}
        kind = prop.get("type") or ("object" if "properties" in prop else "any")
        if "anyOf" in prop:
            kind = " | ".join(str(p.get("type", "?")) for p in prop["anyOf"] if isinstance(p, dict))
        note = "required" if name in required else f"default {json.dumps(prop.get('default'))}"
        rows.append(
            f"<tr><td><code>{escape(name)}</code></td><td>{escape(str(kind))}</td>"
            f"<td>{escape(note)}</td><td>{escape(str(prop.get('description', '')))}</td></tr>"
        )
    return (
        '<div class="scroll"><table><thead><tr><th>Field</th><th>Type</th><th></th><th></th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _example(schema: dict[str, Any], components: dict[str, Any]) -> str:
    schema = _resolve(schema, components)
    out: dict[str, Any] = {}
    for name in schema.get("required", []):
        prop = _resolve(schema.get("properties", {}).get(name, {}), components)
        kind = prop.get("type")
        out[name] = {"string": "", "integer": 0, "number": 0, "boolean": False, "array": []}.get(
            str(kind), {}
        )
    return json.dumps(out)


def docs_page(catalog: Catalog) -> str:
    document = json.loads(catalog.openapi())
    components = document["components"]["schemas"]
    sections = []
    for path, item in document["paths"].items():
        post = item.get("post")
        if not path.startswith("/v1/actions/") or post is None:
            continue
        name = post["operationId"]
        body = post["requestBody"]["content"]["application/json"]["schema"]
        output = post["responses"]["200"]["content"]["application/json"]["schema"]
        sections.append(
            f"""<section class="card action" id="{escape(name)}">
<h2><code>POST {escape(path)}</code></h2><p>{escape(post["summary"])}</p>
<h3>Input</h3>{_fields(body, components)}<h3>Output</h3>{_fields(output, components)}
<form class="try" action="{escape(path)}">
<textarea name="body" rows="3" aria-label="JSON body">
{escape(_example(body, components))}</textarea>
<label><input type="checkbox" name="async"> as a job (Prefer: respond-async)</label>
<button type="submit">Call</button><output></output></form></section>"""
        )
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Switchyard gateway API</title><style>{_STYLE}
.action{{max-width:none;margin:1rem 0}}textarea{{width:100%;font-family:ui-monospace,monospace}}
output{{display:block;white-space:pre-wrap;font-family:ui-monospace,monospace;margin-top:.5rem}}
form.try{{display:flex;flex-direction:column;gap:.5rem;margin-top:.8rem}}</style></head>
<body><header><h1>Switchyard gateway API</h1><nav><a href="/openapi.json">openapi.json</a>
<a href="/ui">Dashboard</a></nav></header><main>
<label>API key or JWT <input id="key" type="password" autocomplete="off"></label>
{"".join(sections) or '<p class="empty">No actions installed.</p>'}</main>
<script>{_SCRIPT}</script></body></html>"""
