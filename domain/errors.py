"""One family of errors; each carries the API's error code. The web edge maps codes to statuses."""


class PhotoSessionError(Exception):
    code = "error"
    default_message = "The request could not be carried out."

    def __init__(self, message: str | None = None):
        super().__init__(message or self.default_message)
        self.message = message or self.default_message


class UnknownEvent(PhotoSessionError):
    code = "unknown_event"
    default_message = "There is no such event. Check the link you were given."


class InvalidTitle(PhotoSessionError):
    code = "invalid_title"
    default_message = "Give the event a title of 1 to 200 characters."


class InvalidRequest(PhotoSessionError):
    code = "invalid_request"
    default_message = "The request is malformed."


class VotingInProgress(PhotoSessionError):
    code = "voting_in_progress"
    default_message = ("A vote on the montage is running, so no photos can be added until it ends. "
                       "If the vote doesn't publish the montage, photos can be added again.")


class EventPublished(PhotoSessionError):
    code = "event_published"
    default_message = "This event's montage is published: it takes no more photos or votes."


class ContributorLimit(PhotoSessionError):
    code = "contributor_limit"
    default_message = "This event already has as many people adding photos as it allows."


class NotSubmitter(PhotoSessionError):
    code = "not_submitter"
    default_message = "Only people who added a photo to this event can do this. Add yours first."


class SupersededMontage(PhotoSessionError):
    code = "superseded_montage"
    default_message = "The montage changed in the meantime. Look at the new one, then vote on it."


class AlreadyVoted(PhotoSessionError):
    code = "already_voted"
    default_message = "Your vote on this round is already recorded. Votes can't be changed."


class NoVoteInProgress(PhotoSessionError):
    code = "no_vote_in_progress"
    default_message = "No vote is running. Accept the montage to start one."


class VotingClosed(PhotoSessionError):
    code = "voting_closed"
    default_message = "Voting on this round has closed and the votes are being counted."


class TooLarge(PhotoSessionError):
    code = "too_large"
    default_message = "This photo is larger than this event takes. Try a smaller copy."


class UnsupportedMediaType(PhotoSessionError):
    code = "unsupported_media_type"
    default_message = "This file isn't a photo the event can take. Send a JPEG, PNG, WebP or HEIC photo."


class InvalidImage(PhotoSessionError):
    code = "invalid_image"
    default_message = ("This photo couldn't be opened: it may be damaged, cut short, or far too large "
                       "in pixels.")


class NotPublished(PhotoSessionError):
    code = "not_published"
    default_message = "This event's montage is not published yet."


class NoMontage(PhotoSessionError):
    code = "no_montage"
    default_message = "There is no montage of that version."


class SiteUnreachable(PhotoSessionError):
    code = "site_unreachable"
    default_message = ("One of the event's sites can't be reached right now, so nothing was changed. "
                       "Try again in a minute.")


class OutcomeUnknown(PhotoSessionError):
    """Indefinite: the change may or may not have been made (a site stalled or an answer was
    lost); reading the event tells which. Retrying an upload may add the photos twice."""

    code = "outcome_unknown"
    default_message = ("This site couldn't confirm whether that worked. Reload the event in a moment "
                       "to see.")


class Busy(PhotoSessionError):
    code = "busy"
    default_message = "Lots of photos are arriving at once, so nothing was changed. Try again."


class StorageUnavailable(PhotoSessionError):
    code = "storage_unavailable"
    default_message = "This site can't save anything right now, so nothing was changed. Try again later."


class StorageNotDurable(PhotoSessionError):
    """At start: the store would not make a committed write a forced write; the site refuses."""

    code = "storage_not_durable"
    default_message = "The event store is not set up to write durably; the site will not start."
