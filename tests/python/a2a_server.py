"""A real A2A agent (the official `a2a-sdk`, JSON-RPC binding) for Sluice's tests.

    a2a_server.py --port N [--rpc-path /a2a] [--v1-only] [--public-url URL]

Serves on http://127.0.0.1:N:
    GET  /.well-known/agent-card.json   the AgentCard ("echo-agent"); its interface URLs are
                                        http://127.0.0.1:N<rpc-path>, this server's own address
                                        (or --public-url<rpc-path>)
    POST <rpc-path>                     JSON-RPC: A2A 1.0 methods (SendMessage, SendStreamingMessage,
                                        GetTask, CancelTask, ...) and, unless --v1-only, the 0.3 names
                                        too (message/send, message/stream, tasks/get, tasks/cancel, ...)
Prints `READY` (flushed) once it accepts connections.

The agent makes a task for every message: Task (submitted) -> status working -> artifact
"echo: <text>" -> status completed, so a stream carries four events. A message whose text starts
with "slow" stays working for 30 s before completing, so a test can get and cancel it meanwhile;
one starting with "record" is answered with a customer record (an SSN) instead of the echo, and
one starting with "whoami" with the identity and credential headers the agent was reached with.
Tasks live in the SDK's in-memory task store.
"""

import argparse
import asyncio
import json

import fixtures
from a2a.helpers.proto_helpers import new_task_from_user_message, new_text_message, new_text_part
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types.a2a_pb2 import AgentCapabilities, AgentCard, AgentInterface, AgentProvider, AgentSkill
from starlette.applications import Starlette

SLOW_SECONDS = 30
RECORD = "record: customer Jane Roe, SSN 123-45-6789"


class EchoExecutor(AgentExecutor):
    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        text = context.get_user_input()
        task = context.current_task
        if task is None:  # a new task: announce it before any update
            task = new_task_from_user_message(context.message)
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.start_work(new_text_message("working on it", context_id=task.context_id, task_id=task.id))
        if text.startswith("slow"):
            await asyncio.sleep(SLOW_SECONDS)  # cancelled by CancelTask
        # "record ...": an answer with personal data the caller never sent, so a test can see
        # the gateway inspect what the agent answers, not only what it is sent.
        if text.startswith("whoami"):
            # The identity and credential headers this agent was reached with.
            headers = context.call_context.state.get("headers", {})
            answer = json.dumps({name: headers.get(name) for name in ("x-sluice-principal", "authorization")})
        elif text.startswith("record"):
            answer = RECORD
        else:
            answer = f"echo: {text}"
        await updater.add_artifact([new_text_part(answer)], name="echo")
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        task = context.current_task
        updater = TaskUpdater(event_queue, context.task_id, task.context_id if task else context.context_id)
        await updater.cancel()


def agent_card(base_url: str, rpc_url: str, v03: bool) -> AgentCard:
    interfaces = [AgentInterface(url=rpc_url, protocol_binding="JSONRPC", protocol_version="1.0")]
    if v03:
        # A 0.3 interface makes the served card also carry the 0.3 fields (url, preferredTransport,
        # protocolVersion, additionalInterfaces), as a card meant for old and new clients does.
        interfaces.append(AgentInterface(url=rpc_url, protocol_binding="JSONRPC", protocol_version="0.3"))
    return AgentCard(
        name="echo-agent",
        description="Echoes the user's message back.",
        version="1.0.0",
        supported_interfaces=interfaces,
        provider=AgentProvider(organization="Sluice tests", url=base_url),
        documentation_url=f"{base_url}/docs",
        capabilities=AgentCapabilities(streaming=True, push_notifications=False),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[
            AgentSkill(
                id="echo",
                name="Echo",
                description="Replies with 'echo: ' and the text it was sent.",
                tags=["echo", "test"],
                examples=["hello"],
            )
        ],
    )


async def serve(args: argparse.Namespace) -> None:
    base_url = (args.public_url or f"http://127.0.0.1:{args.port}").rstrip("/")
    card = agent_card(base_url, base_url + args.rpc_path, not args.v1_only)
    handler = DefaultRequestHandler(agent_executor=EchoExecutor(), task_store=InMemoryTaskStore(), agent_card=card)
    routes = create_agent_card_routes(card) + create_jsonrpc_routes(
        handler, rpc_url=args.rpc_path, enable_v0_3_compat=not args.v1_only
    )
    app = Starlette(routes=routes)
    await fixtures.serve(app, args.port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rpc-path", default="/a2a", help="path of the JSON-RPC endpoint")
    parser.add_argument("--public-url", help="base URL the card advertises (default: this server's own)")
    parser.add_argument("--v1-only", action="store_true", help="A2A 1.0 only: no 0.3 method names or card fields")
    args = parser.parse_args()
    fixtures.run_server(serve(args))


if __name__ == "__main__":
    main()
