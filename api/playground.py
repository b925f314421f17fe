"""The chat playground: a page to try the assistant in a browser (`/playground`, and `/` leads
there), served only when `PLAYGROUND_ENABLED` (what `make dev` sets).

The page is static: `api/static/playground/` holds its HTML and CSS and `app.js`, the bundle
`make web` builds from `web/src/` with the Vercel AI SDK's own UI message stream reader (a
pinned `ai` from `web/package-lock.json`), checked in so that `make dev` needs no Node.js
(`tests/unit/test_web_bundle.py` rebuilds it and fails when it differs). It talks to the API
like any front end: a bearer token (`make dev` prints a URL that hands it the development token
in the fragment, which never reaches a server), the same routes, the same stream."""

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static" / "playground"
PATH = "/playground"
# Nothing but this origin: no inline script, no framing, no other host.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def install_playground(app: FastAPI) -> None:
    app.mount(f"{PATH}/assets", StaticFiles(directory=STATIC), name="playground-assets")

    @app.get(PATH, include_in_schema=False)
    async def playground() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html", headers={
            "Content-Security-Policy": CSP, "Cache-Control": "no-cache", "Referrer-Policy": "no-referrer"})

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse(PATH)
