"""Errors on pages: DomainErrors and HTTP errors render the NHS-style error page.

The JSON API keeps its JSON error bodies; `is_api_request` decides which a request gets.
A page that needs a signed-in user redirects to the sign-in page instead of showing 401.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.auth.dependencies import is_api_request
from app.errors import DomainError
from app.ui.templating import render

HEADINGS = {
    400: "There is a problem with your request",
    401: "Sign in to continue",
    403: "You do not have permission to view this page",
    404: "Page not found",
    405: "That action is not available here",
    409: "That could not be done",
    422: "There is a problem with the details you entered",
    429: "Too many attempts",
}


def sign_in_redirect(request: Request) -> RedirectResponse:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    return RedirectResponse(f"/sign-in?next={quote(target, safe='')}", status_code=303)


def error_page(request: Request, status_code: int, message: str) -> Response:
    heading = HEADINGS.get(status_code, "Sorry, there is a problem with the service")
    return render(
        request,
        "error.html",
        {"heading": heading, "message": message, "page_title": heading},
        status_code=status_code,
    )


def domain_error_response(request: Request, error: DomainError) -> Response:
    if not is_api_request(request):
        if error.status_code == 401:
            return sign_in_redirect(request)
        return error_page(request, error.status_code, error.message)
    body: dict[str, object] = {"detail": error.message, "code": error.code}
    if error.details:
        body["errors"] = error.details
    return JSONResponse(status_code=error.status_code, content=body)


def install_page_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if is_api_request(request):
            return JSONResponse(
                {"detail": error.detail}, status_code=error.status_code, headers=error.headers
            )
        message = (
            "If you typed the web address, check it is correct."
            if error.status_code == 404
            else str(error.detail)
        )
        return error_page(request, error.status_code, message)
