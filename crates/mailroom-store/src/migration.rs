//! Schema migrations (sea-orm-migration). Each migration is frozen once released: change
//! the schema by adding a migration, never by editing one.

use sea_orm_migration::prelude::*;

pub(crate) struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(Initial),
            Box::new(Throttle),
            Box::new(FolderState),
            Box::new(FleetClaim),
            Box::new(Push),
            Box::new(PGWRITE_INLINE_ROWS),
            Box::new(PGWRITE2_NO_MESSAGE_ACCOUNT_FK),
            Box::new(PGWRITE3_CASCADE_BY_STATEMENT),
            Box::new(REMOTE_IDS_COLLATE_C),
            Box::new(ID_SEQUENCES_CACHED),
            Box::new(SqliteCascadeByTrigger),
        ]
    }
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
    Email,
    Kind,
    Credentials,
    Status,
    LastError,
    AuthErrorCode,
    SyncFolders,
    LastSyncAt,
    NextSyncAt,
    LeaseOwner,
    LeaseExpiresAt,
    CreatedAt,
    UpdatedAt,
    ThrottledUntil,
}

#[derive(DeriveIden)]
enum Folders {
    Table,
    Id,
    AccountId,
    RemoteId,
    Name,
    Path,
    ParentRemoteId,
    Role,
    Cursor,
    Generation,
    Reconciling,
    TotalCount,
    UnreadCount,
    LastSyncedAt,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
    AccountId,
    FolderId,
    RemoteId,
    MessageId,
    Subject,
    SenderName,
    SenderAddress,
    ToRecipients,
    CcRecipients,
    DateReceived,
    SentAt,
    Body,
    IsRead,
    IsDraft,
    HasAttachments,
    AttachmentCount,
    ConversationId,
    Warnings,
    Generation,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Attachments {
    Table,
    Id,
    MessageId,
    Ordinal,
    RemoteId,
    Name,
    ContentType,
    Size,
    IsInline,
    ContentId,
}

struct Initial;

impl MigrationName for Initial {
    fn name(&self) -> &str {
        "m20261125_000001_initial"
    }
}

fn id<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name)
        .big_integer()
        .not_null()
        .auto_increment()
        .primary_key()
        .to_owned()
}

fn timestamp<T: IntoIden>(name: T) -> ColumnDef {
    ColumnDef::new(name).timestamp_with_time_zone().to_owned()
}

// sea-orm-migration declares `&SchemaManager` without a lifetime; writing `'_` here makes
// it early-bound and no longer matches the trait.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Accounts::Table)
                    .col(id(Accounts::Id))
                    .col(
                        ColumnDef::new(Accounts::Email)
                            .string()
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(Accounts::Kind).string().not_null())
                    .col(ColumnDef::new(Accounts::Credentials).text().not_null())
                    .col(ColumnDef::new(Accounts::Status).string().not_null())
                    .col(ColumnDef::new(Accounts::LastError).text())
                    .col(ColumnDef::new(Accounts::AuthErrorCode).string())
                    .col(ColumnDef::new(Accounts::SyncFolders).text())
                    .col(timestamp(Accounts::LastSyncAt))
                    .col(timestamp(Accounts::NextSyncAt))
                    .col(ColumnDef::new(Accounts::LeaseOwner).string())
                    .col(timestamp(Accounts::LeaseExpiresAt))
                    .col(timestamp(Accounts::CreatedAt).not_null())
                    .col(timestamp(Accounts::UpdatedAt).not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_accounts_due")
                    .table(Accounts::Table)
                    .col(Accounts::Status)
                    .col(Accounts::NextSyncAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Folders::Table)
                    .col(id(Folders::Id))
                    .col(ColumnDef::new(Folders::AccountId).big_integer().not_null())
                    .col(ColumnDef::new(Folders::RemoteId).string().not_null())
                    .col(ColumnDef::new(Folders::Name).string().not_null())
                    .col(ColumnDef::new(Folders::Path).text().not_null())
                    .col(ColumnDef::new(Folders::ParentRemoteId).string())
                    .col(ColumnDef::new(Folders::Role).string())
                    .col(ColumnDef::new(Folders::Cursor).text())
                    .col(
                        ColumnDef::new(Folders::Generation)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(Folders::Reconciling)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(ColumnDef::new(Folders::TotalCount).big_integer())
                    .col(ColumnDef::new(Folders::UnreadCount).big_integer())
                    .col(timestamp(Folders::LastSyncedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Folders::Table, Folders::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_folders_account_remote")
                    .table(Folders::Table)
                    .col(Folders::AccountId)
                    .col(Folders::RemoteId)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Messages::Table)
                    .col(id(Messages::Id))
                    .col(ColumnDef::new(Messages::AccountId).big_integer().not_null())
                    .col(ColumnDef::new(Messages::FolderId).big_integer().not_null())
                    .col(ColumnDef::new(Messages::RemoteId).string().not_null())
                    .col(ColumnDef::new(Messages::MessageId).text())
                    .col(ColumnDef::new(Messages::Subject).text())
                    .col(ColumnDef::new(Messages::SenderName).text())
                    .col(ColumnDef::new(Messages::SenderAddress).text())
                    .col(ColumnDef::new(Messages::ToRecipients).text().not_null())
                    .col(ColumnDef::new(Messages::CcRecipients).text().not_null())
                    .col(timestamp(Messages::DateReceived))
                    .col(timestamp(Messages::SentAt))
                    .col(ColumnDef::new(Messages::Body).text())
                    .col(ColumnDef::new(Messages::IsRead).boolean().not_null())
                    .col(ColumnDef::new(Messages::IsDraft).boolean().not_null())
                    .col(
                        ColumnDef::new(Messages::HasAttachments)
                            .boolean()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Messages::AttachmentCount)
                            .integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Messages::ConversationId).text())
                    .col(ColumnDef::new(Messages::Warnings).text().not_null())
                    .col(
                        ColumnDef::new(Messages::Generation)
                            .big_integer()
                            .not_null(),
                    )
                    .col(timestamp(Messages::UpdatedAt).not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Messages::Table, Messages::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Messages::Table, Messages::FolderId)
                            .to(Folders::Table, Folders::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_messages_account_remote")
                    .table(Messages::Table)
                    .col(Messages::AccountId)
                    .col(Messages::RemoteId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_messages_folder_received")
                    .table(Messages::Table)
                    .col(Messages::FolderId)
                    .col(Messages::DateReceived)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Attachments::Table)
                    .col(id(Attachments::Id))
                    .col(
                        ColumnDef::new(Attachments::MessageId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Attachments::Ordinal).integer().not_null())
                    .col(ColumnDef::new(Attachments::RemoteId).string())
                    .col(ColumnDef::new(Attachments::Name).text())
                    .col(ColumnDef::new(Attachments::ContentType).string())
                    .col(ColumnDef::new(Attachments::Size).big_integer().not_null())
                    .col(ColumnDef::new(Attachments::IsInline).boolean().not_null())
                    .col(ColumnDef::new(Attachments::ContentId).string())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Attachments::Table, Attachments::MessageId)
                            .to(Messages::Table, Messages::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_attachments_message")
                    .table(Attachments::Table)
                    .col(Attachments::MessageId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Attachments::Table.into_iden(),
            Messages::Table.into_iden(),
            Folders::Table.into_iden(),
            Accounts::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// `accounts.throttled_until`: the server's last `Retry-After` deadline for the
/// mailbox, so that the next process does not send before it either.
struct Throttle;

impl MigrationName for Throttle {
    fn name(&self) -> &str {
        "m20261206_000002_throttle"
    }
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Throttle {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Accounts::Table)
                    .add_column(timestamp(Accounts::ThrottledUntil))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Accounts::Table)
                    .drop_column(Accounts::ThrottledUntil)
                    .to_owned(),
            )
            .await
    }
}

