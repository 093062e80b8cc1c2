"""Runs in Serve's HTTP proxy, named by RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH
(`serve.proxy_setup.json_errors`; scripts/demo, the tests and cluster.yaml set it): a request
the HTTP server cannot even parse (a malformed request line or header) is answered with the
API's JSON error shape, `{"error": {"code": "bad_request", ...}}`, instead of uvicorn's plain
text. Everything a request that parses can get is answered by the app (serve/_errors.py)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from uvicorn.protocols.http.h11_impl import H11Protocol
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

CALLBACK = "serve.proxy_setup.json_errors"
ENV = "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"


def _body(msg: str) -> bytes:
    return json.dumps({"error": {"code": "bad_request", "message": msg or "bad request",
                                 "fields": {}}}).encode()


def _h11_send_400(self: H11Protocol, msg: str) -> None:
    import h11

    body = _body(msg)
    event = h11.Response(status_code=400, reason=b"Bad Request", headers=[
        (b"content-type", b"application/json"), (b"connection", b"close")])
    self.transport.write(self.conn.send(event))
    self.transport.write(self.conn.send(event=h11.Data(data=body)))
    self.transport.write(self.conn.send(event=h11.EndOfMessage()))
    self.transport.close()


def _httptools_send_400(self: HttpToolsProtocol, msg: str) -> None:
    body = _body(msg)
    head = [b"HTTP/1.1 400 Bad Request\r\n"]
    for name, value in self.server_state.default_headers:
        head.extend([name, b": ", value, b"\r\n"])
    head.extend([b"content-type: application/json\r\n",
                 b"content-length: " + str(len(body)).encode() + b"\r\n",
                 b"connection: close\r\n", b"\r\n", body])
    self.transport.write(b"".join(head))
    self.transport.close()


def json_errors() -> list[object]:
    """Installs the JSON 400 in uvicorn's protocols; no middleware to add."""
    try:
        from uvicorn.protocols.http import h11_impl
        h11_impl.H11Protocol.send_400_response = _h11_send_400  # type: ignore[method-assign]
    except ImportError:  # uvicorn without h11: nothing to change there
        pass
    try:
        from uvicorn.protocols.http import httptools_impl
        httptools_impl.HttpToolsProtocol.send_400_response = (  # type: ignore[method-assign]
            _httptools_send_400)
    except ImportError:  # httptools not installed
        pass
    return []
