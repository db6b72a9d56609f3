"""The profile form of the user's account page, built from the data dictionary: every claim whose
writers include `user`, with an input chosen by the claim's type, checked by the catalogue's
validators and written with the source `user`.

A form field is a small object with what the page's macros need (`id`, `name`, `errors`), so the
shared error helpers (`invalid_attributes`, `field_errors`) tie each message to its input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict

from idp.identity.catalogue import (
    ADDRESS_PARTS,
    MAX_TEXT,
    ClaimDeclaration,
    ClaimRefused,
    catalogue,
    check_write,
)

WRITER = "user"
GENDERS = ("female", "male")
# What a person reads when the catalogue refuses a value, by the claim's type.
TYPE_ERRORS = {
    "string": _l("Use at most %(count)s characters.", count=MAX_TEXT),
    "url": _l("Enter a web address starting with http:// or https://."),
    "integer": _l("Enter a whole number."),
    "boolean": _l("Tick the box or leave it empty."),
    "date": _l("Enter a date as YYYY-MM-DD."),
    "gender": _l("Choose one of the options."),
    "birthdate": _l("Enter a date as YYYY-MM-DD, 0000-MM-DD (year withheld) or just the year."),
    "address": _l("Use at most %(count)s characters in each part of the address.", count=MAX_TEXT),
}
LABELS = {
    "name": _l("Name"), "nickname": _l("Nickname"), "picture": _l("Picture URL"),
    "locale": _l("Language (e.g. zh-CN)"), "gender": _l("Gender"), "birthdate": _l("Birthdate"),
    "address": _l("Address"),
}
ADDRESS_LABELS = {
    "formatted": _l("Full address as written on mail"), "street_address": _l("Street address"),
    "locality": _l("City"), "region": _l("Province or region"),
    "postal_code": _l("Postal code"), "country": _l("Country"),
}
GENDER_LABELS = {"female": _l("Female"), "male": _l("Male")}


@dataclass
class ProfileField:
    """One input of the form (an address part is one too)."""

    name: str
    claim: ClaimDeclaration
    label: Any
    value: str = ""
    errors: list[Any] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.name

    @property
    def input_type(self) -> str:
        """date for dates (a birthdate that a date input cannot show stays text), number for
        integers, checkbox for booleans, url for URLs, select for gender."""
        kind = self.claim.type
        if kind == "date" or (kind == "birthdate" and len(self.value) in (0, 10)
                              and not self.value.startswith("0000")):
            return "date"
        return {"integer": "number", "boolean": "checkbox", "url": "url",
                "gender": "select"}.get(kind, "text")

    @property
    def choices(self) -> list[tuple[str, Any]]:
        """A gender's options: unset, female, male, and a value stored by someone else."""
        options: list[tuple[str, Any]] = [("", _l("Not set"))]
        options += [(value, GENDER_LABELS[value]) for value in GENDERS]
        if self.value and self.value not in GENDERS:
            options.append((self.value, self.value))
        return options


@dataclass
class ProfileForm:
    fields: list[ProfileField]
    address: list[ProfileField]

    @property
    def errors(self) -> bool:
        return any(f.errors for f in [*self.fields, *self.address])


def user_claims_declared() -> list[ClaimDeclaration]:
    return [claim for claim in catalogue().claims.values() if WRITER in claim.writers]


def profile_form(stored: dict[str, tuple[str, str]]) -> ProfileForm:
    """The form showing the served values (`profile_values`)."""
    fields, address = [], []
    for claim in user_claims_declared():
        value = stored.get(claim.name, ("", ""))[0]
        if claim.type == "address":
            parts = _address_parts(value)
            address = [ProfileField(f"address-{part}", claim, ADDRESS_LABELS[part],
                                    parts.get(part, "")) for part in ADDRESS_PARTS]
            continue
        if claim.type == "boolean":
            value = value or "false"
        fields.append(ProfileField(claim.name, claim, LABELS.get(claim.name, claim.name), value))
    return ProfileForm(fields, address)


def _address_parts(stored: str) -> dict[str, str]:
    """The stored JSON object of parts; text that is not one shows as the formatted address."""
    try:
        parts = json.loads(stored) if stored else {}
    except ValueError:
        parts = None
    if not isinstance(parts, dict):
        return {"formatted": stored}
    return {part: str(text) for part, text in parts.items() if part in ADDRESS_PARTS}


def submitted_changes(form: ProfileForm, submitted: MultiDict[str, str]) -> dict[str, Any]:
    """{claim: value, or None to clear} for what the person changed, each checked by the
    catalogue; a refused value becomes its field's error, and then nothing is returned. A field
    sent twice is refused too (one value per field)."""
    changes: dict[str, Any] = {}
    for profile_field in form.fields:
        wanted = _one(submitted, profile_field)
        if profile_field.claim.type == "boolean":
            wanted = "true" if wanted else "false"
        if wanted is None or wanted == profile_field.value:
            continue
        if profile_field.input_type == "select" and wanted not in dict(profile_field.choices):
            profile_field.errors.append(TYPE_ERRORS["gender"])
            continue
        profile_field.value = wanted
        _check([profile_field], wanted, changes)
    if form.address:
        parts = {_part(f): _one(submitted, f) for f in form.address}
        if None not in parts.values() and parts != {_part(f): f.value for f in form.address}:
            for address_field in form.address:
                address_field.value = parts[_part(address_field)] or ""
            _check(form.address, {part: text for part, text in parts.items() if text}, changes)
    return {} if form.errors else changes


def _part(address_field: ProfileField) -> str:
    return address_field.name.removeprefix("address-")


def _one(submitted: MultiDict[str, str], profile_field: ProfileField) -> str | None:
    """The field's single value, stripped; None when it was sent more than once. A browser
    leaves out only an unticked box; another field left out stays as it is."""
    values = submitted.getlist(profile_field.name)
    if len(values) > 1:
        profile_field.errors.append(_l("This field was sent more than once."))
        return None
    if not values:
        return "" if profile_field.input_type == "checkbox" else profile_field.value
    return values[0].strip()


def _check(fields: list[ProfileField], wanted: Any, changes: dict[str, Any]) -> None:
    """The catalogue's verdict; a refusal is shown on the offending input (for an address, the
    over-long part, else the first)."""
    claim = fields[0].claim
    try:
        check_write(claim.name, wanted, WRITER)
    except ClaimRefused:
        target = next((f for f in fields if len(f.value) > MAX_TEXT), fields[0])
        target.errors.append(TYPE_ERRORS[claim.type])
        return
    changes[claim.name] = wanted or None
