"""The offline Stripe sandbox's credentials and prices in the test stack, and the front end's origin."""

STRIPE_KEY, STRIPE_WEBHOOK_SECRET = "sk_test_sandbox_0123456789", "whsec_test_0123456789"
PRICES = {"price_pro_monthly": 2_000, "price_business_monthly": 10_000}
FRONTEND_ORIGIN = "http://app.example.test"
