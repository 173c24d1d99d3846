//! The command line: every sub-command, flag and environment variable.

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

/// What `--help` says about exit codes (also in the README).
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  failure that retrying will not fix (bad key, bad input, unknown account, …)
  2  usage error (unknown flag, missing argument)
  3  re-authentication required: an account is needs_reauth, or a sign-in was declined
     or expired — run `mailroom account reauth EMAIL`
  4  transient failure: network, throttling, database unreachable — retry later

Configuration: flags override MAILROOM_* environment variables, which override the
defaults (a SQLite database and a key file in the user's data directory).";

/// Mailroom: Microsoft 365 / Outlook and IMAP mailboxes, synced into SQL.
#[derive(Debug, Parser)]
#[command(name = "mailroom", version, after_long_help = EXIT_CODES, after_help = EXIT_CODES)]
pub struct Cli {
    /// Global options.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Database: sqlite://FILE?mode=rwc or postgres://USER:PASSWORD@HOST/DB
    /// [default: sqlite file mailroom.sqlite in the user's data directory]
    #[arg(
        long,
        env = "MAILROOM_DATABASE_URL",
        global = true,
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// Fernet keys, comma-separated, newest first (prefer MAILROOM_KEY_FILE: a flag
    /// shows in the process list)
    #[arg(
        long,
        env = "MAILROOM_KEY",
        global = true,
        value_name = "KEYS",
        hide_env_values = true
    )]
    pub key: Option<String>,

    /// File holding the Fernet keys, one per line, newest first; must be mode 0600
    /// [default: `key` in the user's data directory, created on first use]
    #[arg(long, env = "MAILROOM_KEY_FILE", global = true, value_name = "PATH")]
    pub key_file: Option<PathBuf>,

    /// Microsoft identity platform host
    #[arg(
        long,
        env = "MAILROOM_AUTHORITY_URL",
        global = true,
        value_name = "URL",
        default_value = mailroom_oauth::DEFAULT_CLOUD
    )]
    pub authority_url: String,

    /// Microsoft Graph root
    #[arg(
        long,
        env = "MAILROOM_GRAPH_URL",
        global = true,
        value_name = "URL",
        default_value = mailroom_graph::DEFAULT_GRAPH_URL
    )]
    pub graph_url: String,

    /// Application (client) id of the Entra app registration used to sign in
    #[arg(long, env = "MAILROOM_CLIENT_ID", global = true, value_name = "ID")]
    pub client_id: Option<String>,

    /// Extra CA certificates (PEM) to trust for IMAP servers with a private CA
    #[arg(
        long,
        env = "MAILROOM_IMAP_CA_FILE",
        global = true,
        value_name = "PATH"
    )]
    pub imap_ca_file: Option<PathBuf>,

    /// Tries per Graph request on throttling and network errors (1 = no retry)
    #[arg(
        long,
        env = "MAILROOM_MAX_ATTEMPTS",
        global = true,
        value_name = "N",
        default_value_t = 6,
        value_parser = clap::value_parser!(u32).range(1..=20)
    )]
    pub max_attempts: u32,

    /// Messages per page when syncing (Graph delta, IMAP fetch); each page is one
    /// transaction [default: 1000 for Graph, 500 for IMAP]
    #[arg(
        long,
        env = "MAILROOM_PAGE_SIZE",
        global = true,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=1000)
    )]
    pub page_size: Option<u32>,

    /// Threads that run syncs, HTTP and parsing: 1 runs everything on one thread
    /// (SQLite's writer has its own), the cheapest in CPU; more help only when one
    /// core is the limit
    #[arg(
        long,
        env = "MAILROOM_THREADS",
        global = true,
        value_name = "N",
        default_value_t = 1,
        value_parser = clap::value_parser!(u16).range(1..=1024)
    )]
    pub threads: u16,

    /// Print lists and records as JSON on stdout
    #[arg(long, global = true)]
    pub json: bool,

    /// Log to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,

    /// Log lines as text, or as JSON: one object per line with the fields of the
    /// account sync, folder and page spans, and each span's duration when it closes
    #[arg(
        long,
        env = "MAILROOM_LOG_FORMAT",
        global = true,
        value_enum,
        default_value_t = LogFormat::Text
    )]
    pub log_format: LogFormat,
}

