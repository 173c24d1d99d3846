//! Bulk move and delete through `$batch`: chunks of 20, run as chains within the
//! mailbox's concurrency, retrying only the items that were throttled.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use mailroom_core::{ConnectorError, DeleteMode, ErrorKind, FolderRef, WellKnownFolder};
use serde_json::json;

use crate::connector::{GraphConnector, PREFER_IMMUTABLE, not_a_graph_id, protocol_error, short};
use crate::transport::Call;
use crate::wire::batch::{BatchCall, ItemResponse, MAX_BATCH, parse_response, request_body};
use crate::wire::error::GraphError;
use crate::wire::odata::segment;

/// The outcome of one item of [`GraphConnector::move_many`] or
/// [`GraphConnector::delete_many`].
#[derive(Debug)]
pub struct BulkResult {
    /// The id given.
    pub id: String,
    /// For a move, the message's id in the destination (new unless immutable ids
    /// are on); `None` for a hard delete. The item's own error otherwise.
    pub outcome: Result<Option<String>, ConnectorError>,
}

impl BulkResult {
    /// True when the item succeeded.
    pub fn is_ok(&self) -> bool {
        self.outcome.is_ok()
    }
}

/// A copy of an error (kind, message, code, wait) for every item it applies to.
fn copy(e: &ConnectorError) -> ConnectorError {
    let mut out = ConnectorError::new(e.kind(), e.message().to_owned());
    if let Some(c) = e.code() {
        out = out.with_code(c.to_owned());
    }
    if let Some(w) = e.retry_after() {
        out = out.with_retry_after(w);
    }
    out
}

fn retryable(status: u16) -> bool {
    // 424: not run because the item before it in its chain failed.
    matches!(status, 429 | 503 | 504 | 424)
}

impl GraphConnector {
    /// Moves messages to `destination` through `$batch`.
    ///
    /// Ids go in chunks of 20, one `$batch` at a time, each run as at most
    /// `max_in_flight` parallel chains (`dependsOn`) holding as many of the
    /// mailbox's request slots. Items answered 429/503/504 (or 424, not run because
    /// the item before them failed) are sent again in a later round after their
    /// `Retry-After` (else back-off), up to the retry policy's attempts; other
    /// failures are final. Results come in the order of `ids`.
    ///
    /// Fails as a whole only when the destination cannot be resolved or the account
    /// needs signing in again.
    pub async fn move_many(
        &self,
        ids: &[String],
        destination: &FolderRef,
    ) -> Result<Vec<BulkResult>, ConnectorError> {
        let dest = self
            .folder_key(destination)
            .await
            .map_err(|e| e.context(format!("cannot move messages to {destination}")))?;
        let prefer = self
            .inner
            .immutable_ids
            .then(|| PREFER_IMMUTABLE.to_owned());
        self.bulk(
            ids,
            |seg| BatchCall {
                method: "POST",
                url: format!("/me/messages/{seg}/move"),
                body: Some(json!({ "destinationId": dest })),
                prefer: prefer.clone(),
            },
            |id| format!("cannot move message {} to {destination}", short(id)),
        )
        .await
    }

    /// Deletes messages through `$batch`: softly (a move to Deleted Items, the new id
    /// in the outcome) or for good (`permanentDelete`). Same rules as
    /// [`move_many`](Self::move_many).
    pub async fn delete_many(
        &self,
        ids: &[String],
        mode: DeleteMode,
    ) -> Result<Vec<BulkResult>, ConnectorError> {
        match mode {
            DeleteMode::Soft => {
                self.move_many(ids, &FolderRef::WellKnown(WellKnownFolder::Deleted))
                    .await
            }
            DeleteMode::Hard => {
                self.bulk(
                    ids,
                    |seg| BatchCall {
                        method: "POST",
                        url: format!("/me/messages/{seg}/permanentDelete"),
                        body: None,
                        prefer: None,
                    },
                    |id| format!("cannot delete message {}", short(id)),
                )
                .await
            }
        }
    }

    async fn bulk(
        &self,
        ids: &[String],
        // Takes the id as an encoded path segment.
        make: impl Fn(&str) -> BatchCall,
        doing_item: impl Fn(&str) -> String,
    ) -> Result<Vec<BulkResult>, ConnectorError> {
        let outcomes = self
            .batch_each(ids, make, doing_item, |item| Ok(new_id(&item)))
            .await?;
        Ok(ids
            .iter()
            .zip(outcomes)
            .map(|(id, outcome)| BulkResult {
                id: id.clone(),
                outcome,
            })
            .collect())
    }

