"""The seed-design peer of the Graph initial-sync benchmark: what a small Python
client does with requests and sqlite3.

It reads one folder through `GET /me/mailFolders/{folder}/messages?$top=999` (the
fields Mailroom keeps, the text body), following `@odata.nextLink`, and writes each
page into a fresh SQLite file in ONE transaction (`executemany` of an upsert). It
prints one JSON line: messages, pages, seconds and the CPU seconds of this process.

    python graph_peer.py GRAPH_URL ACCESS_TOKEN DB_PATH [FOLDER]
"""

import json
import sqlite3
import sys
import time

import requests

SELECT = (
    "id,internetMessageId,subject,from,toRecipients,ccRecipients,receivedDateTime,"
    "sentDateTime,isRead,isDraft,hasAttachments,conversationId,body"
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    remote_id TEXT NOT NULL UNIQUE,
    message_id TEXT, subject TEXT, sender_name TEXT, sender_address TEXT,
    to_recipients TEXT NOT NULL, cc_recipients TEXT NOT NULL,
    date_received TEXT, sent_at TEXT, body TEXT,
    is_read INTEGER NOT NULL, is_draft INTEGER NOT NULL, has_attachments INTEGER NOT NULL,
    conversation_id TEXT
);
CREATE INDEX IF NOT EXISTS idx_messages_received ON messages (date_received);
"""

UPSERT = """
INSERT INTO messages (remote_id, message_id, subject, sender_name, sender_address,
    to_recipients, cc_recipients, date_received, sent_at, body, is_read, is_draft,
    has_attachments, conversation_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (remote_id) DO UPDATE SET subject = excluded.subject, body = excluded.body,
    is_read = excluded.is_read
"""


def addresses(items):
    return json.dumps(
        [
            {"name": a["emailAddress"].get("name"), "address": a["emailAddress"].get("address")}
            for a in items or []
        ]
    )


def row(m):
    sender = (m.get("from") or {}).get("emailAddress") or {}
    body = (m.get("body") or {}).get("content")
    return (
        m["id"],
        m.get("internetMessageId"),
        m.get("subject"),
        sender.get("name"),
        sender.get("address"),
        addresses(m.get("toRecipients")),
        addresses(m.get("ccRecipients")),
        m.get("receivedDateTime"),
        m.get("sentDateTime"),
        body[:2000] if body else body,
        bool(m.get("isRead")),
        bool(m.get("isDraft")),
        bool(m.get("hasAttachments")),
        m.get("conversationId"),
    )


def main():
    graph, token, path = sys.argv[1:4]
    folder = sys.argv[4] if len(sys.argv) > 4 else "inbox"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(SCHEMA)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    session.headers["Prefer"] = 'outlook.body-content-type="text"'
    url = f"{graph.rstrip('/')}/me/mailFolders/{folder}/messages"
    params = {"$top": "999", "$select": SELECT}
    start, cpu = time.perf_counter(), time.process_time()
    messages = pages = 0
    while url:
        response = session.get(url, params=params)
        response.raise_for_status()
        page = response.json()
        rows = [row(m) for m in page.get("value", [])]
        db.execute("BEGIN")
        db.executemany(UPSERT, rows)
        db.execute("COMMIT")
        messages += len(rows)
        pages += 1
        url, params = page.get("@odata.nextLink"), None
    print(
        json.dumps(
            {
                "messages": messages,
                "pages": pages,
                "seconds": time.perf_counter() - start,
                "cpu_seconds": time.process_time() - cpu,
            }
        )
    )


if __name__ == "__main__":
    main()