/// How log lines are written on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Text for people.
    Text,
    /// One JSON object per line.
    Json,
}

/// The sub-commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Add, list, inspect, remove accounts and sign in again
    #[command(subcommand)]
    Account(AccountCommand),
    /// List an account's folders, live from the server (role, counts)
    Folders(FoldersArgs),
    /// Synced messages, from the local database
    #[command(subcommand)]
    Messages(MessagesCommand),
    /// Move a message on the server, then update the local database
    Move(MoveArgs),
    /// Delete a message on the server (to Deleted Items, or for good), then locally
    Delete(DeleteArgs),
    /// Sync accounts now, with progress bars and a summary
    Sync(SyncArgs),
    /// Sync every account on an interval until SIGINT/SIGTERM
    Worker(WorkerArgs),
    /// Check the database, the keys, and each account's credentials, token and servers
    Doctor(DoctorArgs),
    /// Generate and rotate the Fernet keys that encrypt credentials
    #[command(subcommand)]
    Key(KeyCommand),
}

/// `mailroom account …`
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Add an account
    #[command(subcommand)]
    Add(AddCommand),
    /// List accounts: status, last sync, last error
    List,
    /// One account in detail (folders synced, message count, token state)
    Show(EmailArg),
    /// Remove an account with everything synced for it
    Remove(RemoveArgs),
    /// Sign in again (device code flow) and make the account active
    Reauth(ReauthArgs),
    /// The folders an account syncs, with their state; `add` / `remove` change them
    Folders(AccountFoldersArgs),
}

/// `mailroom account folders EMAIL [add|remove …]`
#[derive(Debug, Args)]
pub struct AccountFoldersArgs {
    /// The account's address
    pub email: String,
    /// Without one: list the synced folders (path, state, messages, last sync)
    #[command(subcommand)]
    pub action: Option<AccountFoldersAction>,
}

/// `mailroom account folders EMAIL add|remove`
#[derive(Debug, Subcommand)]
pub enum AccountFoldersAction {
    /// Sync these folders too (checked on the server: a role like ARCHIVE or a path
    /// like Projects/2025); the next sync fetches them
    Add(FolderPathsArgs),
    /// Stop syncing these folders; their local copies are deleted by the account's
    /// next sync (or now with --purge)
    Remove(RemoveFoldersArgs),
}

/// Folder names.
#[derive(Debug, Args)]
pub struct FolderPathsArgs {
    /// Folders: a role (INBOX, SENT, ARCHIVE, …) or a path like Projects/2025
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
}

/// `mailroom account folders EMAIL remove`
#[derive(Debug, Args)]
pub struct RemoveFoldersArgs {
    /// Folders to stop syncing, as listed by `mailroom account folders EMAIL`
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
    /// Delete the local copies now instead of at the next sync
    #[arg(long)]
    pub purge: bool,
}

/// `mailroom account add …`
#[derive(Debug, Subcommand)]
pub enum AddCommand {
    /// Microsoft 365 / Outlook.com, signed in with the device code flow
    Outlook(AddOutlookArgs),
    /// Any IMAP server, with a password or an OAuth2 sign-in (XOAUTH2)
    Imap(AddImapArgs),
}

/// How to sign in with the device code flow.
#[derive(Debug, Args, Clone)]
pub struct SignInArgs {
    /// Tenant: common, organizations, consumers, a tenant id or a domain
    #[arg(long, default_value = "common")]
    pub tenant: String,
    /// Read the client secret of a confidential app registration from stdin
    #[arg(long)]
    pub client_secret_stdin: bool,
}

/// `mailroom account add outlook`
#[derive(Debug, Args)]
pub struct AddOutlookArgs {
    /// The mailbox address
    #[arg(long)]
    pub email: String,
    /// Use Outlook's IMAP (outlook.office365.com:993, XOAUTH2) instead of Graph
    #[arg(long)]
    pub imap: bool,
    /// Folders to sync (repeatable; default INBOX): a role (INBOX, SENT, ARCHIVE, …)
    /// or a path like Projects/2025
    #[arg(long = "folder", value_name = "NAME")]
    pub folders: Vec<String>,
    /// Sync every mail folder the server lists (except Outbox, Conversation History
    /// and Sync Issues); change them later with `mailroom account folders`
    #[arg(long, conflicts_with_all = ["folders", "no_verify"])]
    pub all_folders: bool,
    /// Do not check the signed-in mailbox with Graph /me
    #[arg(long)]
    pub no_verify: bool,
    /// Store the account even when the user who signed in is not --email (their
    /// mailbox is then synced under --email)
    #[arg(long)]
    pub allow_other_user: bool,
    #[command(flatten)]
    pub sign_in: SignInArgs,
}

