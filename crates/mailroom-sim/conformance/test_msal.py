"""msal (Microsoft Authentication Library for Python) against mailroom-sim's
identity platform: instance and tenant discovery, the device code flow in
each of its states, silent refresh with rotation, a confidential client, and
AADSTS errors as msal hands them to its caller.

Device code polls are made one at a time (`exit_condition=lambda flow:
True`, msal's documented non-blocking mode) and the simulator's clock is
moved instead of sleeping through the polling interval.
"""

import urllib.parse

import msal
import pytest

from conftest import (
    CONFIDENTIAL_CLIENT,
    CONFIDENTIAL_SECRET,
    DEMO,
    PUBLIC_CLIENT,
    USER1,
)

SCOPES = ["https://graph.microsoft.com/Mail.ReadWrite"]
ONCE = {"exit_condition": lambda flow: True}


def public_app(sim, tenant="organizations", host=None, discovery=False):
    """A public client of the simulator. With `discovery` msal validates the
    authority through the simulator's instance discovery endpoint; without
    it msal is told the authority is known (`instance_discovery=False`):
    msal 1.39 looks authority aliases up at login.microsoftonline.com
    whatever endpoint it was given."""
    authority = sim.authority if host is None else host
    return msal.PublicClientApplication(
        PUBLIC_CLIENT,
        authority=f"{authority}/{tenant}",
        instance_discovery=(
            f"{sim.authority}/common/discovery/instance" if discovery else False
        ),
    )


def test_instance_and_tenant_discovery(sim):
    app = public_app(sim, discovery=True)
    flow = app.initiate_device_flow(scopes=SCOPES)
    assert flow["verification_uri"] == sim.authority + "/devicelogin"
    routes = sim.counters()["requests_by_route"]
    assert routes["GET /{tenant}/discovery/instance"] == 1
    assert routes["GET /{tenant}/v2.0/.well-known/openid-configuration"] == 1
    assert routes["POST /{tenant}/oauth2/v2.0/devicecode"] == 1


def test_unknown_instance_is_refused(sim):
    port = urllib.parse.urlsplit(sim.authority).port
    with pytest.raises(ValueError, match="invalid_instance"):
        public_app(sim, host=f"https://localhost:{port}", discovery=True)
    assert sim.counters()["responses_by_status"] == {"400": 1}


def test_unknown_tenant_is_aadsts90002(sim):
    with pytest.raises(ValueError, match="fabrikam.example") as err:
        public_app(sim, tenant="fabrikam.example")
    # msal keeps the answer in the exception it replaced.
    assert "AADSTS90002" in str(err.value.__context__)
    assert sim.counters()["responses_by_status"] == {"400": 1}
    # A verified domain and a mailbox's domain are tenants.
    public_app(sim, tenant="contoso.onmicrosoft.com")
    public_app(sim, tenant="mailroom.test")


def test_device_code_pending_slow_down_then_approved(sim):
    app = public_app(sim)
    flow = app.initiate_device_flow(scopes=SCOPES)
    assert flow["interval"] == 5 and flow["expires_in"] == 900
    first = app.acquire_token_by_device_flow(flow, **ONCE)
    assert first["error"] == "authorization_pending"
    assert first["error_codes"] == [70016]
    # Polling again at once is too soon.
    second = app.acquire_token_by_device_flow(flow, **ONCE)
    assert second["error"] == "slow_down"
    sim.approve(flow["user_code"], DEMO)
    sim.advance(10)
    result = app.acquire_token_by_device_flow(flow, **ONCE)
    assert result["access_token"].startswith("sim-at-")
    assert result["refresh_token"].startswith("sim-rt-")
    assert result["id_token_claims"]["preferred_username"] == DEMO
    assert [a["username"] for a in app.get_accounts()] == [DEMO]
    c = sim.counters()
    assert c["device_code_polls"] == 3
    assert c["slow_downs"] == 1
    assert c["device_code_grants"] == {DEMO: 1}


