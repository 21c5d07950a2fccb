"""A real MCP client (the official `mcp` SDK) over Streamable HTTP, for Sluice's tests.

    mcp_client.py URL [--header K:V ...] [--mode auto|legacy|2026-07-28] [--timeout S] SCENARIO ...

Scenarios (each prints ONE JSON object on stdout):
    list                     {"server_name", "protocol_version", "tools": [{"name", "description", "inputSchema"}]}
    call TOOL JSON_ARGS      {"is_error", "text": [...]}            or {"error": {"code", "message"}}
    read URI                 {"contents": [{"uri", "mimeType", "text"}]} or {"error": ...}
    prompt NAME JSON_ARGS    {"messages": [{"role", "text"}]}        or {"error": ...}
    sequence JSON            {"results": [...]}: the steps, in order, in ONE connection. JSON is a list of
                             steps, each {"op": "list"}, {"op": "call", "name": T, "args": {...}},
                             {"op": "read", "uri": U} or {"op": "prompt", "name": P, "args": {...}}
                             (or the same as an array: ["call", T, {...}]).
Every object also carries "protocol_version" and "server_name" once connected.

--elicit accept|decline answers the server's elicitation requests (accept: {"confirm": true}, or
the object --elicit-content JSON gives);
without it the client offers no elicitation. A call's object carries "progress": the messages
of the progress notifications it received, and "elicited": the messages it was asked.
--sample REPLY answers the server's sampling requests with REPLY; a call's object then carries
"sampled": the texts of the messages it was asked to answer.

--mode is the SDK's connect mode: `auto` (its default) probes `server/discover` at 2026-07-28 and
falls back to the `initialize` handshake; `legacy` always does the handshake (a stateful session
with `mcp-session-id`); `2026-07-28` skips negotiation. Protocol errors (a JSON-RPC error, an HTTP
error the SDK turns into one, a timeout) are reported in the JSON and the exit code is 0; only a
crash that is not a protocol error (e.g. connection refused) exits non-zero, traceback on stderr.
"""

import argparse
import json
import sys
import traceback

import fixtures

from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError


def error_json(exc: MCPError) -> dict:
    out = {"code": exc.code, "message": exc.message}
    if exc.data is not None:
        out["data"] = exc.data
    return out


def content_text(items) -> list:
    """The text of each content item (non-text items are shown by their type)."""
    return [getattr(item, "text", None) if item.type == "text" else f"<{item.type}>" for item in items]


async def op_list(client: Client) -> dict:
    result = await client.list_tools()
    tools = [{"name": t.name, "description": t.description, "inputSchema": t.input_schema} for t in result.tools]
    return {"tools": tools}


ELICITED = []
SAMPLED = []


async def op_call(client: Client, name: str, args: dict) -> dict:
    progress = []

    async def on_progress(value, total, message):
        progress.append(message)

    result = await client.call_tool(name, args, progress_callback=on_progress)
    out = {"is_error": bool(result.is_error), "text": content_text(result.content)}
    if progress:
        out["progress"] = progress
    if ELICITED:
        out["elicited"] = list(ELICITED)
        ELICITED.clear()
    if SAMPLED:
        out["sampled"] = list(SAMPLED)
        SAMPLED.clear()
    if result.structured_content is not None:
        out["structured"] = result.structured_content
    return out


async def op_read(client: Client, uri: str) -> dict:
    result = await client.read_resource(uri)
    contents = [
        {"uri": str(c.uri), "mimeType": c.mime_type, "text": getattr(c, "text", None)} for c in result.contents
    ]
    return {"contents": contents}


async def op_prompt(client: Client, name: str, args: dict) -> dict:
    result = await client.get_prompt(name, args)
    messages = [
        {"role": m.role, "text": getattr(m.content, "text", None) if m.content.type == "text" else f"<{m.content.type}>"}
        for m in result.messages
    ]
    return {"messages": messages}


