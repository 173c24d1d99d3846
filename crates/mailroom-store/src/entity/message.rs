use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: i64,
    pub folder_id: i64,
    pub remote_id: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub message_id: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub subject: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub sender_name: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub sender_address: Option<String>,
    /// JSON array of `EmailAddress`.
    #[sea_orm(column_type = "Text")]
    pub to_recipients: String,
    /// JSON array of `EmailAddress`.
    #[sea_orm(column_type = "Text")]
    pub cc_recipients: String,
    pub date_received: Option<DateTimeUtc>,
    pub sent_at: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub body: Option<String>,
    pub is_read: bool,
    pub is_draft: bool,
    pub has_attachments: bool,
    pub attachment_count: i32,
    #[sea_orm(column_type = "Text", nullable)]
    pub conversation_id: Option<String>,
    /// JSON array of strings; `[]` when the source parsed cleanly.
    #[sea_orm(column_type = "Text")]
    pub warnings: String,
    /// The folder generation that last saw this message (see `SyncPage::reset`).
    pub generation: i64,
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
