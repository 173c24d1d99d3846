use sea_orm::entity::prelude::*;

/// One Graph change-notification subscription per synced folder (migration `push`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "push_subscriptions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: i64,
    #[sea_orm(unique)]
    pub folder_id: i64,
    /// Graph's subscription id; NULL while there is none (not created, removed).
    pub subscription_id: Option<String>,
    pub expires_at: Option<DateTimeUtc>,
    /// The `clientState` secret as a Fernet token (sealed with the account's vault).
    #[sea_orm(column_type = "Text", nullable)]
    pub client_state: Option<String>,
    /// `active`, `renew`, `removed`, `failed`.
    pub status: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    /// When the folder was last marked changed by a notification; NULL when clean.
    pub dirty_at: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::folder::Entity",
        from = "Column::FolderId",
        to = "super::folder::Column::Id",
        on_delete = "Cascade"
    )]
    Folder,
}

impl ActiveModelBehavior for ActiveModel {}
