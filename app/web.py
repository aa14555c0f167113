"""What any feature reads from a request: who is asking from where. No feature owns this module."""

from fastapi import Request

from app.config import get_settings


def client_ip(request: Request | None) -> str | None:
    """The client's address, for per-address limits and the activity log. Behind a proxy that sets a
    header of its own (CLIENT_IP_HEADER, on Fly `Fly-Client-IP`) that header; else the peer address,
    which uvicorn rewrites from `X-Forwarded-For` only for proxies in FORWARDED_ALLOW_IPS (none by
    default), so a client cannot name its own address."""
    if request is None:
        return None
    header = get_settings().client_ip_header
    if header and (value := request.headers.get(header, "").strip()):
        return value[:64]
    return request.client.host if request.client else None
