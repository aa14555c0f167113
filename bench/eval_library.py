"""The library `studyrag eval` asks: the six corpus books, uploaded through a running server and ingested.

    PYTHONPATH=. .venv/bin/python bench/eval_library.py --url http://127.0.0.1:8000 [--email eval@example.com]

(PYTHONPATH=.: it reads the corpus' location from tests.support.corpus.) Run `studyrag serve` first
(with the VAR_DIR and settings to measure, e.g. EMBEDDING_HEADERS=book_outline), then
this, then stop the server and run `studyrag eval bench/qa_dev.jsonl --user EMAIL` with the same
VAR_DIR. Each book goes in one semester and subject under the name a student would give it: the name
is part of what the passages' headers embed.
"""

import argparse
import asyncio
import time

import httpx

from tests.support.corpus import BOOKS

PASSWORD = "correct horse battery staple 9"
NAMES = {
    "discrete_math_levin.pdf": "Discrete Mathematics",
    "forallx_magnus.pdf": "forall x",
    "meditations_marcus_aurelius.pdf": "Meditations",
    "nlp_working_programmer.pdf": "NLP for the Working Programmer",
    "physics_art_of_modelling.pdf": "Physics - the Art of Modelling",
    "think_python_2e.pdf": "Think Python",
}


async def main(url: str, email: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=120, headers={"Origin": url}) as client:
        created = await client.post(
            "/auth/register", json={"email": email, "password": PASSWORD, "name": "Eval"}
        )
        if created.status_code not in (201, 400):
            raise SystemExit(f"sign-up: {created.status_code} {created.text}")
        token = (await client.post("/auth/jwt/login", data={"username": email, "password": PASSWORD})).json()[
            "access_token"
        ]
        headers = {"Authorization": f"Bearer {token}"}
        started = time.perf_counter()
        for filename, book in NAMES.items():
            response = await client.post(
                "/api/upload",
                data={"semester": "Eval", "subject": "Corpus", "book": book},
                files=[("file", (filename, (BOOKS / filename).read_bytes(), "application/pdf"))],
                headers=headers,
            )
            print(filename, response.status_code, response.json()["files"][0]["status"])
        while True:
            files = (await client.get("/api/files", headers=headers)).json()
            statuses = {f["filename"]: f["status"] for f in files}
            if all(status in ("ready", "failed") for status in statuses.values()):
                break
            await asyncio.sleep(2)
        print(f"{statuses} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--email", default="eval@example.com")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.url, arguments.email))
