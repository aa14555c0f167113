"""Sign-up, log-in and log-out pages. They call the same fastapi-users manager and strategy as the API."""

import unicodedata
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.security import OAuth2PasswordRequestForm
from fastapi_users import exceptions
from pydantic import ValidationError

from app.auth.backend import RevocableJWTStrategy, cookie_backend, get_jwt_strategy, optional_active_user
from app.auth.schemas import UserCreate
from app.auth.users import UserManager, get_user_manager
from app.config import get_settings
from app.deps import rate_limit
from app.models import User
from app.templating import templates

router = APIRouter(include_in_schema=False)

UserManagerDep = Annotated[UserManager, Depends(get_user_manager)]
StrategyDep = Annotated[RevocableJWTStrategy, Depends(get_jwt_strategy)]
OptionalUser = Annotated[User | None, Depends(optional_active_user)]


def safe_next(target: str | None) -> str:
    """Only a path on this site, quoted: no scheme or host (`https://…`, `//evil.example`), and none of
    the characters browsers drop or reinterpret (`/<TAB>/evil.example` is `//evil.example` to them):
    control characters, whitespace, backslashes."""
    fallback = "/library"
    if not target or any(ch.isspace() or ch == "\\" or unicodedata.category(ch)[0] == "C" for ch in target):
        return fallback
    try:
        parts = urlsplit(target)
    except ValueError:
        return fallback
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return fallback
    return quote(target, safe="/?&=#%-._~!$'()*+,;:@")


def redirect(url: str, response: Response | None = None) -> Response:
    """A 303 to `url`, keeping any cookies already set on `response`."""
    if response is None:
        return RedirectResponse(url, status_code=303)
    response.status_code = 303
    response.headers["location"] = url
    return response


async def _log_in(request: Request, user: User, manager: UserManager, strategy: StrategyDep, to: str):
    response = await cookie_backend.login(strategy, user)
    await manager.on_after_login(user, request, response)
    return redirect(to, response)


@router.get("/", name="home")
async def home(user: OptionalUser) -> Response:
    return redirect("/library" if user else "/login")


@router.get("/login", name="login_page")
async def login_page(request: Request, user: OptionalUser, next: str | None = None) -> Response:
    if user:
        return redirect(safe_next(next))
    notice = "You have been logged out." if "logged_out" in request.query_params else None
    return templates.TemplateResponse(
        request, "auth/login.html", {"user": None, "active": "login", "next": next, "notice": notice}
    )


@router.post("/login", name="login", dependencies=[rate_limit("login")])
async def login(
    request: Request,
    manager: UserManagerDep,
    strategy: StrategyDep,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    credentials = OAuth2PasswordRequestForm(username=email.strip(), password=password)
    user = await manager.authenticate(credentials)
    if user is None or not user.is_active:
        context = {"user": None, "active": "login", "next": next, "email": email}
        context["error"] = "This account has been deactivated." if user else "Wrong email or password."
        return templates.TemplateResponse(request, "auth/login.html", context, status_code=400)
    return await _log_in(request, user, manager, strategy, safe_next(next))


@router.get("/signup", name="signup_page")
async def signup_page(request: Request, user: OptionalUser) -> Response:
    if user:
        return redirect("/library")
    return templates.TemplateResponse(
        request,
        "auth/signup.html",
        {"user": None, "active": "signup", "min_password_length": get_settings().min_password_length},
    )


@router.post("/signup", name="signup", dependencies=[rate_limit("register")])
async def signup(
    request: Request,
    manager: UserManagerDep,
    strategy: StrategyDep,
    name: Annotated[str, Form(max_length=1000)] = "",
    email: Annotated[str, Form(max_length=1000)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    context = {
        "user": None,
        "active": "signup",
        "name": name,
        "email": email,
        "min_password_length": get_settings().min_password_length,
    }
    try:
        new_user = UserCreate(email=email.strip(), password=password, name=name.strip())
        user = await manager.create(new_user, safe=True, request=request)
    except ValidationError as exc:
        fields = {str(err["loc"][0]) for err in exc.errors() if err["loc"]}
        context["error"] = (
            "Enter a valid email address." if "email" in fields else "Name must be at most 100 characters."
        )
    except exceptions.UserAlreadyExists:
        context["error"] = "An account with this email already exists. Log in instead."
    except exceptions.InvalidPasswordException as exc:
        context["error"] = exc.reason
    else:
        return await _log_in(request, user, manager, strategy, "/library")
    return templates.TemplateResponse(request, "auth/signup.html", context, status_code=400)


@router.post("/logout", name="logout")
async def logout(request: Request, strategy: StrategyDep, user: OptionalUser) -> Response:
    token = request.cookies.get(cookie_backend.transport.cookie_name)
    if user is not None and token:
        await strategy.destroy_token(token, user)
    response = await cookie_backend.transport.get_logout_response()
    return redirect("/login?logged_out=1", response)
