"""Events of the user registry (published by balance_service on ``user.registered``)."""

from datetime import datetime
from typing import ClassVar

from shared.messaging.envelope import Message


class UserRegistered(Message):
    """A user was created. Key: ``user_id``. Coupon and order services project it."""

    event_type: ClassVar[str] = "UserRegistered"

    user_id: int
    name: str
    created_at: datetime


MESSAGES = (UserRegistered,)
