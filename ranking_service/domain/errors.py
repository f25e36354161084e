"""The errors of the ranking context (one root, mapped to HTTP problems in ``api.errors``)."""


class RankingError(Exception):
    """Root of every ranking_service error."""


class InvalidRebuildDayError(RankingError):
    """A rebuild was asked for a day that is not closed yet, or too far back."""
