"""balance_service: Users, balances and balance history; the balance step of the payment saga."""
