"""Issue 27 item 3: phones and emails are masked on admin pages; showing one in full is an
explicit action with a reason, in the audit trail (who, whose, which field, why), and
rate-limited per admin; searching by a full phone works without revealing it."""

from __future__ import annotations

from typing import Any

from idp.identity.masking import mask_email, mask_phone
from idp.identity.models import IdentityKind
from tests.admin.conftest import AdminBrowser, audit_of, text_of


def test_the_mask_keeps_the_first_three_and_last_four_digits() -> None:
    assert mask_phone("+8613812346183") == "138****6183"
    assert mask_phone("+447700900123") == "+4477****0123"
    assert mask_email("alice@example.com") == "a***@example.com"


def test_search_by_full_phone_finds_the_account_and_shows_it_masked(
    admin: AdminBrowser, make_user: Any
) -> None:
    alice = make_user(phone="+8613812346183", name="Alice", email="alice@example.com")
    page = text_of(admin.get("/admin/accounts?q=138 1234 6183"))
    results = page.split('<table class="results">', 1)[1].split("</table>", 1)[0]
    assert alice.id in results and "6183" not in results.replace(alice.id, "")
    page = text_of(admin.get(f"/admin/accounts/{alice.id}"))
    assert "138****6183" in page and "+8613812346183" not in page
    assert "a***@example.com" in page and "alice@example.com" not in page
    assert audit_of("admin.reveal") == []


def test_a_reveal_needs_a_reason_and_is_in_the_audit_trail(
    admin: AdminBrowser, make_user: Any
) -> None:
    alice = make_user(phone="+8613812346183")
    phone = next(i for i in alice.identities if i.kind == IdentityKind.PHONE)
    url = f"/admin/accounts/{alice.id}/identities/{phone.id}/reveal"
    refused = admin.submit(url, {"reason": ""})
    assert refused.status_code == 200 and "+8613812346183" not in text_of(refused)
    shown = admin.submit(url, {"reason": "caller asked which number is on file"})
    assert 'id="revealed-value">+8613812346183<' in text_of(shown)
    [event] = audit_of("admin.reveal")
    assert (event.actor_type, event.actor_id) == ("admin", admin.account.id)  # who
    assert event.account_id == alice.id  # whose
    assert event.details == {"field": "phone", "identity_id": phone.id}  # which field
    assert event.reason == "caller asked which number is on file"  # why


def test_reveals_are_rate_limited_per_admin(
    app: Any, admin: AdminBrowser, make_user: Any
) -> None:
    app.config["IDP_THROTTLE_ENABLED"] = True
    alice = make_user(phone="+8613812346183")
    phone = next(i for i in alice.identities if i.kind == IdentityKind.PHONE)
    url = f"/admin/accounts/{alice.id}/identities/{phone.id}/reveal"
    statuses = [admin.submit(url, {"reason": f"call {n}"}).status_code for n in range(11)]
    assert statuses == [200] * 10 + [429]
    assert len(audit_of("admin.reveal")) == 10
