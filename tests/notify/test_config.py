"""`notifications:` and `tickets:` in the YAML: a mistake is one line naming the key; the webhook
filter (states both ways, tag values or lists)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import ConfigError, WebhookConfig, load_settings
from notify.webhooks import Hook, sign


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("notifications: {webhooks: [{url: 'ftp://x/y', secret: s}]}",
         "notifications.webhooks.0.url: webhook url must start with http:// or https://, got 'ftp':…"),
        ("notifications: {webhooks: [{url: 'http://x/y', secret: s, states: [offlin]}]}",
         "notifications.webhooks.0.states: unknown state 'offlin'; states are offline, frozen, black, tampered, unknown, online, starting"),
        ("notifications: {webhooks: [{url: 'http://x/y'}]}", "notifications.webhooks.0.secret: Field required"),
        ("notifications: {webhooks: [{url: 'http://x/y', secret: s, colour: red}]}", "notifications.webhooks.0.colour: unknown key"),
        ("tickets: {open_after_s: {online: 5}}", "tickets.open_after_s: 'online' is not a fault state (offline, frozen, black, tampered, unknown)"),
    ],
)  # fmt: skip
def test_a_bad_entry_is_one_clear_line(tmp_path: Path, yaml_text: str, message: str) -> None:
    p = tmp_path / "vigil.yaml"
    p.write_text(yaml_text)
    with pytest.raises(ConfigError) as e:
        load_settings(p)
    assert str(e.value) == f"{p}: {message}"
    assert "\n" not in str(e.value)


def test_the_filter_and_the_signature() -> None:
    h = Hook(WebhookConfig(url="https://user:pw@ops.example/hook?token=abc", secret="k", tags={"district": ["n", "e"]}))
    assert h.name.startswith("wh-") and "pw" not in h.safe_url and "abc" not in h.safe_url
    assert h.wants(("online", "offline"), {"district": "n"})
    assert h.wants(("offline", "online"), {"district": "e"})  # a recovery from a watched fault
    assert not h.wants(("starting", "online"), {"district": "n"})
    assert not h.wants(("online", "offline"), {"district": "s"}) and not h.wants(("online", "offline"), {})
    # RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?")
    assert sign("Jefe", b"what do ya want for nothing?") == "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
