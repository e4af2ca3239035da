"""Permission groups (names and ids as Cloudflare has them) and what each operation accepts."""

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

# Cloudflare's ids of these groups (GET /accounts/{a}/tokens/permission_groups on Cloudflare), so a token
# request written for Cloudflare (policies[].permission_groups[].id) works unchanged.
GROUP_IDS: dict[str, str] = {
    AI_GATEWAY_READ: "4dc8917b4b40457d88d3035d5dadb054",
    AI_GATEWAY_WRITE: "6c8a3737f07f46369c1ea1f22138daaf",
    AI_GATEWAY_RUN: "644535f4ed854494a59cb289d634b257",
    SECRETS_READ: "5e33b7d77788455c9fdf18cbd38ee5a0",
    SECRETS_WRITE: "adc8fa2bc6124928a8b3314dc63a1235",
    TOKENS_READ: "eb56a6953c034b9d97dd838155666f06",
    TOKENS_WRITE: "5bc3f8b21c554832afc660159ab75fa4",
}
GROUP_NAMES: dict[str, str] = {group_id: name for name, group_id in GROUP_IDS.items()}
ACCOUNT_SCOPE = "com.cloudflare.api.account"


def group_name(id_or_name: str) -> str | None:
    """The group's name from its Cloudflare id or its name; None when Sluice has no such group."""
    if id_or_name in GROUP_NAMES:
        return GROUP_NAMES[id_or_name]
    return id_or_name if id_or_name in GROUP_IDS else None


# operation -> accepted permission groups (holding at least one is enough); docs/api.md#authentication.
CONFIG_WRITE = (SECRETS_WRITE,)
CONFIG_READ = (SECRETS_READ, SECRETS_WRITE, AI_GATEWAY_READ, AI_GATEWAY_WRITE)
GATEWAY_WRITE = (AI_GATEWAY_WRITE,)
GATEWAY_READ = (AI_GATEWAY_READ, AI_GATEWAY_WRITE)
STORE_WRITE = (SECRETS_WRITE,)
STORE_READ = (SECRETS_READ, SECRETS_WRITE)
TOKEN_WRITE = (TOKENS_WRITE,)
TOKEN_READ = (TOKENS_READ, TOKENS_WRITE)
