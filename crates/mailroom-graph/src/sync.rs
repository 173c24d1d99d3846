//! Incremental sync through Graph delta: one page per call, the `@odata.nextLink` or
//! `@odata.deltaLink` as the cursor, a restart on HTTP 410.

use chrono::{DateTime, Utc};
use mailroom_core::{ConnectorError, FolderRef, SyncCursor, SyncPage};

use crate::connector::{GraphConnector, PREFER_IMMUTABLE, PREFER_TEXT, path_id, protocol_error};
use crate::transport::{Call, Pages};
use crate::wire::error::GraphError;
use crate::wire::message::{MESSAGE_SELECT, parse_delta_page};
use crate::wire::odata::{Query, received_since};

/// Options of a delta enumeration, fixed by its first request (Graph keeps them in
/// the links).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeltaOptions {
    /// Only messages received at or after this instant (`$filter=receivedDateTime
    /// ge …`), as [`Connector::start_sync_since`](crate::Connector::start_sync_since)
    /// asks: the enumeration is still a `reset` one, so the caller drops older
    /// messages when it completes. Graph documents that a filtered delta returns at
    /// most 5,000 messages.
    pub since: Option<DateTime<Utc>>,
    /// `Prefer: odata.maxpagesize`; default the config's delta page size.
    pub page_size: Option<u32>,
}

impl DeltaOptions {
    /// Only messages received at or after `since`.
    #[must_use]
    pub fn since(mut self, since: DateTime<Utc>) -> Self {
        self.since = Some(since);
        self
    }

    /// Messages per page.
    #[must_use]
    pub fn page_size(mut self, n: u32) -> Self {
        self.page_size = Some(n.max(1));
        self
    }
}

impl GraphConnector {
    /// The next page of changes of `folder` after `cursor` (`None`: a first sync).
    ///
    /// - A first call enumerates the folder through
    ///   `/me/mailFolders/{id}/messages/delta` (`$select` of the record's fields, text
    ///   bodies, `Prefer: odata.maxpagesize`); its first page has `reset: true`.
    /// - Each page's `cursor` is the `@odata.nextLink` (`complete: false`: call again
    ///   at once) or the `@odata.deltaLink` (`complete: true`: store it and come back
    ///   later for the changes since).
    /// - `@removed` items become [`Change::Remove`](crate::Change::Remove);
    ///   new, changed and moved-in messages [`Change::Upsert`](crate::Change::Upsert).
    /// - An expired delta or skip token (HTTP 410 `SyncStateNotFound`,
    ///   `syncStateNotFound`, `resyncRequired`) restarts the enumeration in the same
    ///   call, and that page has `reset: true`; so does a cursor that does not point
    ///   at this connector's Graph root.
    /// - Delta cannot expand attachments, so after each page the attachment lists of
    ///   its messages that have attachments (`hasAttachments`, or inline images the
    ///   body references with `cid:`, which `hasAttachments` leaves out) are fetched
    ///   through `$batch` (20 per batch, within the mailbox's request slots) and the
    ///   page carries them; [`GraphConfig::attachment_lists`](crate::GraphConfig::attachment_lists)
    ///   turns this off.
    pub async fn delta(
        &self,
        folder: &FolderRef,
        cursor: Option<SyncCursor>,
        options: &DeltaOptions,
    ) -> Result<SyncPage, ConnectorError> {
        let doing = format!("cannot sync folder {folder}");
        let prefer = self.delta_prefer(options);
        let run = folder.to_string();
        let resume = match &cursor {
            None => None,
            Some(c) => match self.inner.t.checked_link(c.as_str()) {
                Ok(url) => Some(url),
                Err(e) => {
                    tracing::warn!(folder = %folder, error = %e, "the sync cursor is unusable, starting the folder over");
                    None
                }
            },
        };
        if let Some(url) = resume {
            match self
                .inner
                .t
                .bytes(&Call::get(url, prefer.clone()), &doing)
                .await
            {
                Ok(body) => {
                    let from = cursor.as_ref().map(SyncCursor::as_str);
                    return self.delta_page(&body, false, &doing, &run, from).await;
                }
                Err(e) if GraphError::of(&e).is_some_and(GraphError::is_sync_state_gone) => {
                    tracing::info!(folder = %folder, code = e.code().unwrap_or(""), "delta token expired, resynchronizing the folder");
                }
                Err(e) => return Err(e),
            }
        }
        let seg = path_id(
            &self
                .folder_key(folder)
                .await
                .map_err(|e| e.context(&doing))?,
            &doing,
        )?;
        let since = options.since.map(received_since);
        let q = Query::new()
            .pair("$select", MESSAGE_SELECT)
            .opt("$filter", since.as_deref());
        let url = self
            .inner
            .t
            .url(&format!("/me/mailFolders/{seg}/messages/delta"), q.as_str())?;
        let body = self.inner.t.bytes(&Call::get(url, prefer), &doing).await?;
        self.delta_page(&body, true, &doing, &run, None).await
    }

    fn delta_prefer(&self, options: &DeltaOptions) -> Vec<String> {
        let size = options.page_size.unwrap_or(self.inner.delta_page_size);
        let mut p = vec![format!("odata.maxpagesize={size}"), PREFER_TEXT.to_owned()];
        if self.inner.immutable_ids {
            p.push(PREFER_IMMUTABLE.to_owned());
        }
        p
    }

    /// Bounds a delta run (first page to delta link): no next link twice, at most
    /// `max_pages_per_run` pages, within `folder_run_deadline`. A run goes on when
    /// the cursor is the link this connector handed out last for the folder;
    /// otherwise (a new process, a stored cursor) a new run starts there.
    fn count_page(
        &self,
        run: &str,
        from: Option<&str>,
        link: &str,
        complete: bool,
        doing: &str,
    ) -> Result<(), ConnectorError> {
        let mut runs = self
            .inner
            .runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let ongoing = runs.remove(run);
        if complete {
            return Ok(());
        }
        let limits = &self.inner.t.limits;
        let mut pages = match (from, ongoing) {
            (Some(c), Some(p)) if p.last.as_deref() == Some(c) => p,
            (Some(c), _) => Pages::new(limits, Some(limits.folder_run_deadline)).starting_at(c),
            (None, _) => Pages::new(limits, Some(limits.folder_run_deadline)),
        };
        pages.follow(link, doing)?;
        runs.insert(run.to_owned(), pages);
        Ok(())
    }

    async fn delta_page(
        &self,
        body: &[u8],
        reset: bool,
        doing: &str,
        run: &str,
        from: Option<&str>,
    ) -> Result<SyncPage, ConnectorError> {
        let page = parse_delta_page(body).map_err(|e| protocol_error(doing, &e, body))?;
        let (link, complete) = match (page.next_link, page.delta_link) {
            (Some(next), _) => (next, false),
            (None, Some(delta)) => (delta, true),
            (None, None) => {
                return Err(ConnectorError::new(
                    mailroom_core::ErrorKind::Protocol,
                    format!(
                        "{doing}: the delta page has neither @odata.nextLink nor @odata.deltaLink"
                    ),
                ));
            }
        };
        // Never hand out a cursor the next call would refuse to follow.
        self.inner
            .t
            .checked_link(&link)
            .map_err(|e| e.context(doing))?;
        self.count_page(run, from, &link, complete, doing)?;
        let mut changes = page.changes;
        self.fill_attachment_lists(&mut changes, &page.wants_attachments, doing)
            .await?;
        Ok(SyncPage {
            changes,
            cursor: SyncCursor(link),
            reset,
            complete,
        })
    }
}
