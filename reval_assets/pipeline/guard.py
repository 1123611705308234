"""The environment guard: production is hard to hit by accident."""

from __future__ import annotations

from reval_assets.domain.enums import Environment


class GuardRefused(Exception):
    """A publish or rollback in staging/prod without the typed confirmation."""


def require_confirmation(env: Environment, confirm: str | None, action: str) -> None:
    if not env.needs_confirmation or Environment.spelled(confirm) == env.value:
        return
    given = f" (got {confirm!r})" if confirm else ""
    raise GuardRefused(
        f"REFUSED: this is {env.value.upper()}; {action} changes what every admin sees. "
        f"Nothing was changed. To go ahead, confirm the environment by name{given}: "
        f"`--confirm {env.value}` on the command line, or `confirm: {env.value}` in the Dagster run config."
    )
