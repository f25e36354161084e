"""What a failed database call raises, for callers that log it and try again later."""

from __future__ import annotations

import asyncpg

DATABASE_ERRORS: tuple[type[Exception], ...] = (asyncpg.PostgresError, OSError)
