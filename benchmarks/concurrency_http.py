"""A small HTTP/1.1 server for benchmarks/concurrency.py: every request is answered after a delay
(keep-alive, no framework, so the server's own CPU stays small):
``python concurrency_http.py PORT DELAY_SECONDS``."""

from __future__ import annotations

import asyncio
import sys

BODY = b'{"ok": true}'
REPLY = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%b" % (
    len(BODY),
    BODY,
)


class Answer(asyncio.Protocol):
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        loop = asyncio.get_running_loop()
        while b"\r\n\r\n" in self.buffer:  # requests without bodies (GET)
            _, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            loop.call_later(self.delay, self._reply)

    def _reply(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(REPLY)


async def main(port: int, delay: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Answer(delay), "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2])))
