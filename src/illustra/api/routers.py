"""Extra routers the app includes, by module name under ``illustra.api``.

Each listed module exposes ``router`` (a ``fastapi.APIRouter``). Modules that do not exist (yet)
are skipped. Extra routers are included before the built-in ones, so a suffix route such as
``/api/items/{item_id:path}/report`` wins over the catch-all item route. Inside a route, reach
the search service and collection with ``illustra.api.state.get_state(request)``.
"""

from __future__ import annotations

import importlib

from fastapi import APIRouter

EXTRA_ROUTER_MODULES = [
    "report_routes",
]


def extra_routers() -> list[APIRouter]:
    out = []
    for name in EXTRA_ROUTER_MODULES:
        try:
            mod = importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{name}":
                raise
            continue
        out.append(mod.router)
    return out
