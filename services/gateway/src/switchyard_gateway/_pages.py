"""The dashboard's frame: navigation, a stylesheet that reads well on a phone, and the few lines
of script that refresh a page's main section every 2 s (paused while a checkbox is ticked or a
field has the focus, so a refresh never undoes what someone is doing)."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Final

__all__ = ["PAGES", "layout"]

#: url, title, navigation label
PAGES: Final = (
    ("/ui", "Overview", "Overview"),
    ("/ui/queues", "Queues", "Queues"),
    ("/ui/workers", "Workers", "Workers"),
    ("/ui/actions", "Actions", "Actions"),
    ("/ui/failed", "Failed jobs", "Failed"),
)

#: the stylesheet (a file beside this module, inlined into every page)
_STYLE: Final = (Path(__file__).parent / "dashboard.css").read_text(encoding="utf-8")
_SCRIPT: Final = """
(function(){
  var main=document.getElementById('live');
  function busy(){return document.querySelector('main input:checked')||
    (document.activeElement&&document.activeElement.tagName==='INPUT');}
  setInterval(function(){
    if(busy()||document.hidden)return;
    var url=location.pathname+(location.search?location.search+'&':'?')+'partial=1';
    fetch(url,{credentials:'same-origin'}).then(function(r){
      if(r.ok)return r.text();throw r;}).then(function(html){
        if(!busy()){main.innerHTML=html;main.dataset.refreshed=Date.now();}
      }).catch(function(){});
  },2000);
})();
"""


def layout(title: str, path: str, main: str, *, live: bool = True, signed_in: bool = False) -> str:
    """A whole page: ``main`` (HTML) under the navigation; ``live`` refreshes it."""
    links = "".join(
        f'<a href="{url}" class="{"on" if path.rstrip("/") == url else ""}">{label}</a>'
        for url, _, label in PAGES
    )
    logout = (
        '<form method="post" action="/ui/logout"><button type="submit">Sign out</button></form>'
        if signed_in
        else ""
    )
    script = f"<script>{_SCRIPT}</script>" if live else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{escape(title)} - Switchyard</title><style>{_STYLE}</style></head>
<body><header><h1>Switchyard</h1><nav>{links}</nav>{logout}</header>
<main id="live">{main}</main>{script}</body></html>"""