/// IMAP transport security.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TlsArg {
    /// TLS from the first byte (port 993)
    Implicit,
    /// STARTTLS (port 143)
    Starttls,
    /// No TLS: loopback hosts only
    None,
}

/// `mailroom account add imap`
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("auth").required(true).args(["password_stdin", "oauth"]))]
pub struct AddImapArgs {
    /// The mailbox address
    #[arg(long)]
    pub email: String,
    /// IMAP server host
    #[arg(long)]
    pub host: String,
    /// IMAP port [default: 993 for implicit TLS, 143 otherwise]
    #[arg(long)]
    pub port: Option<u16>,
    /// Transport security
    #[arg(long, value_enum, default_value = "implicit")]
    pub tls: TlsArg,
    /// Login name [default: the email address]
    #[arg(long)]
    pub username: Option<String>,
    /// Read the password (or app password) from stdin
    #[arg(long)]
    pub password_stdin: bool,
    /// Sign in with the device code flow for Outlook IMAP scopes (SASL XOAUTH2)
    #[arg(long)]
    pub oauth: bool,
    /// Folders to sync (repeatable; default INBOX)
    #[arg(long = "folder", value_name = "NAME")]
    pub folders: Vec<String>,
    /// Sync every mailbox the server lists; change them later with
    /// `mailroom account folders`
    #[arg(long, conflicts_with_all = ["folders", "no_verify"])]
    pub all_folders: bool,
    /// Store without checking the login first
    #[arg(long)]
    pub no_verify: bool,
    #[command(flatten)]
    pub sign_in: SignInArgs,
}

/// An account by address.
#[derive(Debug, Args)]
pub struct EmailArg {
    /// The account's address
    pub email: String,
}

/// `mailroom account remove`
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The account's address
    pub email: String,
    /// Do not ask for confirmation
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// `mailroom account reauth`
#[derive(Debug, Args)]
pub struct ReauthArgs {
    /// The account's address
    pub email: String,
    /// Tenant [default: the one stored with the account]
    #[arg(long)]
    pub tenant: Option<String>,
    /// Read a (new) client secret from stdin
    #[arg(long)]
    pub client_secret_stdin: bool,
    /// Do not check the signed-in mailbox with Graph /me (Graph accounts)
    #[arg(long)]
    pub no_verify: bool,
    /// Store the new tokens even when the user who signed in is not EMAIL (their
    /// mailbox is then synced under EMAIL)
    #[arg(long)]
    pub allow_other_user: bool,
}

/// `mailroom folders`
#[derive(Debug, Args)]
pub struct FoldersArgs {
    /// The account [default: the only account]
    #[arg(long)]
    pub account: Option<String>,
}

/// `mailroom messages …`
#[derive(Debug, Subcommand)]
pub enum MessagesCommand {
    /// List synced messages, newest first
    List(ListMessagesArgs),
    /// Show one message (ID from `messages list`, or a server id with --account)
    Show(ShowMessageArgs),
}

/// `mailroom messages list`
#[derive(Debug, Args)]
pub struct ListMessagesArgs {
    /// Only this account
    #[arg(long)]
    pub account: Option<String>,
    /// Only this folder (INBOX, SENT, Projects/2025, …)
    #[arg(long)]
    pub folder: Option<String>,
    /// Only messages received since: 2025-01-31, an RFC 3339 time, or a duration ago (7d)
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Only unread messages
    #[arg(long)]
    pub unread: bool,
    /// Only messages whose subject or sender contains this text
    #[arg(long, value_name = "TEXT")]
    pub search: Option<String>,
    /// At most this many (0 = all)
    #[arg(long, default_value_t = 50)]
    pub limit: u64,
    /// Skip this many
    #[arg(long, default_value_t = 0)]
    pub offset: u64,
}

