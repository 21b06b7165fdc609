"""An Idempotency-Key stored before the second round's create fields existed still matches the
same body after the upgrade (a retry across an upgrade must not be refused with 422)."""

from __future__ import annotations

import hashlib
import json

from novita_manager.services.idempotency import body_hash
from novita_manager.services.inputs import FIELDS_ADDED_LATER, CreateInstanceBody

BODY = {"name": "train-1", "productName": "RTX 4090 24GB", "templateId": 7}


def first_round_hash() -> str:
    """What the first round stored: the validated body's eight fields, None included."""
    form = {
        "name": "train-1",
        "productName": "RTX 4090 24GB",
        "templateId": "7",
        "gpuNum": 1,
        "rootfsSize": CreateInstanceBody.model_fields["rootfsSize"].default,
        "region": None,
        "billingMode": "spot",
        "webhookUrl": None,
    }
    canonical = json.dumps(form, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def test_a_first_round_body_hashes_as_before() -> None:
    assert body_hash(CreateInstanceBody.model_validate(BODY).idempotency_form()) == (
        first_round_hash()
    )


def test_a_new_field_given_changes_the_hash() -> None:
    plain = body_hash(CreateInstanceBody.model_validate(BODY).idempotency_form())
    capped = CreateInstanceBody.model_validate({**BODY, "maxPricePerHour": 0.5})
    assert body_hash(capped.idempotency_form()) != plain


def test_every_later_field_is_a_create_field() -> None:
    assert set(FIELDS_ADDED_LATER) <= set(CreateInstanceBody.model_fields)
