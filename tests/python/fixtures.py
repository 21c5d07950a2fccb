"""What the Python fixtures share: a server serving on a loopback port and saying so; a client
printing its one JSON result."""

import asyncio
import json
import sys
import traceback

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


def print_result(coroutine) -> None:
    """Runs a client's `coroutine` and prints its result as one JSON object; a crash that is
    not a protocol error exits 2 with its traceback on stderr."""
    try:
        out = asyncio.run(coroutine)
    except Exception:
        traceback.print_exc()
        sys.exit(2)
    print(json.dumps(out))


def run_server(coroutine) -> None:
    """Runs a server's `coroutine` until it ends or the test stops it."""
    try:
        asyncio.run(coroutine)
    except KeyboardInterrupt:
        pass


def headers(pairs) -> dict:
    """`K:V` command-line pairs as a header dict."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition(":")
        if not sep:
            raise SystemExit(f"--header wants K:V, got {pair!r}")
        out[key.strip()] = value.strip()
    return out
