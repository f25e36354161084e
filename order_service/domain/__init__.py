"""The order and its payment saga: pure values and rules, no IO."""
