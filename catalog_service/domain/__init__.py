"""The catalog's pure domain: products, the status rule and the stock checks (no IO)."""
