"""A tiny OpenAI-compatible server for tests (chat completions and embeddings), run by uvicorn in a
background thread. The suite's one stand-in for OpenAI.

with FakeOpenAI() as server:
    server.reply = lambda messages: "Answer [1]"
    llm = ChatOpenAI(base_url=server.base_url, api_key="test", model="test-model")
"""

import base64
import hashlib
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any, Self

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

DEFAULT_REPLY = "This is the fake model's answer."

Messages = list[dict[str, Any]]


def _usage(messages: Messages, reply: str) -> dict[str, int]:
    """Word counts stand in for tokens: enough for code that only adds them up."""
    prompt = sum(len(str(message.get("content", "")).split()) for message in messages)
    completion = len(reply.split())
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def fake_vector(text: str, dimension: int) -> list[float]:
    """Deterministic, and exact in float32 (the OpenAI client asks for base64-encoded float32)."""
    digest = hashlib.sha256(text.encode()).digest()
    return [digest[i % len(digest)] / 256 for i in range(dimension)]


class FakeOpenAI:
    """Serves `POST /v1/chat/completions`: the answer is `reply(messages)`, every body lands in `requests`.
    Serves `POST /v1/embeddings`: `fake_vector` of each input, `dimensions` long (12 when not asked),
    one token a request; each request's path, Authorization header and body land in
    `embedding_requests`."""

    def __init__(self) -> None:
        self.reply: Callable[[Messages], str] = lambda messages: DEFAULT_REPLY
        self.requests: list[dict[str, Any]] = []
        self.embedding_requests: list[dict[str, Any]] = []
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat_completions, methods=["POST"]),
                Route("/v1/embeddings", self._embeddings, methods=["POST"]),
            ]
        )
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake OpenAI server did not start")
            time.sleep(0.01)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    async def _embeddings(self, request: Request) -> Response:
        body: dict[str, Any] = await request.json()
        self.embedding_requests.append(
            {"path": request.url.path, "auth": request.headers.get("authorization"), "body": body}
        )
        texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
        data = []
        for index, text in enumerate(texts):
            vector: list[float] | str = fake_vector(text, body.get("dimensions") or 12)
            if body.get("encoding_format") == "base64":
                vector = base64.b64encode(np.array(vector, dtype="<f4").tobytes()).decode()
            data.append({"object": "embedding", "index": index, "embedding": vector})
        usage = {"prompt_tokens": 1, "total_tokens": 1}
        return JSONResponse({"object": "list", "data": data, "model": body["model"], "usage": usage})

    async def _chat_completions(self, request: Request) -> Response:
        body: dict[str, Any] = await request.json()
        self.requests.append(body)
        messages: Messages = body.get("messages", [])
        reply = self.reply(messages)
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        common = {"id": completion_id, "created": int(time.time()), "model": body.get("model", "fake")}
        if not body.get("stream"):
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": reply},
                "finish_reason": "stop",
                "logprobs": None,
            }
            return JSONResponse(
                {**common, "object": "chat.completion", "choices": [choice], "usage": _usage(messages, reply)}
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(
            self._chunks(common, reply, _usage(messages, reply) if include_usage else None),
            media_type="text/event-stream",
        )

    async def _chunks(
        self, common: dict[str, Any], reply: str, usage: dict[str, int] | None
    ) -> AsyncIterator[str]:
        def event(choices: list[dict[str, Any]], **extra: Any) -> str:
            chunk = {**common, "object": "chat.completion.chunk", "choices": choices, **extra}
            if usage is not None:
                # With include_usage every chunk carries "usage": null except the last one.
                chunk.setdefault("usage", None)
            return f"data: {json.dumps(chunk)}\n\n"

        def delta(content: dict[str, str], finish_reason: str | None = None) -> list[dict[str, Any]]:
            return [{"index": 0, "delta": content, "finish_reason": finish_reason, "logprobs": None}]

        yield event(delta({"role": "assistant", "content": ""}))
        # Word by word, whitespace kept, so the pieces join back into the exact reply.
        for piece in re.findall(r"\s*\S+\s*|\s+", reply):
            yield event(delta({"content": piece}))
        yield event(delta({}, finish_reason="stop"))
        if usage is not None:
            yield event([], usage=usage)
        yield "data: [DONE]\n\n"