/// `mailroom messages show`
#[derive(Debug, Args)]
pub struct ShowMessageArgs {
    /// Message ID (the ID column of `messages list`) or server id
    pub id: String,
    /// The account (needed for a server id shared by several accounts)
    #[arg(long)]
    pub account: Option<String>,
    /// Print the raw MIME message, fetched from the server (Graph accounts)
    #[arg(long)]
    pub raw: bool,
}

/// `mailroom move`
#[derive(Debug, Args)]
pub struct MoveArgs {
    /// The account [default: the message's]
    #[arg(long)]
    pub account: Option<String>,
    /// Message ID (from `messages list`) or server id
    pub id: String,
    /// Destination: a role (ARCHIVE, JUNK, …) or a path like Projects/2025
    pub dest_folder: String,
}

/// `mailroom delete`
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The account [default: the message's]
    #[arg(long)]
    pub account: Option<String>,
    /// Message ID (from `messages list`) or server id
    pub id: String,
    /// Delete for good instead of moving to Deleted Items / Trash
    #[arg(long)]
    pub permanent: bool,
}

/// `mailroom sync`
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Only this account (repeatable) [default: every active account]
    #[arg(long = "account", value_name = "EMAIL")]
    pub accounts: Vec<String>,
    /// Sync these folders instead of the accounts' configured ones (repeatable); a
    /// folder the account does not sync is synced this once (see --add)
    #[arg(long = "folder", value_name = "NAME")]
    pub folders: Vec<String>,
    /// Also add the --folder folders to the accounts' synced folders, so the worker
    /// keeps them up to date
    #[arg(long, requires = "folders")]
    pub add: bool,
    /// A first sync only fetches mail received since: 2025-01-31, RFC 3339, or 30d
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Accounts synced at once
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
}

/// `mailroom worker`
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// How often each account is synced
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub interval: Duration,
    /// Accounts synced at once
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// This worker's id, unique among workers sharing a database [default: host-pid-random]
    #[arg(long)]
    pub worker_id: Option<String>,
    /// Sync the accounts that are due once, then exit
    #[arg(long)]
    pub once: bool,
    /// How long an account's lease lasts without renewal (a dead worker's accounts
    /// wait this long)
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub lease_ttl: Duration,
    /// How often to look for due accounts when idle
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub poll_interval: Duration,
    /// Most IMAP IDLE connections this worker keeps open: an IMAP account whose server
    /// announces IDLE gets one on its Inbox after its first sync, and new mail or an
    /// expunge starts a sync within seconds; accounts beyond the cap are polled (0: off)
    #[arg(long, default_value_t = 100)]
    pub idle_connections: usize,
    /// Serve /healthz, /readyz, /metrics, /status and Graph change notifications on
    /// this address (plain HTTP: put TLS in a reverse proxy in front)
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = mailroom_server::DEFAULT_LISTEN)]
    pub listen: Option<std::net::SocketAddr>,
    /// Subscribe Graph accounts to change notifications sent to this URL (the
    /// https address of the reverse proxy in front of --listen); needs --listen
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// With push healthy (every folder's Graph subscription, or IMAP IDLE on an account
    /// that syncs only its Inbox), poll the account this often anyway (the safety net)
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub push_safety_interval: Duration,
}

/// `mailroom doctor`
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Only this account
    #[arg(long)]
    pub account: Option<String>,
}

/// `mailroom key …`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Print a new Fernet key (or write it as the key file)
    Generate(GenerateArgs),
    /// Put a new key first in the key file and re-encrypt every account with it
    Rotate(RotateArgs),
}

/// `mailroom key generate`
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Create the key file (mode 0600) with the new key instead of printing it;
    /// never overwrites
    #[arg(long)]
    pub write: bool,
}

/// `mailroom key rotate`
#[derive(Debug, Args)]
pub struct RotateArgs {
    /// Afterwards remove the older keys, if every account decrypts with the new one
    #[arg(long)]
    pub drop_old: bool,
    /// Do not add a key: re-encrypt with the first configured key (keys kept in
    /// MAILROOM_KEY, where the new key was put first by hand)
    #[arg(long)]
    pub reseal_only: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("{e}: use a duration like 30s, 5m, 1h"))?;
    if d.is_zero() {
        return Err("must be more than 0".into());
    }
    Ok(d)
}
