"""Config of the operations team's side (`pgf-backup:operations`): who to call, in which order, what a restore
needs first, and each tier's recovery time objective.

Read by `pgf-backup runbook` (contacts, escalation, prerequisites) and `pgf-backup drill report` (the RTO target;
the RPO target is `alarms.rpo_hours`, the freshness alarm's, so that each target is written once). It is usually
set once in `Pulumi.yaml` (project-level config) for every stack.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from pgf_backup.config.types import Model, Tier
from pgf_backup.limits import DEFAULT_RTO_HOURS

Text = Annotated[str, Field(min_length=1, max_length=200)]
# An address with one @ and a dot in its domain: enough to catch a name typed in its place, without a dependency.
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]
# E.164: a plus sign, then 8 to 15 digits (spaces allowed for reading).
Phone = Annotated[str, Field(pattern=r"^\+[0-9][0-9 ]{6,18}[0-9]$")]
# A recovery time objective: at most a week (the drill's restore would time out long before).
RtoHours = Annotated[float, Field(gt=0, le=168)]


class Contact(Model):
    """Someone to call during a restore."""

    name: Text
    role: Text
    email: Email
    phone: Phone | None = None


class EscalationStep(Model):
    """Whom to call when a restore has not succeeded after `after_minutes`."""

    after_minutes: Annotated[int, Field(ge=0, le=7 * 24 * 60)]
    contact: Text


class Prerequisites(Model):
    """What must be in place before a restore starts, in the operators' words (each a line of the runbook)."""

    kms: tuple[Text, ...] = ()
    network: tuple[Text, ...] = ()
    access: tuple[Text, ...] = ()


class TierRto(Model):
    """Each tier's recovery time objective, in hours: a restore (or a drill's) must complete within it."""

    lab: RtoHours = DEFAULT_RTO_HOURS["lab"]
    dev: RtoHours = DEFAULT_RTO_HOURS["dev"]
    prod: RtoHours = DEFAULT_RTO_HOURS["prod"]

    def of(self, tier: Tier) -> float:
        """The tier's RTO in hours."""
        hours: float = getattr(self, tier)
        return hours


class Operations(Model):
    """Contacts, escalation, restore prerequisites and RTO targets (`pgf-backup:operations`)."""

    contacts: tuple[Contact, ...] = ()
    # In the order the steps apply: `after_minutes` never decreases.
    escalation: tuple[EscalationStep, ...] = ()
    prerequisites: Prerequisites = Prerequisites()
    rto_hours: TierRto = TierRto()

    @model_validator(mode="after")
    def _checks(self) -> Operations:
        errors: list[str] = []
        names = [c.name for c in self.contacts]
        for name in sorted({n for n in names if names.count(n) > 1}):
            errors.append(f"contacts: {name!r} is listed more than once")
        previous = -1
        for index, step in enumerate(self.escalation):
            if step.contact not in names:
                known = ", ".join(repr(n) for n in names) or "none are listed"
                errors.append(f"escalation[{index}].contact: {step.contact!r} is not a contact's name ({known})")
            if step.after_minutes < previous:
                errors.append(
                    f"escalation[{index}].after_minutes: {step.after_minutes} comes after a step at {previous}; "
                    "list the steps in the order they apply"
                )
            previous = max(previous, step.after_minutes)
        if errors:
            raise ValueError("\n".join(errors))
        return self
