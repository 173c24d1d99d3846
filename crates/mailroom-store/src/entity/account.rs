use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "accounts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub email: String,
    pub kind: String,
    /// A Fernet token; the store never holds plaintext credentials.
    #[sea_orm(column_type = "Text")]
    pub credentials: String,
    pub status: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    pub auth_error_code: Option<String>,
    /// JSON array of folder names to sync; NULL means the inbox only.
    #[sea_orm(column_type = "Text", nullable)]
    pub sync_folders: Option<String>,
    pub last_sync_at: Option<DateTimeUtc>,
    pub next_sync_at: Option<DateTimeUtc>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The server's `Retry-After` deadline for the mailbox (migration `throttle`).
    pub throttled_until: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::folder::Entity")]
    Folder,
}

impl ActiveModelBehavior for ActiveModel {}
