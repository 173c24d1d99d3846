"""msgraph-sdk (Kiota) with azure-identity against mailroom-sim's Graph.

Each test asserts on what the SDK returned and on the simulator's counters.
This file runs before test_msal.py (alphabetical order): the identity tests
move the simulator's clock, and the HTTP-date Retry-After case here needs
the simulator's clock to agree with the wall clock.
"""

import asyncio
import time
import urllib.parse

import pytest
from azure.identity import DeviceCodeCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.models.file_attachment import FileAttachment
from msgraph.generated.models.message import Message
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.users.item.mail_folders.item.messages.messages_request_builder import (
    MessagesRequestBuilder,
)
from msgraph.generated.users.item.messages.item.move.move_post_request_body import (
    MovePostRequestBody,
)
from msgraph.graph_request_adapter import options as graph_options
from msgraph_core import APIVersion, GraphClientFactory
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_item import BatchRequestItem
from msgraph_core.tasks.page_iterator import PageIterator

from conftest import DEMO, PUBLIC_CLIENT

# Fully qualified, as Entra ID names them in the `scope` of its answer:
# msal looks its cache up by those names.
SCOPES = ["https://graph.microsoft.com/Mail.ReadWrite"]


# One loop for the whole file: httpx keeps connections bound to the loop
# that opened them.
LOOP = asyncio.new_event_loop()


def run(coro):
    return LOOP.run_until_complete(coro)


@pytest.fixture(scope="session")
def credential(sim):
    """azure-identity's device code credential, approved through the
    simulator's control API when it shows the code."""
    approvals = []

    def prompt(verification_uri, user_code, expires_on):
        assert verification_uri == sim.authority + "/devicelogin"
        sim.approve(user_code, DEMO)
        approvals.append(user_code)

    cred = DeviceCodeCredential(
        client_id=PUBLIC_CLIENT,
        tenant_id="organizations",
        authority=sim.authority,
        # azure-identity would ask login.microsoftonline.com otherwise; the
        # msal tests use the simulator's own discovery endpoint.
        disable_instance_discovery=True,
        prompt_callback=prompt,
    )
    before = sim.counters()
    # As Kiota asks (CAE on: azure-identity keeps such tokens apart).
    token = cred.get_token(*SCOPES, enable_cae=True)
    after = sim.counters()
    assert token.token.startswith("sim-at-")
    assert len(approvals) == 1
    assert after["device_code_grants"].get(DEMO, 0) == before["device_code_grants"].get(DEMO, 0) + 1
    return cred


def graph_client(sim, credential):
    """A GraphServiceClient whose base URL is the simulator's, with the SDK's
    default middleware (retry, redirect, URL replace, telemetry)."""
    host = urllib.parse.urlsplit(sim.authority).hostname
    auth = AzureIdentityAuthenticationProvider(
        credential, scopes=SCOPES, allowed_hosts=[host]
    )
    http = GraphClientFactory.create_with_default_middleware(
        api_version=APIVersion.v1, host=sim.authority, options=graph_options
    )
    return GraphServiceClient(request_adapter=GraphRequestAdapter(auth, client=http))


@pytest.fixture
def client(sim, credential):
    c = graph_client(sim, credential)
    sim.reset()  # the credential's own requests are not the test's
    return c


def test_me(sim, client):
    me = run(client.me.get())
    assert me.mail == DEMO
    assert me.user_principal_name == DEMO
    c = sim.counters()
    assert c["requests_by_route"] == {"GET /v1.0/me": 1}
    assert c["requests_by_mailbox"] == {DEMO: 1}


def test_folders_and_child_folders(sim, client):
    from msgraph.generated.users.item.mail_folders.mail_folders_request_builder import (
        MailFoldersRequestBuilder,
    )

    # Graph pages folders by 10 too: ask for all at once.
    top = RequestConfiguration(
        query_parameters=MailFoldersRequestBuilder.MailFoldersRequestBuilderGetQueryParameters(
            top=100
        )
    )
    folders = run(client.me.mail_folders.get(request_configuration=top)).value
    truth = sim.folders(DEMO)
    top = [f for f in truth if "/" not in f["path"]]
    assert sorted(f.display_name for f in folders) == sorted(f["display_name"] for f in top)
    parent = next(f for f in folders if f.child_folder_count)
    children = run(
        client.me.mail_folders.by_mail_folder_id(parent.id).child_folders.get()
    ).value
    expected = [f["display_name"] for f in truth if f["path"].startswith(parent.display_name + "/")]
    assert sorted(ch.display_name for ch in children) == sorted(expected)
    inbox = run(client.me.mail_folders.by_mail_folder_id("inbox").get())
    assert inbox.total_item_count == len(sim.folder_messages(DEMO, "inbox"))
    assert sim.route("GET /v1.0/me/mailFolders") == 1
    assert sim.route("GET /v1.0/me/mailFolders/{id}/childFolders") == 1
    assert sim.route("GET /v1.0/me/mailFolders/{id}") == 1


