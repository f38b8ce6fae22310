"""Throttles of the auth endpoints: per client address, and per account for login."""

import hashlib

from rest_framework.throttling import SimpleRateThrottle


class AddressRateThrottle(SimpleRateThrottle):
    """Requests per client address: REMOTE_ADDR, which on Lambda is the sourceIp API Gateway saw
    (project.middleware.SourceAddressMiddleware), never X-Forwarded-For, which the client writes."""

    scope = "auth"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": request.META.get("REMOTE_ADDR", "")}


class AccountRateThrottle(SimpleRateThrottle):
    """Login attempts per account (the email asked for, whoever asks): a fleet of addresses shares one budget."""

    scope = "auth_account"

    def get_cache_key(self, request, view):
        data = request.data
        email = data.get("email") if hasattr(data, "get") else None
        if not isinstance(email, str) or not email.strip():
            return None  # nothing to guess against: the serializer answers 400
        # Hashed: the cache key never carries the address itself.
        ident = hashlib.sha256(email.strip().lower().encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}
