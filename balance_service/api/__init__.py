"""HTTP side of balance_service: public routes of API.md and the internal user lookup."""
