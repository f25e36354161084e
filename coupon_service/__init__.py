"""coupon_service: First-come-first-served coupons and owned coupons; the coupon step of the payment saga."""
