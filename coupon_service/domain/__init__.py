"""The coupon domain: pure rules, no IO."""
