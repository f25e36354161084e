"""Use cases of ranking_service, shared by the HTTP views, the consumer and the scheduler."""
