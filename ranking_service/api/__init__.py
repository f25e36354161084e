"""HTTP interface of ranking_service."""