def test_paging_with_the_page_iterator(sim, client):
    truth = sim.folder_messages(DEMO, "inbox")
    config = RequestConfiguration(
        query_parameters=MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
            top=7, select=["subject", "receivedDateTime"]
        )
    )

    async def collect():
        first = await client.me.mail_folders.by_mail_folder_id("inbox").messages.get(
            request_configuration=config
        )
        seen = []
        it = PageIterator(first, client.request_adapter)

        def keep(m):
            seen.append(m.id)
            return True

        await it.iterate(keep)
        return seen

    seen = run(collect())
    assert seen == [m["id"] for m in truth]
    pages = -(-len(truth) // 7)
    assert sim.route("GET /v1.0/me/mailFolders/{id}/messages") == pages


def test_filter_orderby_and_count(sim, client):
    truth = sim.folder_messages(DEMO, "inbox")
    unread = [m for m in truth if not m["is_read"]]
    assert unread, "the generated inbox has unread mail"
    config = RequestConfiguration(
        query_parameters=MessagesRequestBuilder.MessagesRequestBuilderGetQueryParameters(
            # Graph wants the $orderby property first in the $filter.
            filter="receivedDateTime ge 1900-01-01T00:00:00Z and isRead eq false",
            orderby=["receivedDateTime asc"],
            count=True,
            top=5,
            select=["subject", "isRead", "receivedDateTime"],
        )
    )
    page = run(
        client.me.mail_folders.by_mail_folder_id("inbox").messages.get(
            request_configuration=config
        )
    )
    assert page.odata_count == len(unread)
    assert all(m.is_read is False for m in page.value)
    dates = [m.received_date_time for m in page.value]
    assert dates == sorted(dates)
    assert [m.id for m in page.value] == [m["id"] for m in reversed(unread)][:5]
    assert sim.route("GET /v1.0/me/mailFolders/{id}/messages") == 1
    assert sim.status(200) == 1


def test_delta_round_trip_removed_and_410(sim, client):
    delta = client.me.mail_folders.by_mail_folder_id("inbox").messages.delta

    async def round_trip(first):
        items, pages, page = [], 0, await first
        while True:
            pages += 1
            items.extend(page.value)
            if page.odata_next_link:
                page = await delta.with_url(page.odata_next_link).get()
            else:
                return items, pages, page.odata_delta_link

    items, pages, link = run(round_trip(delta.get()))
    inbox = sim.folder_messages(DEMO, "inbox")
    assert sorted(m.id for m in items) == sorted(m["id"] for m in inbox)
    assert link and link.startswith(sim.graph + "/")
    assert sim.route("GET /v1.0/me/mailFolders/{id}/messages/delta") == pages

    gone = inbox[0]["id"]
    sim.act(DEMO, gone, "delete")
    added = sim.add_messages(DEMO, "inbox", 2)
    items, _, link2 = run(round_trip(delta.with_url(link).get()))
    removed = [m.id for m in items if "@removed" in (m.additional_data or {})]
    assert removed == [gone]
    assert items[[m.id for m in items].index(gone)].additional_data["@removed"] == {
        "reason": "deleted"
    }
    assert sorted(m.id for m in items if m.id != gone) == sorted(added)

    sim.expire_delta_tokens(DEMO)
    with pytest.raises(ODataError) as err:
        run(delta.with_url(link2).get())
    assert err.value.response_status_code == 410
    assert err.value.error.code == "SyncStateNotFound"
    assert sim.counters()["delta_resyncs"] == 1


def test_get_patch_move_delete(sim, client):
    mid = sim.folder_messages(DEMO, "inbox")[1]["id"]
    msg = client.me.messages.by_message_id(mid)
    got = run(msg.get())
    assert got.id == mid and got.subject == sim.message(DEMO, mid)["subject"]

    # The SDK sends {"@odata.type": "#microsoft.graph.message", "isRead": …}.
    flipped = not got.is_read
    patched = run(msg.patch(Message(is_read=flipped, subject="Patched by msgraph-sdk")))
    assert patched.is_read is flipped
    truth = sim.message(DEMO, mid)
    assert (truth["is_read"], truth["subject"]) == (flipped, "Patched by msgraph-sdk")

    # The SDK sends {"DestinationId": …}.
    moved = run(msg.move.post(MovePostRequestBody(destination_id="archive")))
    assert moved.parent_folder_id == next(
        f["id"] for f in sim.folders(DEMO) if f["well_known"] == "archive"
    )
    assert moved.id in [m["id"] for m in sim.folder_messages(DEMO, "archive")]

    # DELETE moves to Deleted Items (under a new id, as moves do).
    run(client.me.messages.by_message_id(moved.id).delete())
    assert moved.id not in [m["id"] for m in sim.folder_messages(DEMO, "archive")]
    deleted = sim.folder_messages(DEMO, "deleteditems")
    assert "Patched by msgraph-sdk" in [m["subject"] for m in deleted]
    c = sim.counters()["requests_by_route"]
    assert c["GET /v1.0/me/messages/{id}"] == 1
    assert c["PATCH /v1.0/me/messages/{id}"] == 1
    assert c["POST /v1.0/me/messages/{id}/move"] == 1
    assert c["DELETE /v1.0/me/messages/{id}"] == 1
    assert sim.status(201) == 1 and sim.status(204) == 1


def test_attachments(sim, client):
    with_files = [m for m in sim.folder_messages(DEMO, "inbox") if m["attachment_count"]]
    assert with_files, "the generated inbox has attachments"
    truth = with_files[0]
    atts = run(client.me.messages.by_message_id(truth["id"]).attachments.get()).value
    assert len(atts) == truth["attachment_count"]
    files = [a for a in atts if isinstance(a, FileAttachment)]
    assert files and all(a.content_bytes and a.size for a in files)
    one = run(
        client.me.messages.by_message_id(truth["id"])
        .attachments.by_attachment_id(files[0].id)
        .get()
    )
    assert one.name == files[0].name and one.content_bytes == files[0].content_bytes
    assert sim.route("GET /v1.0/me/messages/{id}/attachments") == 1
    assert sim.route("GET /v1.0/me/messages/{id}/attachments/{id}") == 1


def test_batch_with_depends_on(sim, client):
    ids = [m["id"] for m in sim.folder_messages(DEMO, "inbox")[:3]]
    me = BatchRequestItem(client.me.to_get_request_information(), id="me")
    reads = [
        BatchRequestItem(
            client.me.messages.by_message_id(mid).to_patch_request_information(
                Message(is_read=True)
            ),
            id=f"read{i}",
            depends_on=["me"],
        )
        for i, mid in enumerate(ids)
    ]
    content = BatchRequestContent()
    for item in [me, *reads]:
        # Relative to the version, as Graph wants (`/v1.0/me` gets 400).
        assert item.url.startswith("/me"), item.url
        content.add_request(item.id, item)
    result = run(client.batch.post(batch_request_content=content))
    statuses = result.get_response_status_codes()
    assert statuses == {"me": 200, "read0": 200, "read1": 200, "read2": 200}
    assert all(sim.message(DEMO, mid)["is_read"] for mid in ids)
    c = sim.counters()
    assert c["batch_items"] == 4
    assert c["requests_by_route"]["POST /v1.0/$batch"] == 1
    assert c["requests_by_route"]["PATCH /v1.0/me/messages/{id}"] == 3



RETRY_AFTER = {
    "seconds": {"seconds": 1},
    "http-date": {"http_date": 1},
    "fractional": {"fractional": 0.5},
    "absent": "none",
}


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("form", list(RETRY_AFTER))
def test_retry_handler_honours_retry_after(sim, client, status, form):
    sim.set_faults(retry_after=RETRY_AFTER[form])
    sim.script_faults(DEMO, [status])
    started = time.monotonic()
    me = run(client.me.get())
    waited = time.monotonic() - started
    assert me.mail == DEMO
    c = sim.counters()
    assert c["responses_by_status"] == {str(status): 1, "200": 1}
    assert c["injected_faults"] == {DEMO: 1}
    assert c["requests_by_route"] == {"GET /v1.0/me": 2}
    # The SDK waited at least what the simulator asked for.
    assert c["retry_after_violations_total"] == 0, c["retry_after_violations"]
    assert c["throttled"] == ({DEMO: 1} if status == 429 else {})
    if form == "seconds":
        assert waited >= 1
