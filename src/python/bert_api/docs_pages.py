"""The API docs pages (/docs), whose JavaScript and CSS the service serves itself.

Litestar's render plugins load Swagger UI from cdn.jsdelivr.net by default, so on a machine or a
cluster without internet access /docs is a blank page. The npm package `swagger-ui-dist` (its
tarball, pinned by version and sha256 in this directory's BUILD file) ships inside the wheel; the
few files the page needs are read out of it once, at start-up, and served under ASSETS_PATH.
Unknown paths under /docs are JSON 404s, as everywhere else (Litestar answers them with HTML).
"""

from __future__ import annotations

import functools
import gzip
import io
import tarfile
from importlib import resources
from typing import Any

from litestar import Response, Router, get
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin

from bert_api.errors import ApiError, error_response

# Keep in step with the http_source in BUILD (the tarball's name carries the version).
SWAGGER_UI_VERSION = "5.35.0"
TARBALL = f"swagger-ui-dist-{SWAGGER_UI_VERSION}.tgz"
DOCS_PATH = "/docs"
ASSETS_PATH = f"{DOCS_PATH}/assets"
# What the page loads, and how it is served.
MEDIA_TYPES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-standalone-preset.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}
# The version is in the tarball's name: a new version is a new deployment, so browsers keep these.
CACHE_CONTROL = "public, max-age=86400"


@functools.cache
def docs_assets() -> dict[str, bytes]:
    """The files of MEDIA_TYPES, read from the bundled tarball (npm's layout: package/<name>)."""
    packed = resources.files("bert_api").joinpath(TARBALL).read_bytes()
    found: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(packed)), mode="r:") as archive:
        for name in MEDIA_TYPES:
            member = archive.extractfile(f"package/{name}")
            if member is None:
                raise FileNotFoundError(f"{TARBALL} has no package/{name}")
            found[name] = member.read()
    return found


def swagger_plugin() -> SwaggerRenderPlugin:
    """Swagger UI at /docs and /docs/swagger, every file it loads from this service."""
    return SwaggerRenderPlugin(
        js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        css_url=f"{ASSETS_PATH}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>",
        path=["/", "/swagger"],
    )


@get("/assets/{name:str}", sync_to_thread=False)
def docs_asset(name: str) -> Response[bytes]:
    media_type = MEDIA_TYPES.get(name)
    if media_type is None:
        raise ApiError(404, f"no docs asset {name!r}")
    return Response(
        docs_assets()[name], media_type=media_type, headers={"Cache-Control": CACHE_CONTROL}
    )


def _json_not_found(response: Response[Any]) -> Response[Any]:
    """Litestar's docs router answers an unknown path with an HTML page; answer as elsewhere."""
    if response.status_code != 404 or response.media_type == "application/json":
        return response
    return error_response(
        404,
        "not_found",
        f"no such docs page: the API reference is at {DOCS_PATH}, "
        f"the schema at {DOCS_PATH}/openapi.json",
    )


def openapi_config(title: str, version: str, description: str) -> OpenAPIConfig:
    """The schema at /docs/openapi.json and Swagger UI at /docs and /docs/swagger, offline."""
    docs_assets()  # read once now: a wheel without them fails at start-up, not on a docs visit
    router = Router(
        DOCS_PATH,
        route_handlers=[docs_asset],
        include_in_schema=False,
        after_request=_json_not_found,
    )
    return OpenAPIConfig(
        title=title,
        version=version,
        description=description,
        path=DOCS_PATH,
        openapi_router=router,
        render_plugins=[swagger_plugin()],
    )
