"""A TCP proxy to freeze: ``python tcp_proxy.py TARGET_HOST TARGET_PORT`` listens on a free
loopback port, prints it on a line of its own, and forwards every connection to the target.

Stopped with SIGSTOP it is a database that hangs rather than refuses: the kernel still completes
handshakes on its listening socket and acknowledges the bytes sent to it, but nothing reaches the
server and no answer comes back, until SIGCONT. Standalone (no imports from the project), so it
starts in milliseconds.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading


def pump(source: socket.socket, target: socket.socket) -> None:
    """Copy one direction until its sender closes it (or fails), then pass the end on."""
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


def relay(client: socket.socket, target: tuple[str, int]) -> None:
    """Both directions of one connection; the sockets are closed once, when both have ended
    (a socket closed under another thread's call could hit a newer connection's reused fd)."""
    with client:
        try:
            upstream = socket.create_connection(target)
        except OSError:
            return
        with upstream:
            back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
            back.start()
            pump(client, upstream)
            back.join()


def serve(listener: socket.socket, target: tuple[str, int]) -> None:
    while True:
        client, _ = listener.accept()
        threading.Thread(target=relay, args=(client, target), daemon=True).start()


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    listener = socket.create_server(("127.0.0.1", 0))
    print(listener.getsockname()[1], flush=True)
    serve(listener, (host, port))


if __name__ == "__main__":
    main()
