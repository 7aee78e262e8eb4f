"""The one place where errors become HTTP: the API's codes and statuses, as JSON."""

from __future__ import annotations

import logging

from aiohttp import hdrs, web

from domain import errors
from web.json_codec import json_response

log = logging.getLogger(__name__)

STATUS = {
    errors.UnknownEvent: 404,
    errors.NoMontage: 404,
    errors.NotPublished: 404,
    errors.InvalidTitle: 400,
    errors.InvalidRequest: 400,
    errors.VotingInProgress: 409,
    errors.EventPublished: 409,
    errors.ContributorLimit: 403,
    errors.SupersededMontage: 409,
    errors.AlreadyVoted: 409,
    errors.NoVoteInProgress: 409,
    errors.VotingClosed: 409,
    errors.NotSubmitter: 403,
    errors.TooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.InvalidImage: 422,
    errors.SiteUnreachable: 503,
    errors.Busy: 503,
    errors.OutcomeUnknown: 504,
    errors.StorageUnavailable: 503,
}

# Every error code of the family; refusal reasons that are not among them (a conflict, a site
# that did not answer) mean the change could not be made everywhere: 503.
CODES = {cls.code: cls for cls in STATUS}


def error_for_reason(reason: str | None) -> errors.PhotoSessionError:
    """A transaction or vote refused for `reason`, as the error its client sees."""
    cls = CODES.get(reason or "")
    return cls() if cls else errors.SiteUnreachable()


def json_error(status: int, code: str, message: str) -> web.Response:
    return json_response({"error": code, "message": message}, status=status)


def _kept_headers(e: web.HTTPException) -> list[tuple[str, str]]:
    """What an HTTP error says beside its body (Allow, Retry-After...), not how its body looks."""
    body_headers = {h.lower() for h in (hdrs.CONTENT_TYPE, hdrs.CONTENT_LENGTH, hdrs.CONTENT_ENCODING)}
    return [(name, value) for name, value in e.headers.items() if name.lower() not in body_headers]


@web.middleware
async def error_middleware(request: web.Request, handler):
    try:
        return await handler(request)
    except errors.PhotoSessionError as e:
        return json_error(STATUS.get(type(e), 400), e.code, e.message)
    except web.HTTPException as e:
        if e.status >= 400 and request.path.startswith("/api/"):
            code = {404: "not_found", 405: "method_not_allowed"}.get(e.status, "http_error")
            response = json_error(e.status, code, e.reason)
            response.headers.extend(_kept_headers(e))  # a 405 says what is Allowed
            return response
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(500, "internal", "Something went wrong on this site; nothing was lost.")
