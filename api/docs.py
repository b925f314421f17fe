"""`/docs` (Swagger UI) and `/redoc`, served with their scripts and styles from an installed
package (`fastapi-offline` vendors Swagger UI 5 and ReDoc), so the pages work on a machine
without internet access: FastAPI's defaults load them from a CDN."""

from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs/assets"
ASSETS = files("fastapi_offline") / "static"
# Swagger UI keeps the bearer token across reloads, and shows how long each call took.
SWAGGER_PARAMETERS = {"persistAuthorization": True, "displayRequestDuration": True, "tryItOutEnabled": True}


def install_docs(app: FastAPI) -> None:
    title = app.title
    app.mount(ASSETS_URL, StaticFiles(directory=str(ASSETS)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{title} - Swagger UI",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js", swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon.png", oauth2_redirect_url=None,
            swagger_ui_parameters=SWAGGER_PARAMETERS)

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{title} - ReDoc",
                              redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
                              redoc_favicon_url=f"{ASSETS_URL}/favicon.png", with_google_fonts=False)
