"""PostgreSQL adapters of the catalog: products and the saga's order_stock records."""
