"""One family of errors; each carries the API's error code. The web edge maps codes to statuses."""


class PhotoSessionError(Exception):
    code = "error"
    default_message = "The request could not be carried out."

    def __init__(self, message: str | None = None):
        super().__init__(message or self.default_message)
        self.message = message or self.default_message


class UnknownEvent(PhotoSessionError):
    code = "unknown_event"
    default_message = "There is no such event."


class InvalidTitle(PhotoSessionError):
    code = "invalid_title"
    default_message = "A title needs 1 to 200 characters."


class InvalidRequest(PhotoSessionError):
    code = "invalid_request"
    default_message = "The request is malformed."


class VotingInProgress(PhotoSessionError):
    code = "voting_in_progress"
    default_message = "A vote is running on this event: photos are accepted again if it aborts."


class EventPublished(PhotoSessionError):
    code = "event_published"
    default_message = "This event's montage is published; it takes no more photos or votes."


class ContributorLimit(PhotoSessionError):
    code = "contributor_limit"
    default_message = "This event already has as many contributors as it allows."


class NotSubmitter(PhotoSessionError):
    code = "not_submitter"
    default_message = "Only people who submitted a photo to this event may do this."


class SupersededMontage(PhotoSessionError):
    code = "superseded_montage"
    default_message = "That montage is no longer the current one; look at the new one and vote on it."


class AlreadyVoted(PhotoSessionError):
    code = "already_voted"
    default_message = "Your vote on this round is already recorded, and it is final."


class NoVoteInProgress(PhotoSessionError):
    code = "no_vote_in_progress"
    default_message = "No vote is running; accept the montage to start one."


class VotingClosed(PhotoSessionError):
    code = "voting_closed"
    default_message = "Voting on this round has closed."


class TooLarge(PhotoSessionError):
    code = "too_large"
    default_message = "The file is larger than this event accepts."


class UnsupportedMediaType(PhotoSessionError):
    code = "unsupported_media_type"
    default_message = "Only JPEG, PNG, WebP and HEIC photos are accepted."


class InvalidImage(PhotoSessionError):
    code = "invalid_image"
    default_message = "The image could not be read (truncated, corrupt or too many pixels)."


class NotPublished(PhotoSessionError):
    code = "not_published"
    default_message = "This event's montage is not published yet."


class NoMontage(PhotoSessionError):
    code = "no_montage"
    default_message = "There is no montage of that version."


class SiteUnreachable(PhotoSessionError):
    code = "site_unreachable"
    default_message = "Another site could not be reached, so nothing was changed. Try again."


class OutcomeUnknown(PhotoSessionError):
    """Indefinite: the change may or may not have been made (a site stalled or an answer was
    lost); reading the event tells which. Retrying an upload may add the photos twice."""

    code = "outcome_unknown"
    default_message = "This site could not confirm whether the change was made; reload the event to see."


class Busy(PhotoSessionError):
    code = "busy"
    default_message = "The event is busy with other uploads; nothing was changed. Try again."


class StorageUnavailable(PhotoSessionError):
    code = "storage_unavailable"
    default_message = "This site cannot write to its storage; nothing was changed."


class StorageNotDurable(PhotoSessionError):
    """At start: the store would not make a committed write a forced write; the site refuses."""

    code = "storage_not_durable"
    default_message = "The event store is not set up to write durably; the site will not start."
