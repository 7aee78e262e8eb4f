"""The audit page's sentences for acknowledgements, in both stored forms."""

from web.pages.audit_view import sentence


def acknowledged(**data) -> dict:
    return {"at": "2026-12-01T10:00:00+00:00", "role": "coordinator", "type": "Acknowledged",
            "data": {"txn_id": "0-up", **data}}


def test_one_record_names_every_site_that_acknowledged():
    text = sentence(acknowledged(sites=[2, 0, 3]), "add a photo", {})
    assert text == "heard sites 2, 0, 3 acknowledge the decision to add a photo"


def test_a_record_of_one_site_as_logs_before_stored_it_reads_as_before():
    assert sentence(acknowledged(site=1), "add a photo", {}) == "heard site 1 acknowledge the decision to add a photo"
