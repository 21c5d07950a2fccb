"""What the fixture servers share: serving an ASGI app on a loopback port and saying so."""

import asyncio
import sys

import uvicorn


async def serve(app, port: int) -> None:
    """Serves `app` on 127.0.0.1:`port`, prints `READY` (flushed) once it accepts connections,
    then runs until stopped. A server that cannot start (port taken...) exits with its error."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():  # failed to start: surface its error
            await task
            sys.exit(1)
        await asyncio.sleep(0.02)
    print("READY", flush=True)
    await task
