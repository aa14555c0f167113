"""An OpenAI-compatible chat model for bench/load.py: tests/support/fake_openai.py in a process of its own.

    .venv/bin/python bench/fake_model.py [--word-ms 0]

Prints its base URL on the first line of stdout, then serves until it is terminated. Every answer
cites the first two passages; with --word-ms it waits that long before each streamed word, as a real
model writing at that speed would.
"""

import argparse
import asyncio
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.fake_openai import FakeOpenAI  # noqa: E402

REPLY = (
    "The passages answer this directly. In short, the book explains the idea step by step and gives "
    "a worked example [1]. It then adds a remark on a common mistake and how to avoid it, with a "
    "second example that shows the difference in practice [2]. Both passages agree on the main point, "
    "so the answer is well supported by your library [1] [2]."
)


class SlowFakeOpenAI(FakeOpenAI):
    def __init__(self, word_seconds: float) -> None:
        super().__init__()
        self.word_seconds = word_seconds
        self.reply = lambda messages: REPLY
        self.requests = _Discard()  # a long run must not keep every request body

    async def _chunks(self, common, reply, usage):
        async for chunk in super()._chunks(common, reply, usage):
            if self.word_seconds:
                await asyncio.sleep(self.word_seconds)
            yield chunk


class _Discard(list):
    def append(self, item) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--word-ms", type=float, default=0.0, help="delay before each streamed word")
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with SlowFakeOpenAI(args.word_ms / 1000) as server:
        print(server.base_url, flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
