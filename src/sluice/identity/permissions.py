"""Permission groups (names as Cloudflare writes them) and what each operation accepts."""

from __future__ import annotations

AI_GATEWAY_READ = "AI Gateway Read"
AI_GATEWAY_WRITE = "AI Gateway Write"
AI_GATEWAY_RUN = "AI Gateway Run"
SECRETS_READ = "Secrets Store Read"
SECRETS_WRITE = "Secrets Store Write"
TOKENS_READ = "Account API Tokens Read"
TOKENS_WRITE = "Account API Tokens Write"

ALL_GROUPS: tuple[str, ...] = (
    AI_GATEWAY_READ, AI_GATEWAY_WRITE, AI_GATEWAY_RUN, SECRETS_READ, SECRETS_WRITE, TOKENS_READ, TOKENS_WRITE,
)

# operation -> accepted permission groups (holding at least one is enough); docs/api.md#authentication.
CONFIG_WRITE = (SECRETS_WRITE,)
CONFIG_READ = (SECRETS_READ, SECRETS_WRITE, AI_GATEWAY_READ, AI_GATEWAY_WRITE)
GATEWAY_WRITE = (AI_GATEWAY_WRITE,)
GATEWAY_READ = (AI_GATEWAY_READ, AI_GATEWAY_WRITE)
STORE_WRITE = (SECRETS_WRITE,)
STORE_READ = (SECRETS_READ, SECRETS_WRITE)
TOKEN_WRITE = (TOKENS_WRITE,)
TOKEN_READ = (TOKENS_READ, TOKENS_WRITE)
