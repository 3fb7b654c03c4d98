#!/usr/bin/env python3
"""A loopback TCP proxy that delays every chunk by a fixed time each way.

TESTPLAN F3 for scripts/load.sh: the service talks to Redis through it to
see how decisions fare on a network with a real round-trip time. Every
chunk is forwarded DELAY_MS after it arrived, in order, without waiting for
the previous one, so a pipelined connection is not serialised (what a real
link with that latency does).

Usage: delay_proxy.py LISTEN_PORT UPSTREAM_PORT DELAY_MS
"""

import asyncio
import sys


async def pipe(reader, writer, delay):
    loop = asyncio.get_running_loop()
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            loop.call_later(delay, writer.write, data)
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        await asyncio.sleep(delay)
        writer.close()


async def main():
    listen, upstream, delay_ms = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    delay = delay_ms / 1000.0

    async def handle(client_reader, client_writer):
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            pipe(client_reader, up_writer, delay),
            pipe(up_reader, client_writer, delay),
        )

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    print(f"delay proxy 127.0.0.1:{listen} -> {upstream}, {delay_ms} ms each way", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
