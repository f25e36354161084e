"""ranking_service: Sales statistics from order.completed events and the top-products ranking."""
