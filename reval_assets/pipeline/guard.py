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


def require_confirmation(env: Environment, confirm: str | None, action: str, *, named: bool = True) -> None:
    """In staging and prod: the environment typed by name, and (`named`) someone the audit can name; a Dagster
    launch from the UI names no one unless its config's `operator` does."""
    confirmed = Environment.spelled(confirm) == env.value
    if not env.needs_confirmation or (confirmed and named):
        return
    needs = []
    if not confirmed:
        given = f" (got {confirm!r})" if confirm else ""
        needs.append(f"confirm the environment by name{given}: `--confirm {env.value}` on the command line, or "
                     f"`confirm: {env.value}` in the Dagster run config")
    if not named:
        needs.append("say who you are, for the audit: `operator: <your name>` in the Dagster run config")
    raise GuardRefused(f"REFUSED: this is {env.value.upper()}; {action} changes what every admin sees. "
                       f"Nothing was changed. To go ahead, {'; and '.join(needs)}.")


def guarded(runtime: Runtime, action: str, version: str | None, actor: str, reason: str, confirm: str | None,
            *, audited_as: str | None = None, named: bool = True) -> None:
    """Refuse without the typed confirmation, and audit the refusal: the one place a refusal is audited
    (`reval sync`, publish, rollback and gc, from the command or from Dagster). `audited_as` names the action
    in the audit detail when it is not `action` (`reval sync` refuses "publishing" as "sync"). A refused id
    that is no version id of ours is audited in the detail only: the catalog's version column holds
    generated ids. `named` false: `actor` is no one's name (a UI launch without `operator`), refused too."""
    try:
        require_confirmation(runtime.settings.env, confirm, action, named=named)
    except GuardRefused as refusal:
        _audit_refusal(runtime, refusal, audited_as or action, version, actor, reason)
        raise


def require_operator(runtime: Runtime, action: str, version: str | None, actor: str, reason: str) -> None:
    """In staging and prod, a Dagster launch that names no one (`operator` empty) is refused, and audited, where
    its audit would otherwise say only "dagster": checking a candidate again, which can unblock it."""
    env = runtime.settings.env
    if not env.needs_confirmation:
        return
    refusal = GuardRefused(f"REFUSED: this is {env.value.upper()}; {action} is audited by name. Nothing was "
                           "changed. To go ahead, say who you are, for the audit: `operator: <your name>` in the "
                           "Dagster run config.")
    _audit_refusal(runtime, refusal, action, version, actor, reason)
    raise refusal


def _audit_refusal(runtime: Runtime, refusal: GuardRefused, action: str, version: str | None, actor: str,
                   reason: str) -> None:
    ours = version if version is not None and VERSION_ID.match(version) else None
    given = {} if ours == version else {"given": (version or "")[:100]}
    detail = {"action": action, "message": str(refusal), **given}
    runtime.live.audit("refuse", ours, actor, runtime.settings.env.value, reason, detail)
