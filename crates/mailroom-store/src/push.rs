//! Push state (migration `push`): Graph change-notification subscriptions per synced
//! folder, and the folders' "dirty" marks that wake a sync.
//!
//! A notification marks its folder dirty ([`Store::mark_folders_dirty`]) and makes
//! the account due now; the sync that follows clears the marks made before it
//! started ([`Store::clear_dirty_before`]), so a mark made during a sync survives it
//! and wakes the next one. Subscription writes by a worker are fenced by its lease.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, EntityTrait, PaginatorTrait as _, QueryFilter,
    QueryOrder, TransactionTrait as _,
};

use crate::accounts::fence_on;
use crate::entity::account::{self, Entity as Accounts};
use crate::entity::push_subscription::{self, Entity as PushSubscriptions};
use crate::error::{Context as _, Error, Result};
use crate::{LeaseCheck, SealedCredentials, Store};

/// The health of a folder's subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushStatus {
    /// Created (or renewed) and validated: notifications flow.
    Active,
    /// Must be renewed at the next chance (Graph asked for reauthorization).
    Renew,
    /// Graph removed it: create it again.
    Removed,
    /// Creating or renewing it failed: the folder is polled at the normal interval.
    Failed,
}

impl PushStatus {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            PushStatus::Active => "active",
            PushStatus::Renew => "renew",
            PushStatus::Removed => "removed",
            PushStatus::Failed => "failed",
        }
    }

    fn parse(s: &str) -> PushStatus {
        match s {
            "active" => PushStatus::Active,
            "renew" => PushStatus::Renew,
            "removed" => PushStatus::Removed,
            _ => PushStatus::Failed,
        }
    }
}

/// A folder's subscription as stored.
#[derive(Debug, Clone)]
pub struct PushSubscription {
    /// Row id.
    pub id: i64,
    /// The account.
    pub account_id: i64,
    /// The folder ([`FolderRow::id`](crate::FolderRow::id)).
    pub folder_id: i64,
    /// Graph's subscription id, if there is one.
    pub subscription_id: Option<String>,
    /// When Graph ends it.
    pub expires_at: Option<DateTime<Utc>>,
    /// The `clientState` secret, sealed (a Fernet token; decrypt with the vault).
    pub client_state: Option<SealedCredentials>,
    /// Its health.
    pub status: PushStatus,
    /// Why creating or renewing it last failed.
    pub last_error: Option<String>,
    /// When a notification last marked the folder changed (NULL: clean).
    pub dirty_at: Option<DateTime<Utc>>,
}

/// What [`Store::save_subscription`] writes for a folder.
#[derive(Debug, Clone)]
pub struct SubscriptionUpdate {
    /// Graph's id (None: there is none now).
    pub subscription_id: Option<String>,
    /// Its expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// The sealed `clientState`.
    pub client_state: Option<SealedCredentials>,
    /// Its health.
    pub status: PushStatus,
    /// The error, for [`PushStatus::Failed`].
    pub last_error: Option<String>,
}

fn to_subscription(m: push_subscription::Model) -> PushSubscription {
    PushSubscription {
        id: m.id,
        account_id: m.account_id,
        folder_id: m.folder_id,
        subscription_id: m.subscription_id,
        expires_at: m.expires_at,
        client_state: m.client_state.and_then(|c| SealedCredentials::new(c).ok()),
        status: PushStatus::parse(&m.status),
        last_error: m.last_error,
        dirty_at: m.dirty_at,
    }
}

impl Store {
    /// The subscriptions of an account, by folder id.
    pub async fn list_subscriptions(&self, account_id: i64) -> Result<Vec<PushSubscription>> {
        Ok(PushSubscriptions::find()
            .filter(push_subscription::Column::AccountId.eq(account_id))
            .order_by_asc(push_subscription::Column::FolderId)
            .all(&self.db)
            .await
            .context(|| format!("cannot list the subscriptions of account {account_id}"))?
            .into_iter()
            .map(to_subscription)
            .collect())
    }

    /// The subscription Graph knows as `subscription_id`, if any.
    pub async fn find_subscription(
        &self,
        subscription_id: &str,
    ) -> Result<Option<PushSubscription>> {
        Ok(PushSubscriptions::find()
            .filter(push_subscription::Column::SubscriptionId.eq(subscription_id))
            .one(&self.db)
            .await
            .context(|| "cannot look up a subscription".to_owned())?
            .map(to_subscription))
    }

