"""A counting JSON-RPC proxy for tests and benchmarks: loopback only, in front of a local node (the devnet's anvil). It
counts the connections it accepts, the HTTP requests and the JSON-RPC calls in them, and can add a remote provider's
latency: `delay_s` before each request is forwarded, `connect_s` before a new connection's first one is read (the TCP
and TLS handshakes an HTTPS provider costs). With `overrides` it plays a node without eth_call state overrides: "refuse"
answers each eth_call that carries one with geth's error for a third parameter, "drop" forwards it without its
override. With `require` it answers HTTP 401 to a request without those headers, as an authenticating proxy in front of
a node does. tests/faultproxy.py injects faults instead."""

from __future__ import annotations

import http.client
import http.server
import json
import threading
import time
from typing import Any
from urllib.parse import urlsplit


class CountingProxy(http.server.ThreadingHTTPServer):
    """Serves on 127.0.0.1 (a free port) once started; `url` is its address."""

    daemon_threads = True

    def __init__(
        self,
        target: str,
        delay_s: float = 0.0,
        connect_s: float = 0.0,
        overrides: str | None = None,
        require: dict[str, str] | None = None,
    ) -> None:
        if overrides not in (None, "refuse", "drop"):
            raise ValueError(f"overrides: {overrides!r}")
        self.target, self.delay_s, self.connect_s, self.overrides = urlsplit(target), delay_s, connect_s, overrides
        #: Headers every request must carry, as an authenticating proxy in front of a node checks (else HTTP 401).
        self.require = require or {}
        self.refused = 0
        self.connections = self.requests = self.calls = 0
        self.overridden = 0  #: eth_calls sent with a state override (a third parameter)
        self.counting = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> CountingProxy:
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def __enter__(self) -> CountingProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: CountingProxy

    def log_message(self, *_: Any) -> None:
        return

    def setup(self) -> None:
        super().setup()
        with self.server.counting:
            self.server.connections += 1
        time.sleep(self.server.connect_s)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if any(self.headers.get(name) != value for name, value in self.server.require.items()):
            with self.server.counting:
                self.server.refused += 1
            self.send_response(401)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "12")
            self.end_headers()
            self.wfile.write(b"Unauthorized")
            return
        sent = json.loads(body)
        with self.server.counting:
            self.server.requests += 1
            self.server.calls += len(sent) if isinstance(sent, list) else 1
            self.server.overridden += sum(
                item.get("method") == "eth_call" and len(item.get("params", [])) > 2
                for item in (sent if isinstance(sent, list) else [sent])
            )
        time.sleep(self.server.delay_s)
        if self.server.overrides is None:
            answer = self._forward(body)
        else:
            answer = json.dumps(self._without_overrides(sent)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def _forward(self, body: bytes) -> bytes:
        target = self.server.target
        node = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=600)
        node.request("POST", target.path or "/", body, {"Content-Type": "application/json"})
        answer = node.getresponse().read()
        node.close()
        return answer

    def _without_overrides(self, sent: Any) -> Any:
        """The node's answer to `sent` as a node without state overrides gives it."""
        items = sent if isinstance(sent, list) else [sent]
        refused = {}
        forwarded = []
        for item in items:
            overridden = item.get("method") == "eth_call" and len(item.get("params", [])) > 2
            if overridden and self.server.overrides == "refuse":
                error = {"code": -32602, "message": "too many arguments, want at most 2"}
                refused[item["id"]] = {"jsonrpc": "2.0", "id": item["id"], "error": error}
                continue
            forwarded.append({**item, "params": item["params"][:2]} if overridden else item)
        answers = json.loads(self._forward(json.dumps(forwarded).encode())) if forwarded else []
        by_id = {a.get("id"): a for a in answers} | refused
        merged = [by_id[item["id"]] for item in items]
        return merged if isinstance(sent, list) else merged[0]
