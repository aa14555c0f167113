"""Protections applied to every request: security headers, the cross-site (CSRF) check, rate limits."""
