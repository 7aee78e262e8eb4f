"""Every refusal of the API (its error codes) as a sentence for a wedding guest: what happened,
and what to do. The page's script and the no-script forms say the same ({max_mb} and
{max_contributors} are filled in).

A code that means something different depending on what was tried has a sentence per action:
"upload.site_unreachable" wins over "site_unreachable" for an upload.
"""

from __future__ import annotations

SENTENCES = {
    # Uploads
    "too_large": "This photo is larger than {max_mb} MB, the most this event takes per photo. "
                 "Try a smaller copy (most phones can share a smaller size).",
    "unsupported_media_type": "This file isn't a photo the event can take. Send a JPEG, PNG, WebP or "
                              "HEIC (iPhone) photo.",
    "invalid_image": "This photo couldn't be opened: it may be damaged, cut short, or far too large "
                     "in pixels. Try exporting it again from your phone or computer.",
    "voting_in_progress": "A vote on the montage is running, so no photos can be added until it ends. "
                          "If the vote doesn't publish the montage, you can add your photos then.",
    "contributor_limit": "This event already has {max_contributors} people adding photos, the most it "
                         "allows. Ask someone who already added photos to add yours.",
    "upload.site_unreachable": "One of the event's sites can't be reached right now, so your photo "
                               "wasn't added (every photo is kept on every site). Nothing was lost: "
                               "try again in a minute.",
    "busy": "Lots of photos are arriving at once, so yours wasn't added. Nothing was lost: try again.",
    # Votes
    "not_submitter": "Only people who added a photo can vote. Add yours first.",
    "superseded_montage": "The montage changed while you were looking at it. Look at the new one, "
                          "then vote on it.",
    "already_voted": "Your vote on this round is already recorded. Votes can't be changed.",
    "no_vote_in_progress": "No vote is running, so there is nothing to reject. Accept the montage "
                           "to start a vote.",
    "voting_closed": "Voting on this round has closed and the votes are being counted, so this vote "
                     "wasn't taken. The result shows here soon.",
    "vote.site_unreachable": "Your vote couldn't be saved: the site that keeps your vote, or the event's "
                             "home site, can't be reached right now. Nothing was recorded: try again "
                             "in a minute (before the time runs out).",
    # Both
    "event_published": "This event's montage is published: it takes no more photos or votes.",
    "unknown_event": "There is no such event. Check the link you were given.",
    "site_unreachable": "One of the event's sites can't be reached right now, so nothing was changed. "
                        "Try again in a minute.",
    "storage_unavailable": "This site can't save anything right now, so nothing was changed. "
                           "Try again in a few minutes.",
    "outcome_unknown": "This site couldn't confirm whether that worked. Reload the page in a moment "
                       "to see: if it isn't there, try again.",
    # Creating an event
    "invalid_title": "Give the event a title of 1 to 200 characters.",
    "create.site_unreachable": "The event couldn't be created because one of the sites can't be "
                               "reached right now. Nothing was created: try again in a minute.",
    # Anything
    "invalid_request": "The page sent something the site didn't understand. Reload the page and try again.",
    "forbidden_origin": "That request came from another website, so it was refused.",
    "csrf_token_invalid": "This page is out of date. Reload it and try again.",
    "internal": "Something went wrong on this site. Nothing was lost: please try again.",
    "network": "The connection dropped before the site answered. If your photo was saved it appears "
               "in the grid in a moment; otherwise try again.",
    "vote.network": "The connection dropped before your vote was confirmed. If it was recorded, it "
                    "shows here in a moment; otherwise try again.",
}


def sentences(max_mb: float, max_contributors: int) -> dict[str, str]:
    return {code: text.format(max_mb=f"{max_mb:g}", max_contributors=max_contributors)
            for code, text in SENTENCES.items()}


def sentence(table: dict[str, str], code: str, during: str = "") -> str:
    """The sentence for `code` when `during` ("upload", "vote", "create") was tried."""
    return table.get(f"{during}.{code}") or table.get(code) or ""
