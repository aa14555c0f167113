"""Source chips, rendered once on the server: the chat page shows stored answers' and streamed ones'
from the same template (`chat/_sources.html`)."""

from fastapi import Request

from app.chat.schemas import Source
from app.templating import templates


def render_sources(request: Request, sources: list[Source]) -> str:
    if not sources:
        return ""
    return templates.get_template("chat/_sources.html").render(request=request, sources=sources)
