use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "folders")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: i64,
    pub remote_id: String,
    pub name: String,
    #[sea_orm(column_type = "Text")]
    pub path: String,
    pub parent_remote_id: Option<String>,
    pub role: Option<String>,
    /// The connector's sync cursor (delta link, IMAP state); NULL before the first sync.
    #[sea_orm(column_type = "Text", nullable)]
    pub cursor: Option<String>,
    /// Bumped when a full enumeration starts (see `SyncPage::reset`).
    pub generation: i64,
    /// True between a reset and the page that completes it.
    pub reconciling: bool,
    pub total_count: Option<i64>,
    pub unread_count: Option<i64>,
    pub last_synced_at: Option<DateTimeUtc>,
    /// When the folder was first found gone on the server; NULL while it exists.
    pub gone_since: Option<DateTimeUtc>,
    /// Syncs in a row that found it gone (0 while it exists).
    pub missed_syncs: i32,
    /// When a gone folder was last looked up on the server.
    pub checked_at: Option<DateTimeUtc>,
    /// The last error of this folder, naming it by path; NULL after a good sync.
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    /// When the user stopped syncing it; its rows go at the account's next sync.
    pub removed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::account::Entity",
        from = "Column::AccountId",
        to = "super::account::Column::Id",
        on_delete = "Cascade"
    )]
    Account,
}

impl Related<super::account::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Account.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
