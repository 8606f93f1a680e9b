"""An HTTP server over TLS, on its own thread: the admission webhook's and the virtual node's
kubelet API. The API server calls both over TLS (TLS 1.2 at least)."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class TlsServer(ThreadingHTTPServer):
    """Serves handler on (host, port) with the certificate and key in the given files; port 0
    picks a free one (see .port)."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], cert_file: str, key_file: str, host: str, port: int):
        super().__init__((host, port), handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert_file, key_file)
        self.socket = context.wrap_socket(self.socket, server_side=True)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def start(self):
        threading.Thread(target=self.serve_forever, name=type(self).__name__, daemon=True).start()
        return self
