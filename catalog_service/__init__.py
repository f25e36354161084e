"""catalog_service: Products with live stock; the stock step of the payment saga."""
