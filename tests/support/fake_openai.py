"""A local OpenAI-compatible embeddings server for tests: deterministic vectors, faults on demand.

Vectors come from the hashing embedder, so similar texts get similar vectors. Faults are queued
from the test and consumed one per request, in order; every request is recorded so tests can
assert how inputs were batched.
"""

from __future__ import annotations

import base64
import json
import math
import threading
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import numpy as np

from processors.embedders.hashing import HashingEmbedder

MAX_INPUTS = 2048  # the real API's per-request limit, enforced here too


class Fault(StrEnum):
    RATE_LIMIT = "rate_limit"  # 429 with Retry-After
    SERVER_ERROR = "server_error"  # 500
    HANG = "hang"  # answers only after `hang_s`, longer than any test client timeout
    WRONG_DIMENSION = "wrong_dimension"  # 200 with vectors one dimension too long
    UNAUTHORIZED = "unauthorized"  # 401


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    path: str
    model: str | None
    inputs: tuple[str, ...]
    dimensions: int | None
    encoding_format: str | None
    authorization: str | None
    status: int


@dataclass(frozen=True, slots=True)
class _QueuedFault:
    fault: Fault
    retry_after_s: float | None


class FakeOpenAIServer:
    """Serves POST /v1/embeddings and /embeddings on 127.0.0.1 at a free port.

    `default_dimension` is returned unless the request passes `dimensions`. `scale` multiplies
    every vector (real servers return unit vectors; a scale checks that clients normalise).
    """

    def __init__(self, *, default_dimension: int = 1536, hang_s: float = 5.0, scale: float = 1.0) -> None:
        self.default_dimension = default_dimension
        self.hang_s = hang_s
        self.scale = scale
        self.include_usage = True
        self.latency_s = 0.0  # added to every request, so tests can observe concurrency
        self.max_in_flight = 0  # the most requests ever handled at the same time
        self._in_flight = 0
        self.reverse_order = False  # answer in reverse index order: clients must sort by index
        self._faults: deque[_QueuedFault] = deque()
        self._requests: list[RecordedRequest] = []
        self._embedders: dict[int, HashingEmbedder] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def inject(self, fault: Fault, count: int = 1, *, retry_after_s: float | None = None) -> None:
        """Make the next `count` requests fail with `fault` (after any faults already queued)."""
        with self._lock:
            self._faults.extend(_QueuedFault(fault, retry_after_s) for _ in range(count))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def vector_for(self, text: str, dimension: int | None = None) -> np.ndarray[Any, np.dtype[np.float32]]:
        """The unit vector this server returns for `text` (before `scale`)."""
        return self._embedder(dimension or self.default_dimension).embed_sync([text])[0]

    def start(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases hanging handlers
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- used by the request handler thread --------------------------------------------------

    def _next_fault(self) -> _QueuedFault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _embedder(self, dimension: int) -> HashingEmbedder:
        with self._lock:
            return self._embedders.setdefault(dimension, HashingEmbedder(dimension))

    def _wait_while_hanging(self) -> None:
        self._stopping.wait(self.hang_s)

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        if self.latency_s:
            self._stopping.wait(self.latency_s)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], fake: FakeOpenAIServer
    ) -> None:
        super().__init__(address, handler)
        self.fake = fake

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that time out hang up on purpose; their broken pipes are not test failures.
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        return None

    def do_POST(self) -> None:
        self.server.fake._enter()
        try:
            self._answer()
        finally:
            self.server.fake._leave()

    def _answer(self) -> None:
        fake = self.server.fake
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.rstrip("/") not in ("/v1/embeddings", "/embeddings"):
            self._send_error(HTTPStatus.NOT_FOUND, f"no route for {self.path}", "invalid_request_error")
            return
        try:
            payload = json.loads(body)
        except json.JSONDecodeError:
            self._send_error(HTTPStatus.BAD_REQUEST, "body is not JSON", "invalid_request_error")
            return
        raw_input = payload.get("input")
        inputs = (raw_input,) if isinstance(raw_input, str) else tuple(raw_input or ())
        dimensions = payload.get("dimensions")
        queued = fake._next_fault()
        status = self._status_for(queued, inputs)
        fake._record(
            RecordedRequest(
                path=self.path,
                model=payload.get("model"),
                inputs=inputs,
                dimensions=dimensions,
                encoding_format=payload.get("encoding_format"),
                authorization=self.headers.get("Authorization"),
                status=status,
            )
        )
        if queued is not None and queued.fault is Fault.RATE_LIMIT:
            headers = {} if queued.retry_after_s is None else {"Retry-After": f"{queued.retry_after_s:g}"}
            self._send_error(HTTPStatus.TOO_MANY_REQUESTS, "Rate limit reached", "rate_limit_error", headers)
        elif queued is not None and queued.fault is Fault.SERVER_ERROR:
            self._send_error(HTTPStatus.INTERNAL_SERVER_ERROR, "The server had an error", "server_error")
        elif queued is not None and queued.fault is Fault.UNAUTHORIZED:
            self._send_error(HTTPStatus.UNAUTHORIZED, "Incorrect API key provided", "invalid_request_error")
        elif status == HTTPStatus.BAD_REQUEST:
            self._send_error(
                HTTPStatus.BAD_REQUEST, "input must be 1-2048 non-empty strings", "invalid_request_error"
            )
        else:
            if queued is not None and queued.fault is Fault.HANG:
                fake._wait_while_hanging()
            dimension = int(dimensions or fake.default_dimension)
            if queued is not None and queued.fault is Fault.WRONG_DIMENSION:
                dimension += 1
            self._send_embeddings(payload, inputs, dimension)

    def _status_for(self, queued: _QueuedFault | None, inputs: tuple[str, ...]) -> int:
        statuses = {
            Fault.RATE_LIMIT: HTTPStatus.TOO_MANY_REQUESTS,
            Fault.SERVER_ERROR: HTTPStatus.INTERNAL_SERVER_ERROR,
            Fault.UNAUTHORIZED: HTTPStatus.UNAUTHORIZED,
        }
        if queued is not None and queued.fault in statuses:
            return statuses[queued.fault]
        valid = 0 < len(inputs) <= MAX_INPUTS and all(isinstance(text, str) and text for text in inputs)
        return HTTPStatus.OK if valid else HTTPStatus.BAD_REQUEST

    def _send_embeddings(self, payload: dict[str, Any], inputs: tuple[str, ...], dimension: int) -> None:
        fake = self.server.fake
        vectors = fake._embedder(dimension).embed_sync(inputs)
        as_base64 = payload.get("encoding_format") == "base64"
        data = []
        for index, vector in enumerate(vectors):
            scaled = (vector * np.float32(fake.scale)).astype("<f4")
            embedding: object = base64.b64encode(scaled.tobytes()).decode() if as_base64 else scaled.tolist()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        if fake.reverse_order:
            data.reverse()
        response: dict[str, Any] = {"object": "list", "data": data, "model": payload.get("model")}
        if fake.include_usage:
            tokens = sum(math.ceil(len(text) / 4) for text in inputs)
            response["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
        self._send_json(HTTPStatus.OK, response)

    def _send_error(
        self, status: HTTPStatus, message: str, kind: str, headers: dict[str, str] | None = None
    ) -> None:
        error = {"error": {"message": message, "type": kind, "param": None, "code": None}}
        self._send_json(status, error, headers)

    def _send_json(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        encoded = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(encoded)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(encoded)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test): nothing to answer
