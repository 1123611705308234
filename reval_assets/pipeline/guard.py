"""The environment guard: production is hard to hit by accident."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reval_assets.domain.enums import Environment
from reval_assets.errors import REFUSED, RevalError
from reval_assets.store.snapshots import VERSION_ID

if TYPE_CHECKING:
    from reval_assets.pipeline.runtime import Runtime


class GuardRefused(RevalError):
    """A publish or rollback in staging/prod without the typed confirmation; nothing was changed."""

    exit_code, kind = REFUSED, "refused"


def require_confirmation(env: Environment, confirm: str | None, action: str) -> None:
    if not env.needs_confirmation or Environment.spelled(confirm) == env.value:
        return
    given = f" (got {confirm!r})" if confirm else ""
    raise GuardRefused(
        f"REFUSED: this is {env.value.upper()}; {action} changes what every admin sees. "
        f"Nothing was changed. To go ahead, confirm the environment by name{given}: "
        f"`--confirm {env.value}` on the command line, or `confirm: {env.value}` in the Dagster run config."
    )


def guarded(runtime: Runtime, action: str, version: str | None, actor: str, reason: str, confirm: str | None,
            *, audited_as: str | None = None) -> None:
    """Refuse without the typed confirmation, and audit the refusal: the one place a refusal is audited
    (`reval sync`, publish, rollback and gc, from the command or from Dagster). `audited_as` names the action
    in the audit detail when it is not `action` (`reval sync` refuses "publishing" as "sync"). A refused id
    that is no version id of ours is audited in the detail only: the catalog's version column holds
    generated ids."""
    env = runtime.settings.env
    try:
        require_confirmation(env, confirm, action)
    except GuardRefused as refusal:
        ours = version if version is not None and VERSION_ID.match(version) else None
        detail = {"action": audited_as or action, "message": str(refusal),
                  **({} if ours == version else {"given": (version or "")[:100]})}
        runtime.live.audit("refuse", ours, actor, env.value, reason, detail)
        raise
