"""A real A2A client (the official `a2a-sdk`, JSON-RPC binding) for Sluice's tests.

    a2a_client.py BASE_URL [--header K:V ...] [--protocol 1.0|0.3] [--timeout S] SCENARIO ...

The agent card is fetched with the SDK's A2ACardResolver from BASE_URL/.well-known/agent-card.json,
and every RPC then goes to the interface URL *in that card* (the URL a gateway rewrites), never
to BASE_URL. --protocol picks the card's interface: 1.0 (method names SendMessage, GetTask...) or
0.3 (message/send, tasks/get...).

Scenarios (each prints ONE JSON object on stdout):
    card                {"card": the card as the SDK parsed it, "raw": the JSON as served}
    send TEXT [--no-wait]  {"kind": "task", "task_id", "context_id", "state", "text": [...]}
                        (--no-wait asks the agent to return at once, e.g. for a "slow ..." task)
    stream TEXT         {"events": ["task", "statusUpdate", ...], "states": [...], "task_id", "text": [...]}
    get TASK_ID         {"task_id", "context_id", "state", "text": [...]}
    cancel TASK_ID      the same, after the cancel
A JSON-RPC error becomes {"error": {"code", "message"}}; an HTTP error status becomes
{"error": {"http_status", "message", "body"}} (plus code/message when the body is a JSON-RPC error);
both exit 0. Every object also carries "rpc_url", the interface URL the client used.
Only a crash that is not a protocol error (e.g. connection refused) exits non-zero.
"""

import argparse
import re

import fixtures

import httpx
from a2a.client import A2ACardResolver, A2AClientError, ClientConfig, ClientFactory
from a2a.helpers.proto_helpers import new_text_message
from a2a.types.a2a_pb2 import CancelTaskRequest, GetTaskRequest, Role, SendMessageRequest, TaskState
from a2a.utils.errors import JSON_RPC_ERROR_CODE_MAP, A2AError
from google.protobuf.json_format import MessageToDict


def task_json(task) -> dict:
    """The essentials of a Task: ids, state and the text of its artifacts."""
    texts = [part.text for artifact in task.artifacts for part in artifact.parts if part.HasField("text")]
    return {
        "kind": "task",
        "task_id": task.id,
        "context_id": task.context_id,
        "state": TaskState.Name(task.status.state),
        "text": texts,
    }


def error_json(exc: Exception) -> dict:
    """A protocol-level failure as JSON: JSON-RPC code/message and, for HTTP errors, the status.

    A network failure other than a timeout (connection refused...) is not protocol-level: re-raised.
    """
    if not isinstance(exc, A2AClientError):  # a JSON-RPC error whose code the SDK knows
        return {"code": JSON_RPC_ERROR_CODE_MAP.get(type(exc)), "message": exc.message}
    out = {"message": str(exc)}
    cause = exc.__cause__
    if isinstance(cause, httpx.TimeoutException):
        out["timeout"] = True
    elif isinstance(cause, httpx.RequestError):
        raise exc
    elif isinstance(cause, httpx.HTTPStatusError):
        out["http_status"] = cause.response.status_code
        out["body"] = cause.response.text
        try:
            body = cause.response.json()
            out.update(code=body["error"]["code"], message=body["error"]["message"])
        except (ValueError, KeyError, TypeError):
            pass
    elif match := re.match(r"JSON-RPC Error (-?\d+): (.*)", str(exc), re.S):  # an unmapped code
        out.update(code=int(match.group(1)), message=match.group(2))
    return out


async def run(args: argparse.Namespace) -> dict:
    headers = fixtures.headers(args.header)

    raw_cards = []

    async def keep_card_json(response: httpx.Response) -> None:
        if response.request.url.path.endswith("/.well-known/agent-card.json"):
            await response.aread()
            raw_cards.append(response.json() if response.is_success else response.text)

    async with httpx.AsyncClient(
        headers=headers, timeout=args.timeout, event_hooks={"response": [keep_card_json]}
    ) as http:
        # Made first, like ClientFactory.create_from_url: it adds `A2A-Version: 1.0` to the client.
        config = ClientConfig(httpx_client=http, streaming=args.scenario == "stream", polling=args.no_wait)
        factory = ClientFactory(config)
        try:
            card = await A2ACardResolver(http, args.base_url).get_agent_card()
        except A2AClientError as exc:  # AgentCardResolutionError: HTTP error, bad JSON...
            return {"error": error_json(exc)}
        if args.scenario == "card":
            return {"card": MessageToDict(card), "raw": raw_cards[-1] if raw_cards else None}

        # Keep only the card's interfaces of the chosen protocol version; the factory then
        # builds the matching transport (1.0 JsonRpcTransport or the 0.3 compat one) on its URL.
        chosen = [i for i in card.supported_interfaces if i.protocol_version.startswith(args.protocol)]
        if chosen:
            del card.supported_interfaces[:]
            card.supported_interfaces.extend(chosen)
        out = {"rpc_url": card.supported_interfaces[0].url if card.supported_interfaces else None}
        client = factory.create(card)
        try:
            out.update(await scenario(client, args))
        except A2AError as exc:  # A2AClientError included
            out["error"] = error_json(exc)
        return out


async def scenario(client, args: argparse.Namespace) -> dict:
    if args.scenario in ("send", "stream"):
        message = new_text_message(args.text, role=Role.ROLE_USER)
        events, states, last_task, texts = [], [], None, []
        async for response in client.send_message(SendMessageRequest(message=message)):
            kind = response.WhichOneof("payload")  # task | message | statusUpdate | artifactUpdate
            events.append({"status_update": "statusUpdate", "artifact_update": "artifactUpdate"}.get(kind, kind))
            if kind == "task":
                last_task = response.task
                states.append(TaskState.Name(response.task.status.state))
            elif kind == "status_update":
                states.append(TaskState.Name(response.status_update.status.state))
            elif kind == "artifact_update":
                texts += [p.text for p in response.artifact_update.artifact.parts if p.HasField("text")]
            elif kind == "message":
                texts += [p.text for p in response.message.parts if p.HasField("text")]
        if args.scenario == "send":
            if last_task is not None:
                return task_json(last_task)
            return {"kind": "message", "text": texts}
        task_id = last_task.id if last_task is not None else None
        return {"events": events, "states": states, "task_id": task_id, "text": texts}
    if args.scenario == "get":
        return task_json(await client.get_task(GetTaskRequest(id=args.task_id)))
    if args.scenario == "cancel":
        return task_json(await client.cancel_task(CancelTaskRequest(id=args.task_id)))
    raise ValueError(args.scenario)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base_url", help="where the agent card is, e.g. http://127.0.0.1:PORT")
    parser.add_argument("--header", action="append", default=[], metavar="K:V", help="extra HTTP header")
    parser.add_argument("--protocol", choices=["1.0", "0.3"], default="1.0", help="which card interface to use")
    parser.add_argument("--timeout", type=float, default=30.0, help="HTTP timeout, seconds")
    sub = parser.add_subparsers(dest="scenario", required=True)
    sub.add_parser("card")
    send = sub.add_parser("send")
    send.add_argument("text")
    send.add_argument("--no-wait", action="store_true", help="return_immediately: answer before the task ends")
    sub.add_parser("stream").add_argument("text")
    sub.add_parser("get").add_argument("task_id")
    sub.add_parser("cancel").add_argument("task_id")
    args = parser.parse_args()
    args.no_wait = getattr(args, "no_wait", False)

    fixtures.print_result(run(args))


if __name__ == "__main__":
    main()
