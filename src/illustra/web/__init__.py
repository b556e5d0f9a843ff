"""The server-rendered web page: Jinja2 templates and static CSS/JS (no build step).

Routes live in ``illustra.api.pages``; this package only holds the files.
"""

from __future__ import annotations

from pathlib import Path

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
