"""``/docs`` without a network: Swagger UI's files come from the pinned ``swagger-ui-bundle`` package and
are served by the app itself, so the page works on an air-gapped host (FastAPI's default loads them
from a CDN and the page stays blank offline)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/docs-assets"


def install_offline_docs(app: FastAPI) -> None:
    """Serve ``/docs`` (Swagger UI over ``/openapi.json``) with its assets under ``/docs-assets``.

    The app must be created with ``docs_url=None`` so FastAPI's CDN page does not take the route first."""
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )
