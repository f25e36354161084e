"""Pure rules of the ranking context (``model``), its commands and its errors."""
