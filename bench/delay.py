"""A TCP relay on loopback that holds every chunk back for a while: round trips without netem.

The fallback of the netem run on kernels without ``sch_netem``. It listens on 127.0.0.1 and
forwards to the server, each chunk (in both directions) written ``--one-way-ms`` after it was
read, in order. It only adds latency: no bandwidth limit, no loss, and it costs some CPU of its
own, so its figures are an emulation, reported as such beside (never as) netem's.

    python bench/delay.py --listen 10144 --to 10143 --one-way-ms 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time

LOOPBACK = "127.0.0.1"


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def read() -> None:
        while chunk := await reader.read(65536):
            queue.put_nowait((time.monotonic() + delay, chunk))
        queue.put_nowait((time.monotonic() + delay, b""))

    async def write() -> None:
        while True:
            due, chunk = await queue.get()
            pause = due - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            if not chunk:
                with contextlib.suppress(OSError):
                    writer.write_eof()
                return
            writer.write(chunk)
            await writer.drain()

    try:
        await asyncio.gather(read(), write())
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def serve(listen: int, to: int, one_way_ms: float) -> None:
    delay = one_way_ms / 1000

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(LOOPBACK, to)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(pump(client_r, server_w, delay), pump(server_r, client_w, delay))

    server = await asyncio.start_server(handle, LOOPBACK, listen)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--to", type=int, required=True)
    parser.add_argument("--one-way-ms", type=float, default=10.0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.listen, args.to, args.one_way_ms))


if __name__ == "__main__":
    main()