    /// Runs one request per id through `$batch` (chunks of 20, chains within the
    /// mailbox's request slots, throttled items sent again) and turns each successful
    /// item's answer into a `T` with `ok`. Outcomes come in the order of `ids`.
    pub(crate) async fn batch_each<T>(
        &self,
        ids: &[String],
        make: impl Fn(&str) -> BatchCall,
        doing_item: impl Fn(&str) -> String,
        ok: impl Fn(ItemResponse<'_>) -> Result<T, ConnectorError>,
    ) -> Result<Vec<Result<T, ConnectorError>>, ConnectorError> {
        let t = &self.inner.t;
        let max_rounds = t.retry.max_attempts.max(1);
        let mut outcomes: Vec<Option<Result<T, ConnectorError>>> =
            (0..ids.len()).map(|_| None).collect();
        let mut last_error: HashMap<usize, GraphError> = HashMap::new();
        let mut segments: Vec<String> = Vec::with_capacity(ids.len());
        let mut pending: Vec<usize> = Vec::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            // An item's context is written only for an id that fails.
            match segment(id) {
                Some(seg) => {
                    segments.push(seg);
                    pending.push(i);
                }
                None => {
                    segments.push(String::new());
                    outcomes[i] = Some(Err(not_a_graph_id(id, &doing_item(id))));
                }
            }
        }
        let url = t.url("/$batch", "")?;
        for round in 1..=max_rounds {
            if pending.is_empty() {
                break;
            }
            let mut again = Vec::new();
            let mut waited = false;
            for chunk in pending.chunks(MAX_BATCH) {
                let calls: Vec<BatchCall> = chunk.iter().map(|&i| make(&segments[i])).collect();
                let width = (t.gate.size() as usize).min(calls.len());
                let body = Bytes::from(request_body(&calls, width));
                let mut call = Call::post(url.clone(), Some(body), Vec::new());
                call.permits = width as u32;
                let doing = format!("cannot run a batch of {} requests", calls.len());
                let answer = match t.bytes(&call, &doing).await {
                    Ok(a) => a,
                    Err(e)
                        if matches!(
                            e.kind(),
                            ErrorKind::ReauthRequired | ErrorKind::InvalidConfig
                        ) =>
                    {
                        return Err(e);
                    }
                    Err(e) => {
                        for &i in chunk {
                            outcomes[i] = Some(Err(copy(&e).context(doing_item(&ids[i]))));
                        }
                        continue;
                    }
                };
                let items =
                    parse_response(&answer).map_err(|e| protocol_error(&doing, &e, &answer))?;
                let mut seen = vec![false; chunk.len()];
                let mut wait: Option<Duration> = None;
                for item in items {
                    let Some(k) = item.id.parse::<usize>().ok().filter(|&k| k < chunk.len()) else {
                        continue;
                    };
                    seen[k] = true;
                    let i = chunk[k];
                    if item.is_success() {
                        outcomes[i] = Some(ok(item).map_err(|e| e.context(doing_item(&ids[i]))));
                    } else if retryable(item.status) {
                        if let Some(ra) = item.retry_after(SystemTime::now()) {
                            wait = Some(wait.map_or(ra, |w| w.max(ra)));
                        }
                        if item.status != 424 || !last_error.contains_key(&i) {
                            last_error.insert(i, item.error());
                        }
                        again.push(i);
                    } else {
                        outcomes[i] =
                            Some(Err(item.error().into_connector_error(&doing_item(&ids[i]))));
                    }
                }
                // An item missing from the answer was not run: send it again.
                again.extend(
                    chunk
                        .iter()
                        .zip(&seen)
                        .filter(|(_, s)| !**s)
                        .map(|(i, _)| *i),
                );
                if let Some(w) = wait {
                    // Items' Retry-After holds the whole mailbox, like a request's.
                    t.throttle(w).await;
                    waited = true;
                }
            }
            again.sort_unstable();
            pending = again;
            if !pending.is_empty() && !waited && round < max_rounds {
                t.sleep.sleep(t.backoff(round)).await;
            }
        }
        for i in pending {
            let doing = format!("{} (gave up after {max_rounds} tries)", doing_item(&ids[i]));
            let err = match last_error.remove(&i) {
                Some(g) => g.into_connector_error(&doing),
                None => ConnectorError::new(ErrorKind::Throttled, doing),
            };
            outcomes[i] = Some(Err(err));
        }
        Ok(ids
            .iter()
            .zip(outcomes)
            .map(|(id, o)| {
                o.unwrap_or_else(|| {
                    Err(ConnectorError::new(
                        ErrorKind::Other,
                        format!("{}: no answer", doing_item(id)),
                    ))
                })
            })
            .collect())
    }
}

/// The id in an item's answer (a move returns the message), if any.
fn new_id(item: &ItemResponse<'_>) -> Option<String> {
    item.body()
        .as_ref()
        .and_then(|b| b.get("id"))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}
