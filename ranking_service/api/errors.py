"""The single map from domain errors to HTTP problems."""

from ranking_service.domain.errors import InvalidRebuildDayError, RankingError
from shared.web.problems import ErrorMap, ProblemSpec

ERROR_MAP: ErrorMap = {
    InvalidRebuildDayError: ProblemSpec(400, "VALIDATION_ERROR", "Invalid request"),
    RankingError: ProblemSpec(500, "RANKING_ERROR", "Ranking error"),
}
