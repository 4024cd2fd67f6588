"""Form fields -> the input models (inputs/), collecting every problem so the page can show
them all. Only the reading of Starlette's FormData lives here; the rules are the models'."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData

from ...errors import DomainError, Invalid
from ...inputs import InputError
from ...inputs.campaign import CampaignText, MilestoneRow
from ...inputs.gift import GiftText
from ...inputs.text import check_reason
from ...money import major_text

__all__ = ["CampaignForm", "FormError", "GiftForm", "error_messages", "major_text"]


class FormError(Invalid):
    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def error_messages(exc: DomainError) -> list[str]:
    """What a re-rendered form lists: every field's message, or the one domain error."""
    if isinstance(exc, FormError | InputError):
        return list(exc.errors)
    return [exc.message]


def _text(form: FormData, name: str, limit: int, *, strip: bool = True) -> str:
    """A field as typed, cut far past its column's length (the model then says it is too
    long): the page shows it again, and nothing reads a megabyte of it. Free text is left
    unstripped: the model strips it after refusing control characters at its ends too."""
    value = form.get(name, "")
    text = (value if isinstance(value, str) else "")[: 2 * limit]
    return text.strip()[:limit] if strip else text[:limit]


class CampaignForm(CampaignText):
    @classmethod
    def parse(cls, form: FormData) -> CampaignForm:
        amounts = [str(v) for v in form.getlist("ms_amount")]
        labels = [str(v) for v in form.getlist("ms_label")]
        kinds = [str(v) for v in form.getlist("ms_kind")]
        rows = [
            MilestoneRow(
                a.strip()[:40],
                (labels[i] if i < len(labels) else "").strip()[:200],
                kinds[i] if i < len(kinds) else "goal",
            )
            for i, a in enumerate(amounts[:50])
        ]
        return cls(
            slug=_text(form, "slug", 100).lower(),
            title=_text(form, "title", 300, strip=False),
            description=_text(form, "description", 6000, strip=False),
            currency=_text(form, "currency", 10).upper(),
            milestones=rows,
            deadline=_text(form, "deadline", 20),
            policy=_text(form, "policy", 20),
            presets=_text(form, "presets", 500),
            min_amount=_text(form, "min_amount", 40),
            max_amount=_text(form, "max_amount", 40),
            donor_wall=form.get("donor_wall") == "on",
            locale=_text(form, "locale", 40),
            theme=_text(form, "theme", 20),
            accent=_text(form, "accent", 20).lower(),
            compact=form.get("compact") == "on",
            reason=_text(form, "reason", 1100, strip=False),
        )

    def checked_reason(self) -> str | None:
        return check_reason(self.reason)


class GiftForm(GiftText):
    @classmethod
    def parse(cls, form: FormData) -> GiftForm:
        return cls(
            campaign=_text(form, "campaign", 100),
            amount=_text(form, "amount", 40),
            date=_text(form, "date", 40),
            donor_name=_text(form, "donor_name", 300, strip=False),
            donor_email=_text(form, "donor_email", 400, strip=False),
            source=_text(form, "source", 40),
            note=_text(form, "note", 2100, strip=False),
            original_amount=_text(form, "original_amount", 40),
            original_currency=_text(form, "original_currency", 10).upper(),
            exchange_rate=_text(form, "exchange_rate", 40),
            reason=_text(form, "reason", 1100, strip=False),
        )

    def values(self, currency: str) -> dict[str, Any]:
        """Arguments for services.gifts.record_offline_gift, or InputError."""
        gift = self.gift(currency)
        return {"amount": gift.amount, **gift.as_kwargs()}
