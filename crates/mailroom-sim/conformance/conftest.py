"""Shared fixtures of the conformance suite: Microsoft's client libraries
(msal, azure-identity, msgraph-sdk) drive a running mailroom-sim.

`cargo xtask conformance` starts the simulator with `--tls` and sets:

- MAILROOM_SIM_AUTHORITY  the authority host (https://127.0.0.1:PORT)
- MAILROOM_SIM_GRAPH      the Graph root (…/v1.0)
- MAILROOM_SIM_CONTROL    the control API (…/_sim)
- REQUESTS_CA_BUNDLE, SSL_CERT_FILE  the CA the simulator made at start

The simulator runs with `--no-auto-approve`, two mailboxes (demo@ and
user1@mailroom.test), a confidential client `conformance-confidential` with
secret `conformance-secret`, and the tenant domain contoso.onmicrosoft.com.
Every test starts with zeroed counters and the default faults, so it can
assert on exactly what its library sent.
"""

import os

import pytest
import requests

DEMO = "demo@mailroom.test"
USER1 = "user1@mailroom.test"
PUBLIC_CLIENT = "conformance-public"
CONFIDENTIAL_CLIENT = "conformance-confidential"
CONFIDENTIAL_SECRET = "conformance-secret"


def _env(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(
            f"{name} is not set: run the suite with `cargo xtask conformance`"
        )
    return value


class Sim:
    """The simulator's control API (`/_sim/…`)."""

    def __init__(self):
        self.authority = _env("MAILROOM_SIM_AUTHORITY")
        self.graph = _env("MAILROOM_SIM_GRAPH")
        self.control = _env("MAILROOM_SIM_CONTROL")
        self.http = requests.Session()
        self.default_faults = self.get("/faults")

    def get(self, path):
        r = self.http.get(self.control + path, timeout=30)
        r.raise_for_status()
        return r.json()

    def post(self, path, body=None):
        r = self.http.post(self.control + path, json=body or {}, timeout=30)
        r.raise_for_status()
        return r.json()

    def counters(self):
        return self.get("/counters")

    def route(self, template):
        """Requests counted for one route template, e.g. `GET /v1.0/me`."""
        return self.counters()["requests_by_route"].get(template, 0)

    def status(self, code):
        return self.counters()["responses_by_status"].get(str(code), 0)

    def reset(self):
        self.post("/counters/reset")
        r = self.http.put(self.control + "/faults", json=self.default_faults, timeout=30)
        r.raise_for_status()

    def set_faults(self, **changes):
        faults = dict(self.default_faults, **changes)
        r = self.http.put(self.control + "/faults", json=faults, timeout=30)
        r.raise_for_status()

    def script_faults(self, mailbox, statuses):
        self.post(f"/mailboxes/{mailbox}/faults", {"statuses": statuses})

    def advance(self, seconds):
        self.post("/clock/advance", {"seconds": seconds})

    def approve(self, user_code, user=DEMO):
        self.post("/device/approve", {"user_code": user_code, "user": user})

    def deny(self, user_code):
        self.post("/device/deny", {"user_code": user_code})

    def tokens(self, user, client_id, scopes):
        return self.post(
            "/tokens", {"user": user, "client_id": client_id, "scopes": scopes}
        )

    def refresh_failure(self, user, failure, times=None):
        body = {"user": user, "failure": failure}
        if times is not None:
            body["times"] = times
        self.post("/refresh-failure", body)

    def folder_messages(self, mailbox, folder):
        return self.get(f"/mailboxes/{mailbox}/folders/{folder}/messages")

    def folders(self, mailbox):
        return self.get(f"/mailboxes/{mailbox}/folders")

    def message(self, mailbox, message_id):
        return self.get(f"/mailboxes/{mailbox}/messages/{message_id}")

    def add_messages(self, mailbox, folder, count):
        return self.post(
            f"/mailboxes/{mailbox}/messages", {"folder": folder, "count": count}
        )["ids"]

    def act(self, mailbox, message_id, action, body=None):
        return self.post(f"/mailboxes/{mailbox}/messages/{message_id}/{action}", body)

    def expire_delta_tokens(self, mailbox):
        self.post("/expire-delta-tokens", {"user": mailbox})


@pytest.fixture(scope="session")
def sim():
    return Sim()


@pytest.fixture(autouse=True)
def fresh(sim):
    """Zeroed counters and default faults for every test."""
    sim.reset()
    yield
    sim.refresh_failure(DEMO, "none")
    sim.refresh_failure(USER1, "none")