def test_device_code_declined(sim):
    app = public_app(sim)
    flow = app.initiate_device_flow(scopes=SCOPES)
    sim.deny(flow["user_code"])
    result = app.acquire_token_by_device_flow(flow, **ONCE)
    assert result["error"] == "authorization_declined"
    assert result["error_codes"] == [65004]
    assert app.get_accounts() == []
    assert sim.counters()["device_code_grants"] == {}


def test_device_code_expired(sim):
    app = public_app(sim)
    flow = app.initiate_device_flow(scopes=SCOPES)
    sim.advance(flow["expires_in"] + 1)
    result = app.acquire_token_by_device_flow(flow, **ONCE)
    assert result["error"] == "expired_token"
    assert result["error_codes"] == [70019]
    assert sim.counters()["device_code_polls"] == 1


def signed_in(sim, user=DEMO):
    app = public_app(sim)
    flow = app.initiate_device_flow(scopes=SCOPES)
    sim.approve(flow["user_code"], user)
    result = app.acquire_token_by_device_flow(flow, **ONCE)
    assert "access_token" in result, result
    sim.reset()
    return app, result


def test_silent_refresh_and_rotation(sim):
    app, first = signed_in(sim)
    account = app.get_accounts()[0]
    cached = app.acquire_token_silent(SCOPES, account)
    assert cached["access_token"] == first["access_token"]
    assert sim.counters()["refreshes"] == {}

    refreshed = app.acquire_token_silent(SCOPES, account, force_refresh=True)
    assert refreshed["access_token"] != first["access_token"]
    again = app.acquire_token_silent(SCOPES, account, force_refresh=True)
    assert again["access_token"] != refreshed["access_token"]
    c = sim.counters()
    assert c["refreshes"] == {DEMO: 2}
    # msal kept the rotated refresh token: no token was redeemed twice.
    assert c["refresh_token_replays_total"] == 0


@pytest.mark.parametrize(
    "failure, error, code, suberror",
    [
        ("expired", "invalid_grant", 700082, None),
        ("revoked", "invalid_grant", 50173, None),
        ("consent_required", "invalid_grant", 65001, "consent_required"),
        ("mfa_required", "invalid_grant", 50076, "basic_action"),
    ],
)
def test_aadsts_errors_reach_the_caller(sim, failure, error, code, suberror):
    app, _ = signed_in(sim)
    account = app.get_accounts()[0]
    sim.refresh_failure(DEMO, failure)
    result = app.acquire_token_silent_with_error(SCOPES, account, force_refresh=True)
    assert result["error"] == error
    assert result["error_codes"] == [code]
    assert result["error_description"].startswith(f"AADSTS{code}: ")
    assert result.get("suberror") == suberror
    assert result["correlation_id"]
    assert sim.counters()["refresh_failures"] == {DEMO: 1}


def confidential_app(sim, secret=CONFIDENTIAL_SECRET):
    return msal.ConfidentialClientApplication(
        CONFIDENTIAL_CLIENT,
        client_credential=secret,
        authority=f"{sim.authority}/contoso.onmicrosoft.com",
        instance_discovery=False,
    )


def test_confidential_client(sim):
    rt = sim.tokens(USER1, CONFIDENTIAL_CLIENT, SCOPES + ["offline_access"])["refresh_token"]
    result = confidential_app(sim).acquire_token_by_refresh_token(rt, SCOPES)
    assert result["access_token"].startswith("sim-at-")
    assert sim.counters()["refreshes"] == {USER1: 1}

    rt = sim.tokens(USER1, CONFIDENTIAL_CLIENT, SCOPES + ["offline_access"])["refresh_token"]
    wrong = confidential_app(sim, secret="not-the-secret").acquire_token_by_refresh_token(
        rt, SCOPES
    )
    assert wrong["error"] == "invalid_client"
    assert wrong["error_codes"] == [7000215]
    assert sim.counters()["responses_by_status"].get("401") == 1