/// Per-folder state for vanished and unconfigured folders (issue 16): when a configured
/// folder was first missed on the server, how many syncs in a row missed it, when it
/// was last looked up, its last error (named by path), and when the user stopped
/// syncing it (its local copies are dropped by the account's next sync).
struct FolderState;

impl MigrationName for FolderState {
    fn name(&self) -> &str {
        "m20261206_000003_folder_state"
    }
}

#[derive(DeriveIden)]
enum FolderStateColumns {
    #[sea_orm(iden = "folders")]
    Table,
    GoneSince,
    MissedSyncs,
    CheckedAt,
    LastError,
    RemovedAt,
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for FolderState {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        let columns = [
            timestamp(FolderStateColumns::GoneSince),
            ColumnDef::new(FolderStateColumns::MissedSyncs)
                .integer()
                .not_null()
                .default(0)
                .to_owned(),
            timestamp(FolderStateColumns::CheckedAt),
            ColumnDef::new(FolderStateColumns::LastError)
                .text()
                .to_owned(),
            timestamp(FolderStateColumns::RemovedAt),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter()
                        .table(FolderStateColumns::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            FolderStateColumns::GoneSince,
            FolderStateColumns::MissedSyncs,
            FolderStateColumns::CheckedAt,
            FolderStateColumns::LastError,
            FolderStateColumns::RemovedAt,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(FolderStateColumns::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// The claim index (issue 17): workers claim due accounts by walking one index in
/// the order they are due, instead of scanning and sorting the whole table.
///
/// An account is claimable once the latest of `next_sync_at`, `throttled_until` and
/// `lease_expires_at` has passed (a `NULL` is no constraint). That instant, never
/// `NULL`, is the key of a partial index over the active accounts, with the id as
/// tie-breaker; [`crate::accounts`] writes the very same expression in its claim so
/// that the planner matches it. No column has to be kept in step by the code that
/// writes those three. It replaces `idx_accounts_due (status, next_sync_at)`, which no
/// query could use.
struct FleetClaim;

impl MigrationName for FleetClaim {
    fn name(&self) -> &str {
        "m20261206_000004_fleet_claim"
    }
}

/// The key of `idx_accounts_claim` on PostgreSQL (`GREATEST` ignores `NULL`s).
pub(crate) const CLAIMABLE_AT_POSTGRES: &str = "COALESCE(GREATEST(next_sync_at, throttled_until, \
     lease_expires_at), '-infinity'::timestamptz)";

/// The key of `idx_accounts_claim` on SQLite, where timestamps are RFC 3339 text (the
/// many-argument `max` is `NULL` if any argument is: each is coalesced to `''`).
pub(crate) const CLAIMABLE_AT_SQLITE: &str = "max(COALESCE(next_sync_at, ''), \
     COALESCE(throttled_until, ''), COALESCE(lease_expires_at, ''))";

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for FleetClaim {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let key = match manager.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => CLAIMABLE_AT_POSTGRES,
            _ => CLAIMABLE_AT_SQLITE,
        };
        let db = manager.get_connection();
        db.execute_unprepared(&format!(
            "CREATE INDEX idx_accounts_claim ON accounts (({key}), id) WHERE status = 'active'"
        ))
        .await?;
        db.execute_unprepared("DROP INDEX idx_accounts_due").await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DROP INDEX idx_accounts_claim")
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_accounts_due")
                    .table(Accounts::Table)
                    .col(Accounts::Status)
                    .col(Accounts::NextSyncAt)
                    .to_owned(),
            )
            .await
    }
}

/// Push (issue 18): one Graph change-notification subscription per synced folder —
/// its Graph id, expiry, sealed `clientState`, health and last error — and the
/// folder's "dirty" mark set by notifications and cleared by the sync that follows.
struct Push;

impl MigrationName for Push {
    fn name(&self) -> &str {
        "m20261206_000005_push"
    }
}

#[derive(DeriveIden)]
enum PushSubscriptions {
    Table,
    Id,
    AccountId,
    FolderId,
    SubscriptionId,
    ExpiresAt,
    ClientState,
    Status,
    LastError,
    DirtyAt,
    UpdatedAt,
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Push {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PushSubscriptions::Table)
                    .col(
                        ColumnDef::new(PushSubscriptions::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(PushSubscriptions::AccountId)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PushSubscriptions::FolderId)
                            .big_integer()
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(PushSubscriptions::SubscriptionId).string())
                    .col(timestamp(PushSubscriptions::ExpiresAt))
                    .col(ColumnDef::new(PushSubscriptions::ClientState).text())
                    .col(
                        ColumnDef::new(PushSubscriptions::Status)
                            .string()
                            .not_null(),
                    )
                    .col(ColumnDef::new(PushSubscriptions::LastError).text())
                    .col(timestamp(PushSubscriptions::DirtyAt))
                    .col(timestamp(PushSubscriptions::UpdatedAt).not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(PushSubscriptions::Table, PushSubscriptions::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(PushSubscriptions::Table, PushSubscriptions::FolderId)
                            .to(Folders::Table, Folders::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_push_subscriptions_subscription")
                    .table(PushSubscriptions::Table)
                    .col(PushSubscriptions::SubscriptionId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_push_subscriptions_account")
                    .table(PushSubscriptions::Table)
                    .col(PushSubscriptions::AccountId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PushSubscriptions::Table).to_owned())
            .await
    }
}

/// PostgreSQL keeps message rows of up to a page (8,160 bytes) whole, uncompressed:
/// by default it compresses (pglz) any row over 2,032 bytes, and a message row with a
/// 2,000-character preview is just over, so most rows were compressed, about a third
/// of the server's CPU per message written. SQLite: nothing to do.
const PGWRITE_INLINE_ROWS: PostgresOnly = PostgresOnly {
    name: "m20261206_000006_pgwrite_inline_rows",
    up: "ALTER TABLE messages SET (toast_tuple_target = 8160)",
    down: "ALTER TABLE messages RESET (toast_tuple_target)",
};

/// PostgreSQL: messages lose their foreign key to `accounts`, a check (an index probe
/// and a row lock on the account) per message written, about 3 µs of the server's CPU
/// each. It was redundant: a message's folder belongs to its account (every write
/// names both), folders go with their account (`folders_account_id_fkey`, cascade)
/// and messages with their folder (`messages_folder_id_fkey`, cascade), so removing
/// an account still removes its messages and their attachments. SQLite keeps the key
/// (dropping one there means rebuilding the table).
const PGWRITE2_NO_MESSAGE_ACCOUNT_FK: PostgresOnly = PostgresOnly {
    name: "m20261206_000007_pgwrite2_no_message_account_fk",
    up: "ALTER TABLE messages DROP CONSTRAINT messages_account_id_fkey",
    down: "ALTER TABLE messages ADD CONSTRAINT messages_account_id_fkey \
           FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE CASCADE",
};

/// PostgreSQL: messages and attachments lose their last foreign keys
/// (`messages_folder_id_fkey`, `attachments_message_id_fkey`): each was an RI trigger per
/// row inserted (an SPI query with an executor start, and a row lock on the folder or
/// the message), about a fifth of the server's CPU per message written. Their
/// `ON DELETE CASCADE` is kept by two statement-level `AFTER DELETE` triggers, which
/// cost nothing on insert and one statement per deleting statement (instead of one
/// cascade query per deleted row): deleting folders deletes their messages, deleting
/// messages deletes their attachments, whoever deletes them (the store, a cascade from
/// `accounts`, or SQL by hand). Nothing inserts an orphan: every message write first
/// updates its folder row under the account (the row lock keeps a concurrent delete
/// of the folder waiting until the write commits, and a write after the delete finds
/// no folder and writes nothing), and attachment rows are inserted joined to the
/// message rows the same statement or transaction has just written. SQLite kept its
/// keys (dropping one there means rebuilding the table) until
/// [`SqliteCascadeByTrigger`].
const PGWRITE3_CASCADE_BY_STATEMENT: PostgresOnly = PostgresOnly {
    name: "m20261206_000008_pgwrite3_cascade_by_statement",
    up: PGWRITE3_UP,
    down: PGWRITE3_DOWN,
};

/// The functions and triggers of [`PGWRITE3_CASCADE_BY_STATEMENT`]. The functions keep
/// the `search_path` they were created with, so that they find the tables of their
/// own schema whoever deletes.
const PGWRITE3_UP: &str = "\
ALTER TABLE attachments DROP CONSTRAINT attachments_message_id_fkey;
ALTER TABLE messages DROP CONSTRAINT messages_folder_id_fkey;
CREATE FUNCTION mailroom_delete_attachments_of_deleted_messages() RETURNS trigger
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    DELETE FROM attachments WHERE message_id IN (SELECT id FROM deleted);
    RETURN NULL;
END $$;
CREATE TRIGGER messages_delete_attachments AFTER DELETE ON messages
    REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT
    EXECUTE FUNCTION mailroom_delete_attachments_of_deleted_messages();
CREATE FUNCTION mailroom_delete_messages_of_deleted_folders() RETURNS trigger
    LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    DELETE FROM messages WHERE folder_id IN (SELECT id FROM deleted);
    RETURN NULL;
END $$;
CREATE TRIGGER folders_delete_messages AFTER DELETE ON folders
    REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT
    EXECUTE FUNCTION mailroom_delete_messages_of_deleted_folders();";

const PGWRITE3_DOWN: &str = "\
DROP TRIGGER folders_delete_messages ON folders;
DROP FUNCTION mailroom_delete_messages_of_deleted_folders();
DROP TRIGGER messages_delete_attachments ON messages;
DROP FUNCTION mailroom_delete_attachments_of_deleted_messages();
ALTER TABLE messages ADD CONSTRAINT messages_folder_id_fkey
    FOREIGN KEY (folder_id) REFERENCES folders (id) ON DELETE CASCADE;
ALTER TABLE attachments ADD CONSTRAINT attachments_message_id_fkey
    FOREIGN KEY (message_id) REFERENCES messages (id) ON DELETE CASCADE;";

/// PostgreSQL: message ids compare byte by byte (`COLLATE "C"`) instead of by the
/// database's collation. They are opaque ids, so nothing changes but the cost: each
/// message written descends `ux_messages_account_remote` twice (the `ON CONFLICT`
/// check, then the insert), comparing a Graph id of about 150 bytes at each step, and
/// with a collation other than `C` each comparison copies both strings and calls
/// `strcoll` (12 % of a 200,000-row insert into that index with `C.UTF-8`, more with
/// the usual `en_US.UTF-8`). SQLite compares bytes already.
const REMOTE_IDS_COLLATE_C: PostgresOnly = PostgresOnly {
    name: "m20261207_000009_remote_ids_collate_c",
    up: "ALTER TABLE messages ALTER COLUMN remote_id TYPE varchar COLLATE \"C\"",
    down: "ALTER TABLE messages ALTER COLUMN remote_id TYPE varchar COLLATE \"default\"",
};

/// PostgreSQL: each backend takes the ids of the rows it inserts 1,000 at a time from
/// the sequences of `messages` and `attachments`, instead of one at a time: each
/// `nextval` read and locked the sequence's buffer and logged it to the WAL every 32
/// values, about a tenth of the time of inserting 200,000 message rows in psql. Ids
/// stay unique; those a backend took and did not use are skipped when it exits, and
/// two backends inserting at once no longer take increasing ids in the order of their
/// rows (nothing orders by id but as the last tie-break of a listing). SQLite: nothing
/// to do (row ids).
const ID_SEQUENCES_CACHED: PostgresOnly = PostgresOnly {
    name: "m20261207_000010_id_sequences_cached",
    up: "ALTER SEQUENCE messages_id_seq CACHE 1000; ALTER SEQUENCE attachments_id_seq CACHE 1000",
    down: "ALTER SEQUENCE messages_id_seq CACHE 1; ALTER SEQUENCE attachments_id_seq CACHE 1",
};

/// SQLite: messages and attachments lose their foreign keys, as on PostgreSQL
/// ([`PGWRITE3_CASCADE_BY_STATEMENT`]). Each was a parent lookup per row written, and
/// immediate foreign keys make every multi-row upsert keep a statement journal: 4 %
/// of the instructions of a Graph initial sync into SQLite, 5 % of its CPU. Their
/// `ON DELETE CASCADE` is kept by two `AFTER DELETE` triggers (`folders` → `messages`
/// → `attachments`); an account's deletion still reaches them through its folders'
/// foreign key, whose cascade fires the triggers. Nothing inserts an orphan, for the
/// reasons given there. SQLite drops a constraint only by rebuilding its table: each
/// table is copied into one declared as before without its foreign keys (the
/// declaration is the stored one, minus those clauses), its indexes are created again
/// from their stored SQL, and its `AUTOINCREMENT` counter is kept, in one transaction.
struct SqliteCascadeByTrigger;

/// The foreign keys [`SqliteCascadeByTrigger`] drops, as SQLite stores their
/// declaration, by table (attachments first: it refers to messages).
const SQLITE_MESSAGE_FKS: [(&str, &[&str]); 2] = [
    (
        "attachments",
        &[r#"FOREIGN KEY ("message_id") REFERENCES "messages" ("id") ON DELETE CASCADE"#],
    ),
    (
        "messages",
        &[
            r#"FOREIGN KEY ("account_id") REFERENCES "accounts" ("id") ON DELETE CASCADE"#,
            r#"FOREIGN KEY ("folder_id") REFERENCES "folders" ("id") ON DELETE CASCADE"#,
        ],
    ),
];

const SQLITE_CASCADE_TRIGGERS: &str = "\
CREATE TRIGGER messages_delete_attachments AFTER DELETE ON messages \
    BEGIN DELETE FROM attachments WHERE message_id = OLD.id; END;
CREATE TRIGGER folders_delete_messages AFTER DELETE ON folders \
    BEGIN DELETE FROM messages WHERE folder_id = OLD.id; END;";

impl SqliteCascadeByTrigger {
    /// Rebuilds `table` with its declaration turned by `declare`, keeping its rows,
    /// indexes and `AUTOINCREMENT` counter.
    async fn rebuild(
        manager: &SchemaManager<'_>,
        table: &str,
        declare: impl FnOnce(&str) -> Result<String, DbErr>,
    ) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let stored = |sql: String| sea_orm::Statement::from_string(sea_orm::DbBackend::Sqlite, sql);
        let declared = db
            .query_one_raw(stored(format!(
                "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = '{table}'"
            )))
            .await?
            .ok_or_else(|| DbErr::Migration(format!("no table {table}")))?
            .try_get::<String>("", "sql")?;
        let indexes: Vec<String> = db
            .query_all_raw(stored(format!(
                "SELECT sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = '{table}' \
                 AND sql IS NOT NULL"
            )))
            .await?
            .iter()
            .map(|r| r.try_get::<String>("", "sql"))
            .collect::<Result<_, _>>()?;
        let prefix = format!(r#"CREATE TABLE "{table}" ("#);
        let Some(body) = declared.strip_prefix(&prefix) else {
            return Err(DbErr::Migration(format!(
                "table {table} is declared as {declared:?}"
            )));
        };
        let rebuilt = format!("{table}_rebuilt");
        let create = declare(&format!(r#"CREATE TABLE "{rebuilt}" ({body}"#))?;
        db.execute_unprepared(&create).await?;
        db.execute_unprepared(&format!(
            r#"INSERT INTO "{rebuilt}" SELECT * FROM "{table}""#
        ))
        .await?;
        // The counter of ids handed out goes with the rows: the copy's would only be
        // its highest id (none if empty), and ids of deleted rows would come back.
        db.execute_unprepared(&format!(
            "DELETE FROM sqlite_sequence WHERE name = '{rebuilt}'; \
             UPDATE sqlite_sequence SET name = '{rebuilt}' WHERE name = '{table}'"
        ))
        .await?;
        db.execute_unprepared(&format!(r#"DROP TABLE "{table}""#))
            .await?;
        db.execute_unprepared(&format!(r#"ALTER TABLE "{rebuilt}" RENAME TO "{table}""#))
            .await?;
        for index in indexes {
            db.execute_unprepared(&index).await?;
        }
        Ok(())
    }
}

impl MigrationName for SqliteCascadeByTrigger {
    fn name(&self) -> &str {
        "m20261207_000011_sqlite_cascade_by_trigger"
    }
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for SqliteCascadeByTrigger {
    // A failure half-way leaves the tables as they were.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != sea_orm::DbBackend::Sqlite {
            return Ok(());
        }
        for (table, keys) in SQLITE_MESSAGE_FKS {
            Self::rebuild(manager, table, |create| {
                let mut create = create.to_owned();
                for key in keys {
                    let clause = format!(", {key}");
                    if !create.contains(&clause) {
                        return Err(DbErr::Migration(format!(
                            "table {table} has no foreign key {key}: {create}"
                        )));
                    }
                    create = create.replace(&clause, "");
                }
                Ok(create)
            })
            .await?;
        }
        manager
            .get_connection()
            .execute_unprepared(SQLITE_CASCADE_TRIGGERS)
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != sea_orm::DbBackend::Sqlite {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(
                "DROP TRIGGER folders_delete_messages; DROP TRIGGER messages_delete_attachments",
            )
            .await?;
        // Messages first: attachments refer to them.
        for (table, keys) in SQLITE_MESSAGE_FKS.into_iter().rev() {
            Self::rebuild(manager, table, |create| {
                let Some(body) = create.strip_suffix(" )") else {
                    return Err(DbErr::Migration(format!("table {table}: {create}")));
                };
                Ok(format!("{body}, {} )", keys.join(", ")))
            })
            .await?;
        }
        Ok(())
    }
}

/// A migration of SQL statements run on PostgreSQL only (nothing on SQLite).
struct PostgresOnly {
    name: &'static str,
    up: &'static str,
    down: &'static str,
}

impl PostgresOnly {
    async fn run(&self, manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
        if manager.get_database_backend() == sea_orm::DbBackend::Postgres {
            manager.get_connection().execute_unprepared(sql).await?;
        }
        Ok(())
    }
}

impl MigrationName for PostgresOnly {
    fn name(&self) -> &str {
        self.name
    }
}

#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for PostgresOnly {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        self.run(manager, self.up).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        self.run(manager, self.down).await
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait as _, DbBackend, Statement};

    /// The messages table of a migrated PostgreSQL keeps rows whole up to a page.
    #[tokio::test]
    async fn postgres_message_rows_stay_whole_up_to_a_page() {
        let store = crate::Store::connect(&crate::testing::fresh_postgres_url().await)
            .await
            .unwrap();
        let row = store
            .db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT array_to_string(reloptions, ',') AS options FROM pg_class \
                 WHERE oid = 'messages'::regclass",
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            row.try_get::<String>("", "options").unwrap(),
            "toast_tuple_target=8160"
        );
    }

    /// A migrated PostgreSQL checks no foreign key per message or attachment written:
    /// the cascades are statement-level `AFTER DELETE` triggers.
    #[tokio::test]
    async fn postgres_messages_and_attachments_have_no_foreign_keys() {
        let store = crate::Store::connect(&crate::testing::fresh_postgres_url().await)
            .await
            .unwrap();
        let rows = store
            .db
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT conname::text AS name FROM pg_constraint \
                 WHERE contype = 'f' AND conrelid IN ('messages'::regclass, 'attachments'::regclass) \
                 ORDER BY conname",
            ))
            .await
            .unwrap();
        let names: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String>("", "name").unwrap())
            .collect();
        assert_eq!(names, Vec::<String>::new());
        let rows = store
            .db
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT tgname::text AS name FROM pg_trigger WHERE NOT tgisinternal \
                 AND tgrelid IN ('messages'::regclass, 'folders'::regclass) ORDER BY tgname",
            ))
            .await
            .unwrap();
        let names: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String>("", "name").unwrap())
            .collect();
        assert_eq!(
            names,
            ["folders_delete_messages", "messages_delete_attachments"]
        );
    }

    /// The foreign keys and triggers of a SQLite table, as
    /// `(referenced table, from column)` and trigger names.
    async fn sqlite_keys(
        store: &crate::Store,
        table: &str,
    ) -> (Vec<(String, String)>, Vec<String>) {
        let keys = store
            .db
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                format!("SELECT \"table\" AS t, \"from\" AS f FROM pragma_foreign_key_list('{table}') ORDER BY f"),
            ))
            .await
            .unwrap()
            .iter()
            .map(|r| (r.try_get("", "t").unwrap(), r.try_get("", "f").unwrap()))
            .collect();
        let triggers = store
            .db
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                format!(
                    "SELECT name FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = '{table}'"
                ),
            ))
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get("", "name").unwrap())
            .collect();
        (keys, triggers)
    }

    /// Message and attachment ids, the counters of both tables, and the indexes of both.
    async fn sqlite_contents(
        store: &crate::Store,
    ) -> (Vec<i64>, Vec<(i64, i64)>, Vec<(String, i64)>, Vec<String>) {
        let all = |sql: &str| {
            store
                .db
                .query_all_raw(Statement::from_string(DbBackend::Sqlite, sql.to_owned()))
        };
        let messages = all("SELECT id FROM messages ORDER BY id")
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get_by_index(0).unwrap())
            .collect();
        let attachments = all("SELECT id, message_id FROM attachments ORDER BY id")
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.try_get_by_index(0).unwrap(),
                    r.try_get_by_index(1).unwrap(),
                )
            })
            .collect();
        let counters = all(
            "SELECT name, seq FROM sqlite_sequence WHERE name IN ('messages', 'attachments') ORDER BY name",
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.try_get_by_index(0).unwrap(), r.try_get_by_index(1).unwrap()))
        .collect();
        let indexes = all(
            "SELECT sql FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL \
             AND tbl_name IN ('messages', 'attachments') ORDER BY name",
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get_by_index(0).unwrap())
        .collect();
        (messages, attachments, counters, indexes)
    }

    /// On SQLite, messages and attachments have no foreign keys once migrated (their
    /// cascades are triggers), and the migration rebuilds both tables, down and up
    /// again, keeping every row, index and id counter (a deleted row's id is not
    /// handed out again).
    #[tokio::test]
    async fn sqlite_messages_and_attachments_lose_their_foreign_keys_and_keep_their_rows() {
        use sea_orm_migration::MigratorTrait as _;
        let store = crate::Store::connect("sqlite::memory:").await.unwrap();
        let (account, inbox) = crate::tests::account_with_inbox(&store, "a@example.com").await;
        let messages: Vec<_> = (0..5).map(|i| message("inbox", i)).collect();
        store
            .upsert_messages(account, inbox, &messages)
            .await
            .unwrap();
        store
            .remove_messages(account, &["inbox-4".into()])
            .await
            .unwrap();
        let migrated = sqlite_contents(&store).await;
        assert_eq!(migrated.0.len(), 4);
        assert_eq!(migrated.1.len(), 8);
        assert_eq!(
            migrated.2,
            [("attachments".to_owned(), 10), ("messages".to_owned(), 5)]
        );
        assert_eq!(migrated.3.len(), 3, "{:?}", migrated.3);
        let none = (vec![], vec![]);
        assert_eq!(
            sqlite_keys(&store, "messages").await,
            (vec![], vec!["messages_delete_attachments".to_owned()])
        );
        assert_eq!(sqlite_keys(&store, "attachments").await, none);
        assert_eq!(
            sqlite_keys(&store, "folders").await,
            (
                vec![("accounts".to_owned(), "account_id".to_owned())],
                vec!["folders_delete_messages".to_owned()]
            )
        );

        super::Migrator::down(&store.db, Some(1)).await.unwrap();
        assert_eq!(sqlite_contents(&store).await, migrated);
        assert_eq!(
            sqlite_keys(&store, "messages").await.0,
            [
                ("accounts".to_owned(), "account_id".to_owned()),
                ("folders".to_owned(), "folder_id".to_owned())
            ]
        );
        assert_eq!(
            sqlite_keys(&store, "attachments").await,
            (
                vec![("messages".to_owned(), "message_id".to_owned())],
                vec![]
            )
        );

        super::Migrator::up(&store.db, None).await.unwrap();
        assert_eq!(sqlite_contents(&store).await, migrated);
        assert_eq!(sqlite_keys(&store, "attachments").await, none);
        // The next message takes a new id, not the deleted one's.
        store
            .upsert_messages(account, inbox, &[message("inbox", 9)])
            .await
            .unwrap();
        assert_eq!(sqlite_contents(&store).await.0.last(), Some(&6));
    }

    /// What `read` finds on a migrated PostgreSQL: migrated, after going down through
    /// the migration `name` (and those after it), and after going up again.
    async fn across_migration<T>(name: &str, read: impl AsyncFn(&crate::Store) -> T) -> [T; 3] {
        use sea_orm_migration::MigratorTrait as _;
        let store = crate::Store::connect(&crate::testing::fresh_postgres_url().await)
            .await
            .unwrap();
        let names: Vec<String> = super::Migrator::migrations()
            .iter()
            .map(|m| m.name().to_owned())
            .collect();
        let at = names
            .iter()
            .position(|n| n == name)
            .expect("a migration of ours");
        let migrated = read(&store).await;
        let steps = u32::try_from(names.len() - at).unwrap();
        super::Migrator::down(&store.db, Some(steps)).await.unwrap();
        let before = read(&store).await;
        super::Migrator::up(&store.db, None).await.unwrap();
        [migrated, before, read(&store).await]
    }

    /// A migrated PostgreSQL compares message ids byte by byte; the migration goes
    /// down to the database's collation and up again.
    #[tokio::test]
    async fn postgres_message_ids_compare_bytes() {
        let [migrated, before, again] =
            across_migration(super::REMOTE_IDS_COLLATE_C.name, async |store| {
                store
                    .db
                    .query_one_raw(Statement::from_string(
                        DbBackend::Postgres,
                        "SELECT c.collname::text AS name FROM pg_attribute a \
                     JOIN pg_collation c ON c.oid = a.attcollation \
                     WHERE a.attrelid = 'messages'::regclass AND a.attname = 'remote_id'",
                    ))
                    .await
                    .unwrap()
                    .unwrap()
                    .try_get::<String>("", "name")
                    .unwrap()
            })
            .await;
        assert_eq!(migrated, "C");
        assert_eq!(before, "default");
        assert_eq!(again, "C");
    }

    /// A migrated PostgreSQL hands message and attachment ids out 1,000 at a time per
    /// backend; the migration goes down to one at a time and up again.
    #[tokio::test]
    async fn postgres_ids_are_taken_a_thousand_at_a_time() {
        let caches = across_migration(super::ID_SEQUENCES_CACHED.name, async |store| {
            let rows = store
                .db
                .query_all_raw(Statement::from_string(
                    DbBackend::Postgres,
                    "SELECT sequencename::text AS name, cache_size FROM pg_sequences \
                     WHERE schemaname = current_schema() \
                     AND sequencename IN ('messages_id_seq', 'attachments_id_seq') \
                     ORDER BY sequencename",
                ))
                .await
                .unwrap();
            rows.iter()
                .map(|r| {
                    (
                        r.try_get::<String>("", "name").unwrap(),
                        r.try_get::<i64>("", "cache_size").unwrap(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .await;
        let all = |n: i64| {
            vec![
                ("attachments_id_seq".to_owned(), n),
                ("messages_id_seq".to_owned(), n),
            ]
        };
        assert_eq!(caches, [all(1000), all(1), all(1000)]);
    }

    /// `count(*)` of `sql`.
    async fn count(store: &crate::Store, sql: &str) -> i64 {
        let row = store
            .db
            .query_one_raw(Statement::from_string(store.db_backend(), sql))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index::<i64>(0).unwrap()
    }

    /// Message rows, attachment rows, and the rows whose folder or message is gone.
    async fn rows(store: &crate::Store) -> [i64; 4] {
        [
            count(store, "SELECT count(*) FROM messages").await,
            count(store, "SELECT count(*) FROM attachments").await,
            count(
                store,
                "SELECT count(*) FROM messages AS m WHERE NOT EXISTS \
                 (SELECT 1 FROM folders AS f WHERE f.id = m.folder_id)",
            )
            .await,
            count(
                store,
                "SELECT count(*) FROM attachments AS a WHERE NOT EXISTS \
                 (SELECT 1 FROM messages AS m WHERE m.id = a.message_id)",
            )
            .await,
        ]
    }

    /// Message `i` of a folder `prefix`, with two attachments.
    fn message(prefix: &str, i: usize) -> mailroom_core::Message {
        let attachment = |n: usize| mailroom_core::Attachment {
            remote_id: Some(format!("att-{n}")),
            name: Some(format!("{n}.pdf")),
            size: 10,
            ..Default::default()
        };
        mailroom_core::Message {
            remote_id: format!("{prefix}-{i}"),
            has_attachments: true,
            attachment_count: 2,
            attachments: vec![attachment(0), attachment(1)],
            ..Default::default()
        }
    }

    /// Every way a message, a folder or an account goes takes its messages and their
    /// attachments with it, and nothing else, on both backends (neither has foreign keys
    /// on messages and attachments: migrations m20261206_000008 and m20261207_000011).
    #[tokio::test]
    async fn deletions_take_their_messages_and_attachments_on_both_backends() {
        use mailroom_core::{Change, Folder, SyncCursor, SyncPage};

        let sqlite = crate::Store::connect("sqlite::memory:").await.unwrap();
        let postgres = crate::Store::connect(&crate::testing::fresh_postgres_url().await)
            .await
            .unwrap();
        for store in [sqlite, postgres] {
            let b = store.backend();
            let (account, inbox) = crate::tests::account_with_inbox(&store, "a@example.com").await;
            let (other, other_inbox) =
                crate::tests::account_with_inbox(&store, "b@example.com").await;
            let folder = |name: &str| Folder {
                remote_id: name.into(),
                name: name.into(),
                path: name.into(),
                parent_id: None,
                role: None,
                total_count: None,
                unread_count: None,
            };
            let folders: Vec<i64> = store
                .upsert_folders(account, &[folder("archive"), folder("gone"), folder("raw")])
                .await
                .unwrap()
                .iter()
                .map(|f| f.id)
                .collect();
            let [archive, gone, raw] = folders[..] else {
                panic!("three folders: {folders:?}")
            };
            for (folder_id, prefix) in [
                (inbox, "inbox"),
                (archive, "archive"),
                (gone, "gone"),
                (raw, "raw"),
            ] {
                let messages: Vec<_> = (0..4).map(|i| message(prefix, i)).collect();
                store
                    .upsert_messages(account, folder_id, &messages)
                    .await
                    .unwrap();
            }
            let kept: Vec<_> = (0..4).map(|i| message("other", i)).collect();
            store
                .upsert_messages(other, other_inbox, &kept)
                .await
                .unwrap();
            assert_eq!(rows(&store).await, [20, 40, 0, 0], "{b:?}");

            // A message removed by remote id (the CLI's delete or move).
            let removed = store
                .remove_messages(account, &["inbox-0".into()])
                .await
                .unwrap();
            assert_eq!(removed, 1, "{b:?}");
            assert_eq!(rows(&store).await, [19, 38, 0, 0], "{b:?}: remove_messages");

            // A removal in a sync page, then a reset enumeration that saw only inbox-2:
            // inbox-3 is reconciled away.
            let page = |changes, reset, complete| SyncPage {
                changes,
                cursor: SyncCursor("c".into()),
                reset,
                complete,
            };
            let write = |page| crate::SyncPageWrite {
                account_id: account,
                folder_id: inbox,
                page,
                lease: None,
            };
            let removal = page(
                vec![Change::Remove {
                    remote_id: "inbox-1".into(),
                }],
                false,
                false,
            );
            store.apply_sync_page(write(&removal)).await.unwrap();
            assert_eq!(rows(&store).await, [18, 36, 0, 0], "{b:?}: a removal");
            let reset = page(vec![Change::Upsert(message("inbox", 2))], true, true);
            let stats = store.apply_sync_page(write(&reset)).await.unwrap();
            assert_eq!(stats.reconciled, 1, "{b:?}");
            assert_eq!(rows(&store).await, [17, 34, 0, 0], "{b:?}: reconcile");

            // Folders: deleted by the store, gone twice, deleted by hand.
            store.delete_folders(account, &[archive]).await.unwrap();
            assert_eq!(rows(&store).await, [13, 26, 0, 0], "{b:?}: delete_folders");
            for _ in 0..2 {
                store
                    .mark_folder_gone(gone, chrono::Utc::now())
                    .await
                    .unwrap();
            }
            assert_eq!(rows(&store).await, [9, 18, 0, 0], "{b:?}: a gone folder");
            store
                .db
                .execute_raw(Statement::from_string(
                    store.db_backend(),
                    format!("DELETE FROM folders WHERE id = {raw}"),
                ))
                .await
                .unwrap();
            assert_eq!(
                rows(&store).await,
                [5, 10, 0, 0],
                "{b:?}: a folder row deleted"
            );

            // The account, with its Inbox and its gone folder.
            store.remove_account(account).await.unwrap();
            assert_eq!(rows(&store).await, [4, 8, 0, 0], "{b:?}: remove_account");
            let left = count(
                &store,
                &format!("SELECT count(*) FROM messages WHERE account_id = {other}"),
            )
            .await;
            assert_eq!(left, 4, "{b:?}: the other account's messages stay");
        }
    }
}
