"""A small fault-injecting HTTP proxy for the S3 API, on 127.0.0.1.

It sits between boto3 and an S3 API server (moto's standalone server in the tests) and, for a
configurable fraction of requests chosen by a seeded random generator, does one of:

- ``500``: answers ``500 InternalError`` with an S3 XML error body, without forwarding;
- ``503``: answers ``503 ServiceUnavailable``, without forwarding;
- ``slowdown``: answers ``503 SlowDown`` (S3's throttling reply), without forwarding;
- ``reset``: resets the connection (RST) before forwarding;
- ``reset_after``: forwards the request (so the server applies it) and then resets the
  connection instead of answering: the client sees a failure for a write that happened;
- ``denied`` (only when asked for): answers ``403 AccessDenied``, a permanent refusal;
- ``short``: forwards, then sends the headers with the full ``Content-Length`` and only half
  of the body before resetting the connection: a download that ends short.

Apart from the drawn faults, ``proxy.cut = n`` cuts the body of the next ``n`` successful
(200/206) GET answers in half (``-1``: every one from now on), with the full ``Content-Length``
and a clean close, as a server that stops mid-body; ``proxy.cuts_done`` counts them. With
``rate=0`` that makes it the truncating proxy of the ``truncating_proxy`` fixture.

Requests are forwarded byte for byte with their original ``Host`` header, so SigV4 signatures
stay valid. The proxy runs in a daemon thread with a bounded lifetime::

    with FaultProxy("http://127.0.0.1:5000", rate=0.1, seed=7) as proxy:
        s3 = boto3.client("s3", endpoint_url=proxy.url)
        ...
    print(proxy.stats)   # {"requests": 412, "faults": 40, "500": 7, ...}

or as a process: ``python -m tests.reliability.faultproxy --upstream URL --rate 0.1``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import random
import socket
import struct
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

__all__ = ["ALL_KINDS", "FAULT_KINDS", "FaultProxy"]

#: The transient faults the proxy injects by default.
FAULT_KINDS = ("500", "503", "slowdown", "reset", "reset_after", "short")
#: Every kind it knows; ``denied`` (403 AccessDenied) is a permanent refusal, for error tests.
ALL_KINDS = (*FAULT_KINDS, "denied")

_ERRORS = {
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "503": (503, "ServiceUnavailable", "Service is unable to handle request."),
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "denied": (403, "AccessDenied", "Access Denied"),
}

# Hop-by-hop headers a proxy must not forward.
_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "transfer-encoding"}


def _error_body(code: str, message: str, resource: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<Resource>{resource}</Resource><RequestId>FAULTPROXY</RequestId></Error>"
    ).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    # every method goes through the same path
    def do_GET(self) -> None:
        self._handle()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_GET

    def _read_request_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    # trailers until an empty line
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.close()

    def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        upstream = self.server.upstream
        conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=120)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() in _HOP or name.lower() == "content-length":
                    continue
                conn.putheader(name, value)
            if body or self.command in ("PUT", "POST"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            response = conn.getresponse()
            data = response.read()
            headers = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP]
            return response.status, response.reason, headers, data
        finally:
            conn.close()

    def _send(self, status: int, reason: str, headers: list[tuple[str, str]], data: bytes, *,
              cut: str | None = None) -> None:
        """Answer; ``cut`` (``"reset"`` or ``"close"``) sends half the body and then ends the connection so."""
        self.send_response_only(status, reason)
        has_length = False
        for name, value in headers:
            if name.lower() == "content-length":
                has_length = True
                if self.command != "HEAD":
                    value = str(len(data))
            if name.lower() in ("server", "date"):
                continue
            self.send_header(name, value)
        if not has_length:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if cut:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            if cut == "reset":
                self._reset()
            return
        self.wfile.write(data)

    def _handle(self) -> None:
        body = self._read_request_body()
        kind = self.server.decide(self.command)
        if kind in _ERRORS:
            status, code, message = _ERRORS[kind]
            data = _error_body(code, message, self.path.split("?")[0])
            self._send(status, code, [("Content-Type", "application/xml")], data)
            return
        if kind == "reset":
            self._reset()
            return
        try:
            status, reason, headers, data = self._forward(body)
        except OSError:
            self.server.count("upstream_error")
            self._reset()
            return
        if kind == "reset_after":
            self._reset()
            return
        if kind == "short" and len(data) > 1:
            self._send(status, reason, headers, data, cut="reset")
        elif self.command == "GET" and status in (200, 206) and len(data) > 1 and self.server.take_cut():
            self._send(status, reason, headers, data, cut="close")
        else:
            self._send(status, reason, headers, data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], upstream: str, rate: float, seed: int, kinds: tuple[str, ...]):
        super().__init__(address, _Handler)
        self.upstream = urlsplit(upstream)
        self.rate = rate
        self.kinds = kinds
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.stats: Counter[str] = Counter()
        self.cut = 0

    def take_cut(self) -> bool:
        """Whether to cut this answer short (see ``FaultProxy.cut``); counted as ``stats["cut"]``."""
        with self._lock:
            if self.cut == 0:
                return False
            if self.cut > 0:
                self.cut -= 1
            self.stats["cut"] += 1
            return True

    def count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1

    def decide(self, method: str) -> str | None:
        with self._lock:
            self.stats["requests"] += 1
            if self.rate <= 0 or self._rng.random() >= self.rate:
                return None
            kinds = [k for k in self.kinds if not (k == "short" and method != "GET")] or list(self.kinds)
            kind = self._rng.choice(kinds)
            self.stats["faults"] += 1
            self.stats[kind] += 1
            return kind


class FaultProxy:
    """A fault-injecting proxy in front of ``upstream``, listening on ``127.0.0.1:port``.

    ``rate`` is the fraction of requests that get a fault (0.0 to 1.0), drawn from
    ``random.Random(seed)``; ``kinds`` restricts the faults used. The proxy stops on ``stop()``,
    at the end of a ``with`` block, or after ``lifetime`` seconds, whichever comes first.
    ``rate`` can be changed while it runs (``proxy.rate = 0``).
    """

    def __init__(
        self,
        upstream: str,
        *,
        rate: float = 0.1,
        seed: int = 0,
        kinds: tuple[str, ...] = FAULT_KINDS,
        port: int = 0,
        lifetime: float = 900.0,
    ) -> None:
        unknown = sorted(set(kinds) - set(ALL_KINDS))
        if unknown:
            raise ValueError(f"Expected fault kinds among {list(ALL_KINDS)}. Received {unknown}.")
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"Expected a fault rate between 0 and 1. Received {rate}.")
        self._server = _Server(("127.0.0.1", port), upstream, rate, seed, tuple(kinds))
        self._thread = threading.Thread(target=self._server.serve_forever, name="faultproxy", daemon=True)
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True
        self._stopped = False

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def rate(self) -> float:
        return self._server.rate

    @rate.setter
    def rate(self, value: float) -> None:
        with self._server._lock:
            self._server.rate = value

    @property
    def cut(self) -> int:
        """How many of the next successful GET bodies are cut in half (``-1``: all); 0 by default."""
        return self._server.cut

    @cut.setter
    def cut(self, value: int) -> None:
        with self._server._lock:
            self._server.cut = value

    @property
    def cuts_done(self) -> int:
        return self.stats.get("cut", 0)

    @property
    def stats(self) -> dict[str, int]:
        with self._server._lock:
            return dict(self._server.stats)

    def start(self) -> FaultProxy:
        self._thread.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._timer.cancel()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fault-injecting proxy for an S3 API server.")
    parser.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:5000")
    parser.add_argument("--rate", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--kinds", default=",".join(FAULT_KINDS))
    parser.add_argument("--lifetime", type=float, default=600.0, help="stop after this many seconds")
    args = parser.parse_args(argv)
    proxy = FaultProxy(
        args.upstream, rate=args.rate, seed=args.seed, kinds=tuple(args.kinds.split(",")),
        port=args.port, lifetime=args.lifetime,
    ).start()
    print(proxy.url, flush=True)
    try:
        while not proxy._stopped:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        proxy.stop()
        print(proxy.stats, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
