from langchain_core.messages import HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI

from tests.support.fake_openai import DEFAULT_REPLY, FakeOpenAI


def _model(server: FakeOpenAI) -> ChatOpenAI:
    return ChatOpenAI(base_url=server.base_url, api_key="test", model="test-model", max_retries=0)


def test_invoke_gets_the_reply_and_the_request_is_recorded() -> None:
    with FakeOpenAI() as server:
        server.reply = lambda messages: f"You said: {messages[-1]['content']}"
        result = _model(server).invoke([SystemMessage("Be brief."), HumanMessage("What is entropy?")])

    assert result.content == "You said: What is entropy?"
    assert result.usage_metadata is not None and result.usage_metadata["total_tokens"] > 0
    body = server.requests[-1]
    assert body["model"] == "test-model"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is entropy?"},
    ]


def test_default_reply() -> None:
    with FakeOpenAI() as server:
        assert _model(server).invoke("Hi").content == DEFAULT_REPLY


async def test_astream_arrives_in_several_chunks() -> None:
    reply = "Entropy measures disorder [1], see also [2]."
    with FakeOpenAI() as server:
        server.reply = lambda messages: reply
        chunks = [chunk async for chunk in _model(server).astream("What is entropy?")]

    texts = [chunk.content for chunk in chunks if chunk.content]
    assert "".join(texts) == reply
    assert len(texts) > 1
    assert server.requests[-1]["stream"] is True
    assert server.requests[-1]["messages"] == [{"role": "user", "content": "What is entropy?"}]


async def test_astream_reports_usage_when_asked() -> None:
    with FakeOpenAI() as server:
        model = ChatOpenAI(base_url=server.base_url, api_key="test", model="test-model", stream_usage=True)
        total = None
        async for chunk in model.astream("Hello there"):
            total = chunk if total is None else total + chunk

    assert server.requests[-1]["stream_options"] == {"include_usage": True}
    assert total is not None and total.content == DEFAULT_REPLY
    assert total.usage_metadata is not None
    assert total.usage_metadata["output_tokens"] == len(DEFAULT_REPLY.split())
