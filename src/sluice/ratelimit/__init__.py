"""Rate limiters behind one Protocol (``base.RateLimiter``); ``backends.make_limiter`` picks one."""
