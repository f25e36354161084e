"""Names that live in two places stay the same: the admin schemas' literals and the domain, each
participant's topic, and the request hash an Idempotency-Key replay is checked with."""

from __future__ import annotations

import hashlib
from typing import get_args

import pytest

from order_service.api.admin_schemas import Kind, UnfinishedStep
from order_service.api.schemas import PlaceOrderRequest
from order_service.domain.commands import PlaceOrder
from order_service.domain.history import KINDS
from order_service.domain.saga import TERMINAL, Participant, Step
from order_service.service.saga_runner import COMMAND_TOPIC


def test_the_admin_literals_are_the_domains() -> None:
    assert get_args(UnfinishedStep) == tuple(str(s) for s in Step if s not in TERMINAL)
    assert get_args(Kind) == KINDS


def test_each_participant_has_its_command_topic() -> None:
    assert set(COMMAND_TOPIC) == set(Participant)
    assert all(COMMAND_TOPIC[p] == p.value for p in Participant)


@pytest.mark.parametrize(
    "body",
    [
        {"user_id": 1, "items": [{"product_id": 12, "quantity": 3}, {"product_id": 2, "quantity": 1}]},
        {"user_id": 99, "items": [{"product_id": 5, "quantity": 1000}], "user_coupon_id": 7},
    ],
)
def test_the_request_hash_is_the_normalised_bodys(body: dict[str, object]) -> None:
    request = PlaceOrderRequest.model_validate(body)
    cmd = PlaceOrder(request.user_id, {i.product_id: i.quantity for i in request.items}, request.user_coupon_id, "key")
    assert cmd.request_hash == hashlib.sha256(request.model_dump_json().encode()).hexdigest()
    assert PlaceOrder(cmd.user_id, cmd.items, cmd.user_coupon_id).request_hash == ""