    /// Writes a folder's subscription (creating the row if needed), while `lease.owner`
    /// holds the account's lease (extended to `lease.until` when `lease.renew`) when a lease is given: a
    /// worker that lost the account writes nothing and gets [`Error::LeaseLost`].
    pub async fn save_subscription(
        &self,
        account_id: i64,
        folder_id: i64,
        update: SubscriptionUpdate,
        lease: Option<LeaseCheck<'_>>,
    ) -> Result<()> {
        let now = Utc::now();
        let doing = || format!("cannot store the subscription of folder {folder_id}");
        let txn = self.writer.begin().await.context(doing)?;
        if let Some(lease) = lease {
            fence_on(&txn, account_id, lease).await?;
        }
        let row = push_subscription::ActiveModel {
            account_id: Set(account_id),
            folder_id: Set(folder_id),
            subscription_id: Set(update.subscription_id),
            expires_at: Set(update.expires_at),
            client_state: Set(update.client_state.map(|c| c.as_str().to_owned())),
            status: Set(update.status.as_str().to_owned()),
            last_error: Set(update.last_error),
            dirty_at: Set(None),
            updated_at: Set(now),
            ..Default::default()
        };
        PushSubscriptions::insert(row)
            .on_conflict(
                OnConflict::column(push_subscription::Column::FolderId)
                    .update_columns([
                        push_subscription::Column::SubscriptionId,
                        push_subscription::Column::ExpiresAt,
                        push_subscription::Column::ClientState,
                        push_subscription::Column::Status,
                        push_subscription::Column::LastError,
                        push_subscription::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await
            .context(doing)?;
        txn.commit().await.context(doing)?;
        Ok(())
    }

    /// Forgets a folder's subscription (after deleting it on Graph).
    pub async fn delete_subscription(&self, folder_id: i64) -> Result<()> {
        PushSubscriptions::delete_many()
            .filter(push_subscription::Column::FolderId.eq(folder_id))
            .exec(&self.writer)
            .await
            .context(|| format!("cannot forget the subscription of folder {folder_id}"))?;
        Ok(())
    }

    /// Sets the health of the subscription Graph knows as `subscription_id` (a
    /// lifecycle notification: [`PushStatus::Renew`], [`PushStatus::Removed`]).
    pub async fn set_subscription_status(
        &self,
        subscription_id: &str,
        status: PushStatus,
    ) -> Result<()> {
        PushSubscriptions::update_many()
            .col_expr(
                push_subscription::Column::Status,
                Expr::value(status.as_str()),
            )
            .col_expr(
                push_subscription::Column::UpdatedAt,
                Expr::value(Utc::now()),
            )
            .filter(push_subscription::Column::SubscriptionId.eq(subscription_id))
            .exec(&self.writer)
            .await
            .context(|| "cannot record a subscription's state".to_owned())?;
        Ok(())
    }

    /// Marks folders changed at `at` and makes their accounts due at `at` at the
    /// latest: whichever worker holds or next takes an account syncs them. Two
    /// statements whatever the number of folders.
    pub async fn mark_folders_dirty(&self, folder_ids: &[i64], at: DateTime<Utc>) -> Result<()> {
        if folder_ids.is_empty() {
            return Ok(());
        }
        let doing = || "cannot mark folders changed".to_owned();
        let txn = self.writer.begin().await.context(doing)?;
        PushSubscriptions::update_many()
            .col_expr(push_subscription::Column::DirtyAt, Expr::value(at))
            .filter(push_subscription::Column::FolderId.is_in(folder_ids.iter().copied()))
            .exec(&txn)
            .await
            .context(doing)?;
        let accounts = PushSubscriptions::find()
            .filter(push_subscription::Column::FolderId.is_in(folder_ids.iter().copied()))
            .all(&txn)
            .await
            .context(doing)?
            .into_iter()
            .map(|s| s.account_id)
            .collect::<std::collections::BTreeSet<_>>();
        wake_accounts(&txn, accounts.into_iter().collect(), at).await?;
        txn.commit().await.context(doing)?;
        Ok(())
    }

    /// Makes an account due at `at` at the latest (its due time is not moved later).
    pub async fn wake_account(&self, account_id: i64, at: DateTime<Utc>) -> Result<()> {
        wake_accounts(&self.writer, vec![account_id], at).await
    }

    /// Clears the dirty marks of an account made at or before `before` (when the sync
    /// that covers them started); returns how many of its folders are still dirty.
    pub async fn clear_dirty_before(&self, account_id: i64, before: DateTime<Utc>) -> Result<u64> {
        let doing = || format!("cannot clear the changed marks of account {account_id}");
        PushSubscriptions::update_many()
            .col_expr(
                push_subscription::Column::DirtyAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(push_subscription::Column::AccountId.eq(account_id))
            .filter(push_subscription::Column::DirtyAt.lte(before))
            .exec(&self.writer)
            .await
            .context(doing)?;
        PushSubscriptions::find()
            .filter(push_subscription::Column::AccountId.eq(account_id))
            .filter(push_subscription::Column::DirtyAt.is_not_null())
            .count(&self.db)
            .await
            .context(doing)
    }
}

async fn wake_accounts(
    db: &impl sea_orm::ConnectionTrait,
    ids: Vec<i64>,
    at: DateTime<Utc>,
) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    Accounts::update_many()
        .col_expr(account::Column::NextSyncAt, Expr::value(at))
        .filter(account::Column::Id.is_in(ids))
        .filter(
            Condition::any()
                .add(account::Column::NextSyncAt.is_null())
                .add(account::Column::NextSyncAt.gt(at)),
        )
        .exec(db)
        .await
        .map_err(|e| Error::database("cannot make accounts due", e))?;
    Ok(())
}