async def run_step(client: Client, step) -> dict:
    """Run one step; a protocol error becomes {"error": ...} instead of an exception."""
    if isinstance(step, list):  # ["call", name, args] form
        op, rest = step[0], step[1:]
        keys = {"call": ("name", "args"), "read": ("uri",), "prompt": ("name", "args")}.get(op, ())
        step = {"op": op, **dict(zip(keys, rest))}
    op = step["op"]
    try:
        if op == "list":
            return await op_list(client)
        if op == "call":
            return await op_call(client, step["name"], step.get("args") or {})
        if op == "read":
            return await op_read(client, step["uri"])
        if op == "prompt":
            return await op_prompt(client, step["name"], step.get("args") or {})
        raise ValueError(f"unknown step op {op!r}")
    except MCPError as exc:
        return {"error": error_json(exc)}


async def run(args: argparse.Namespace) -> dict:
    headers = fixtures.headers(args.header)

    if args.scenario == "list":
        steps = [{"op": "list"}]
    elif args.scenario == "call":
        steps = [{"op": "call", "name": args.tool, "args": json.loads(args.json_args)}]
    elif args.scenario == "read":
        steps = [{"op": "read", "uri": args.uri}]
    elif args.scenario == "prompt":
        steps = [{"op": "prompt", "name": args.name, "args": json.loads(args.json_args)}]
    else:
        steps = json.loads(args.steps)

    # Extra headers (auth...) go on every HTTP request the transport makes.
    http_client = create_mcp_http_client(headers=headers)
    transport = streamable_http_client(args.url, http_client=http_client)
    # cache=None: every call reaches the server (the SDK otherwise honours 2026 ttlMs hints).
    callbacks = {}
    if args.elicit:

        async def on_elicit(context, params):
            ELICITED.append(params.message)
            if args.elicit == "accept":
                content = json.loads(args.elicit_content) if args.elicit_content else {"confirm": True}
                return types.ElicitResult(action="accept", content=content)
            return types.ElicitResult(action="decline")

        callbacks["elicitation_callback"] = on_elicit
    if args.sample is not None:

        async def on_sample(context, params):
            SAMPLED.extend(content_text([m.content for m in params.messages]))
            return types.CreateMessageResult(
                role="assistant", content=types.TextContent(type="text", text=args.sample), model="test-model"
            )

        callbacks["sampling_callback"] = on_sample
    client = Client(transport, mode=args.mode, read_timeout_seconds=args.timeout, cache=None, **callbacks)
    async with http_client:
        try:
            await client.__aenter__()
        except MCPError as exc:  # refused at connect (e.g. the gateway denied initialize/discover)
            return {"error": error_json(exc)}
        try:
            info = client.server_info
            out = {"server_name": info.name if info else None, "protocol_version": client.protocol_version}
            results = [await run_step(client, step) for step in steps]
        finally:
            try:
                await client.__aexit__(None, None, None)
            except Exception:
                # mcp 2.3.0 race: the late answer to a timed-out request (JSON-response server,
                # handshake era) can hit the already-closed read stream while the transport shuts
                # down (anyio.BrokenResourceError). The results are in by then: warn, don't fail.
                print("warning: MCP client teardown failed:", file=sys.stderr)
                traceback.print_exc()

    if args.scenario == "sequence":
        out["results"] = results
    else:
        out.update(results[0])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="the MCP endpoint, e.g. http://127.0.0.1:PORT/mcp")
    parser.add_argument("--header", action="append", default=[], metavar="K:V", help="extra HTTP header")
    parser.add_argument("--mode", default="auto", help="auto (SDK default), legacy, or 2026-07-28")
    parser.add_argument("--timeout", type=float, default=None, help="per-request read timeout, seconds")
    parser.add_argument("--elicit", choices=["accept", "decline"], default=None, help="answer elicitations")
    parser.add_argument("--elicit-content", default=None, metavar="JSON", help="what --elicit accept answers")
    parser.add_argument("--sample", default=None, metavar="REPLY", help="answer sampling requests with REPLY")
    sub = parser.add_subparsers(dest="scenario", required=True)
    sub.add_parser("list")
    call = sub.add_parser("call")
    call.add_argument("tool")
    call.add_argument("json_args", nargs="?", default="{}")
    read = sub.add_parser("read")
    read.add_argument("uri")
    prompt = sub.add_parser("prompt")
    prompt.add_argument("name")
    prompt.add_argument("json_args", nargs="?", default="{}")
    sequence = sub.add_parser("sequence")
    sequence.add_argument("steps")
    args = parser.parse_args()

    fixtures.print_result(run(args))


if __name__ == "__main__":
    main()
