"""A Django project through the WSGI bridge (``get_wsgi_application()``), in-process with
``LambdaClient``: streaming responses, bodies read as they arrive, forms, cookies, redirects
and Django's own 404 and 500. Django is configured here, once for the test process, with no
database and without touching the logging setup (``LOGGING_CONFIG=None``)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import django
import pytest
from django.conf import settings

from duplexlambda.testing.plugin import LambdaClientFactory
from duplexlambda.wsgi import wsgi

from ..support.emulated import paced
from .apps import Journal, multipart

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="duplexlambda-tests-" + "x" * 40,
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["*"],
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        DATABASES={},
        USE_TZ=True,
        LOGGING_CONFIG=None,
    )
    django.setup()

from django.core.wsgi import get_wsgi_application
from django.http import (
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.urls import path

pytestmark = pytest.mark.asyncio

JOURNAL = Journal()


def stream_view(request: Any) -> Any:
    def ticks() -> Iterator[bytes]:
        for i in range(4):
            JOURNAL.add("django yield", i)
            yield b"tick %d\n" % i
            time.sleep(0.1)

    return StreamingHttpResponse(ticks(), content_type="text/plain")


def read_view(request: Any) -> Any:
    sizes = []
    while piece := request.read(64 * 1024):  # Django's stream, bounded by Content-Length
        JOURNAL.add("django piece", len(piece))
        sizes.append(len(piece))
    return JsonResponse({"pieces": len(sizes), "bytes": sum(sizes)})


def form_view(request: Any) -> Any:
    files = {name: {"name": f.name, "size": f.size} for name, f in request.FILES.items()}
    return JsonResponse({"form": sorted(request.POST.items()), "files": files})


def cookies_view(request: Any) -> Any:
    response = JsonResponse({"seen": request.COOKIES, "query": request.GET.getlist("q")})
    response.set_cookie("sid", "42", httponly=True)
    response.set_cookie("theme", "dark")
    return response


def redirect_view(request: Any) -> Any:
    return HttpResponseRedirect("/target")


def boom_view(request: Any) -> Any:
    raise RuntimeError("boom in a Django view")


def hello_view(request: Any, name: str) -> Any:
    return HttpResponse(f"hello {name} from {request.path} via {request.method}")


urlpatterns = [
    path("stream", stream_view),
    path("read", read_view),
    path("form", form_view),
    path("cookies", cookies_view),
    path("redirect", redirect_view),
    path("boom", boom_view),
    path("hello/<str:name>", hello_view),
]


async def test_django_streaming_response(lambda_client: LambdaClientFactory) -> None:
    client = await lambda_client(wsgi(get_wsgi_application()))
    async with client.stream("GET", "/stream") as resp:
        assert resp.status == 200
        chunks = [chunk async for chunk in resp]
    assert chunks == [b"tick %d\n" % i for i in range(4)]
    gaps = [b - a for a, b in itertools.pairwise(resp.arrivals)]
    assert all(gap > 0.07 for gap in gaps), gaps


async def test_django_reads_the_body_as_it_arrives(lambda_client: LambdaClientFactory) -> None:
    client = await lambda_client(wsgi(get_wsgi_application()))
    pieces = [b"y" * 64 * 1024] * 4
    # Django reads CONTENT_LENGTH bytes of wsgi.input: the upload must announce its length.
    resp = await client.post(
        "/read", body=paced(pieces, 0.1), headers={"Content-Length": str(4 * 64 * 1024)}
    )
    assert resp.json() == {"pieces": 4, "bytes": 4 * 64 * 1024}
    stamps = [t for t, _ in JOURNAL.named("django piece")][-4:]
    assert all(b - a > 0.07 for a, b in itertools.pairwise(stamps))  # each piece as it came
    # Without a Content-Length (a chunked upload), Django sees no body at all.
    chunked = await client.post("/read", body=paced([b"z" * 100], 0.01))
    assert chunked.json() == {"pieces": 0, "bytes": 0}


async def test_django_forms_cookies_redirects(lambda_client: LambdaClientFactory) -> None:
    client = await lambda_client(wsgi(get_wsgi_application()))
    ctype, body = multipart({"title": "notes"}, {"doc": ("doc.txt", b"x" * 5000)})
    form = await client.post("/form", body=body, headers={"content-type": ctype})
    assert form.json() == {
        "form": [["title", "notes"]],
        "files": {"doc": {"name": "doc.txt", "size": 5000}},
    }
    encoded = await client.post(
        "/form",
        body="a=1&b=J%C3%B6rg",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert encoded.json()["form"] == [["a", "1"], ["b", "Jörg"]]
    cookies = await client.get("/cookies?q=1&q=%C3%BC", headers={"Cookie": "a=1; b=2"})
    assert cookies.json() == {"seen": {"a": "1", "b": "2"}, "query": ["1", "ü"]}
    # Django's Set-Cookie values start with a space: stripped, as any field value.
    assert sorted(c.split(";")[0] for c in cookies.cookies) == ["sid=42", "theme=dark"]
    moved = await client.get("/redirect")
    assert (moved.status, moved.headers["location"], moved.body) == (302, "/target", b"")
    hello = await client.get("/hello/caf%C3%A9")
    assert hello.text == "hello café from /hello/café via GET"


async def test_django_404_and_500(lambda_client: LambdaClientFactory) -> None:
    client = await lambda_client(wsgi(get_wsgi_application()))
    missing = await client.get("/nowhere")
    assert (missing.status, missing.error) == (404, None)
    boom = await client.get("/boom")
    # Django's handler caught it and answered its 500 page.
    assert (boom.status, boom.error, boom.complete) == (500, None, True)
