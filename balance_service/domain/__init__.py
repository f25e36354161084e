"""The balance context's pure rules: limits, sufficiency, history entries, saga decisions (no IO)."""
