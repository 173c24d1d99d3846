//! A private Dovecot for integration tests (feature `testing`).
//!
//! [`Dovecot::start`] writes a config into a temp dir (run, state, log and mail all
//! inside it), generates a CA and a server certificate for `localhost`/`127.0.0.1`
//! (so the connector's custom-CA option is exercised), picks free loopback ports for
//! `imap` (plain + STARTTLS) and `imaps` (implicit TLS), starts `dovecot -c …` and
//! waits for the greeting. Dropping it stops the master process.
//!
//! Every user name logs in with [`Dovecot::PASSWORD`]; with
//! [`DovecotConfig::oauth2_introspection_url`] XOAUTH2/OAUTHBEARER tokens are checked
//! by POSTing them to that URL (e.g. `mailroom-sim`'s introspection endpoint). Each
//! user has `INBOX`, `Sent`, `Entwürfe` (`\Drafts`), `Trash`, `Junk` and `Archive`
//! with their SPECIAL-USE attributes.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use mailroom_imap::testing::Dovecot;
//!
//! let dovecot = Dovecot::start()?;
//! let mut admin = dovecot.admin("alice").await?;
//! admin.append("INBOX", b"Subject: hi\r\n\r\nhello\r\n", "").await?;
//! let creds = dovecot.password_credentials("alice", mailroom_imap::ImapTls::Implicit);
//! # let _ = creds; Ok(())
//! # }
//! ```

use std::fmt::Write as _;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mailroom_core::{ImapAuth, ImapCredentials, ImapTls, Password};
use tokio::net::TcpStream as AsyncTcpStream;

use crate::proto::quote_mailbox;

/// What to start.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DovecotConfig {
    /// Where Dovecot's oauth2 passdb POSTs tokens (`introspection_mode = post`).
    pub oauth2_introspection_url: Option<String>,
    /// Capabilities to leave out of the advertised list, e.g. `MOVE` or `QRESYNC`,
    /// to exercise a client's fallbacks.
    pub without_capabilities: Vec<String>,
}

impl DovecotConfig {
    /// Validates XOAUTH2 tokens through this introspection URL.
    pub fn oauth2_introspection_url(mut self, url: impl Into<String>) -> Self {
        self.oauth2_introspection_url = Some(url.into());
        self
    }

    /// Hides a capability (`MOVE`, `QRESYNC`, `CONDSTORE`, …).
    pub fn without_capability(mut self, capability: impl Into<String>) -> Self {
        self.without_capabilities.push(capability.into());
        self
    }
}

/// A running private Dovecot; stopped on drop.
#[derive(Debug)]
pub struct Dovecot {
    dir: tempfile::TempDir,
    imap_port: u16,
    imaps_port: u16,
}

/// The capabilities Dovecot 2.3 advertises after login with this config.
const DEFAULT_CAPABILITIES: &[&str] = &[
    "IMAP4rev1",
    "SASL-IR",
    "LOGIN-REFERRALS",
    "ID",
    "ENABLE",
    "IDLE",
    "SORT",
    "SORT=DISPLAY",
    "THREAD=REFERENCES",
    "THREAD=REFS",
    "THREAD=ORDEREDSUBJECT",
    "MULTIAPPEND",
    "URL-PARTIAL",
    "CATENATE",
    "UNSELECT",
    "CHILDREN",
    "NAMESPACE",
    "UIDPLUS",
    "LIST-EXTENDED",
    "I18NLEVEL=1",
    "CONDSTORE",
    "QRESYNC",
    "ESEARCH",
    "ESORT",
    "SEARCHRES",
    "WITHIN",
    "CONTEXT=SEARCH",
    "LIST-STATUS",
    "BINARY",
    "MOVE",
    "SNIPPET=FUZZY",
    "PREVIEW=FUZZY",
    "PREVIEW",
    "STATUS=SIZE",
    "SAVEDATE",
    "LITERAL+",
    "NOTIFY",
    "SPECIAL-USE",
];

impl Dovecot {
    /// The password every user logs in with.
    pub const PASSWORD: &'static str = "secret";

    /// Starts a Dovecot with the default config.
    pub fn start() -> io::Result<Dovecot> {
        Dovecot::start_with(&DovecotConfig::default())
    }

    /// Starts a Dovecot; fails with a clear message when `dovecot` is not installed.
    pub fn start_with(config: &DovecotConfig) -> io::Result<Dovecot> {
        match Command::new("dovecot").arg("--version").output() {
            Ok(out) if out.status.success() => {}
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    "dovecot is not installed: run `apt-get install -y dovecot-imapd` (or `cargo xtask ci`)",
                ));
            }
        }
        let mut last_error = None;
        // Free ports can be taken by a parallel test between probing and binding: retry.
        for _ in 0..5 {
            match Dovecot::try_start(config) {
                Ok(d) => return Ok(d),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.expect("at least one attempt"))
    }

    fn try_start(config: &DovecotConfig) -> io::Result<Dovecot> {
        let dir = tempfile::Builder::new()
            .prefix("mailroom-dovecot-")
            .tempdir()?;
        let root = dir.path();
        set_mode(root, 0o755)?;
        for sub in ["run", "state"] {
            std::fs::create_dir(root.join(sub))?;
        }
        let mail = root.join("mail");
        std::fs::create_dir(&mail)?;
        set_mode(&mail, 0o777)?;
        write_certificates(root)?;
        let imap_port = free_port()?;
        let imaps_port = free_port()?;
        std::fs::write(
            root.join("dovecot.conf"),
            render_config(root, imap_port, imaps_port, config),
        )?;
        if let Some(url) = &config.oauth2_introspection_url {
            std::fs::write(
                root.join("oauth2.conf"),
                format!(
                    "introspection_mode = post\nintrospection_url = {url}\n\
                     username_attribute = username\nactive_attribute = active\n\
                     active_value = true\ntokeninfo_url =\n"
                ),
            )?;
        }
        // The daemon keeps inherited pipes open: send its output to a file, not a pipe.
        let startup_log = root.join("startup.log");
        let status = Command::new("dovecot")
            .arg("-c")
            .arg(root.join("dovecot.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::fs::File::create(&startup_log)?))
            .stderr(Stdio::from(std::fs::File::create(
                root.join("startup.err"),
            )?))
            .status()?;
        let dovecot = Dovecot {
            dir,
            imap_port,
            imaps_port,
        };
        if !status.success() {
            let stderr =
                std::fs::read_to_string(dovecot.dir().join("startup.err")).unwrap_or_default();
            return Err(io::Error::other(format!(
                "cannot start dovecot: {}{}",
                stderr.trim(),
                dovecot.log_tail()
            )));
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if greets(imap_port) && TcpStream::connect(("127.0.0.1", imaps_port)).is_ok() {
                return Ok(dovecot);
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "dovecot did not answer on 127.0.0.1:{imap_port} within 15 s{}",
                    dovecot.log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The host to connect to (`localhost`, which the certificate names).
    pub fn host(&self) -> &'static str {
        "localhost"
    }

    /// The plain-text port (STARTTLS offered).
    pub fn imap_port(&self) -> u16 {
        self.imap_port
    }

    /// The implicit-TLS port.
    pub fn imaps_port(&self) -> u16 {
        self.imaps_port
    }

    /// The PEM file of the CA that signed the server certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The temp dir holding config, logs and mail.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Dovecot's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// Dovecot's log once `done` holds for it (its log process writes asynchronously),
    /// or as it is after 10 s.
    pub fn log_until(&self, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if done(&log) || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<_> = log.lines().rev().take(20).collect();
        if lines.is_empty() {
            return String::new();
        }
        let mut out = String::from("\n--- dovecot.log (last lines) ---");
        for line in lines.into_iter().rev() {
            let _ = write!(out, "\n{line}");
        }
        out
    }

    /// Kills every `imap` process of this Dovecot: each client sees its connection
    /// drop, as after a server restart or an idle timeout. Returns how many.
    pub fn kick_all(&self) -> io::Result<usize> {
        let master = std::fs::read_to_string(self.dir.path().join("run").join("master.pid"))?;
        let master = master.trim();
        let mut killed = 0;
        for entry in std::fs::read_dir("/proc")? {
            let path = entry?.path();
            let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
                continue;
            };
            // pid (comm) state ppid …
            let Some((head, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            let comm = head.split_once('(').map_or("", |(_, c)| c);
            let ppid = rest.split_whitespace().nth(1).unwrap_or("");
            if comm == "imap" && ppid == master {
                let pid = head.split_whitespace().next().unwrap_or("");
                if Command::new("kill").arg(pid).status()?.success() {
                    killed += 1;
                }
            }
        }
        Ok(killed)
    }

    /// Password credentials for `user` on the port that matches `tls`.
    pub fn password_credentials(&self, user: &str, tls: ImapTls) -> ImapCredentials {
        ImapCredentials {
            host: self.host().to_owned(),
            port: match tls {
                ImapTls::Implicit => self.imaps_port,
                ImapTls::Starttls | ImapTls::None => self.imap_port,
            },
            tls,
            username: Some(user.to_owned()),
            auth: ImapAuth::Password(Password::new(Dovecot::PASSWORD)),
            extra: Default::default(),
        }
    }

    /// A plain-text admin session logged in as `user`, to seed and change mail behind
    /// the connector's back.
    pub async fn admin(&self, user: &str) -> io::Result<Admin> {
        let stream = AsyncTcpStream::connect(("127.0.0.1", self.imap_port)).await?;
        let mut client = async_imap::Client::new(stream);
        client
            .read_response()
            .await?
            .ok_or_else(|| io::Error::other("dovecot closed before its greeting"))?;
        let session = client
            .login(user, Dovecot::PASSWORD)
            .await
            .map_err(|(e, _)| io::Error::other(format!("admin login as {user}: {e}")))?;
        Ok(Admin { session })
    }

    /// Writes messages straight into `user`'s Maildir INBOX (fast seeding for
    /// benchmarks); Dovecot assigns UIDs on its next look at the folder.
    pub fn write_maildir_inbox(
        &self,
        user: &str,
        messages: impl IntoIterator<Item = impl AsRef<[u8]>>,
    ) -> io::Result<usize> {
        let home = self.dir.path().join("mail").join(user);
        let maildir = home.join("Maildir");
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub))?;
        }
        let (uid, gid) = nobody_ids()?;
        let mut n = 0;
        for (i, raw) in messages.into_iter().enumerate() {
            let raw = raw.as_ref();
            let path = maildir
                .join("cur")
                .join(format!("1700000000.M{i}P1.mailroom,S={}:2,", raw.len()));
            std::fs::write(&path, raw)?;
            std::os::unix::fs::chown(&path, Some(uid), Some(gid))?;
            n += 1;
        }
        for dir in [
            home.clone(),
            maildir.clone(),
            maildir.join("cur"),
            maildir.join("new"),
            maildir.join("tmp"),
        ] {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))?;
        }
        Ok(n)
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let pid_file = self.dir.path().join("run").join("master.pid");
        let Ok(pid) = std::fs::read_to_string(&pid_file) else {
            return;
        };
        let pid = pid.trim().to_owned();
        let _ = Command::new("kill").arg(&pid).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A logged-in plain-text session for test setup (APPEND, STORE, EXPUNGE, CREATE …).
#[derive(Debug)]
pub struct Admin {
    session: async_imap::Session<AsyncTcpStream>,
}

impl Admin {
    /// Appends a message to `mailbox` (UTF-8 name) with flags such as `(\Seen)` or `""`.
    pub async fn append(&mut self, mailbox: &str, raw: &[u8], flags: &str) -> io::Result<()> {
        let name = crate::proto::utf7::encode(mailbox);
        let flags = (!flags.is_empty()).then_some(flags);
        self.session
            .append(&name, flags, None, raw)
            .await
            .map_err(|e| io::Error::other(format!("append to {mailbox}: {e}")))
    }

    /// Appends a message with an INTERNALDATE such as `"20-Jan-2025 23:00:00 -0200"`.
    pub async fn append_at(
        &mut self,
        mailbox: &str,
        raw: &[u8],
        internal_date: &str,
    ) -> io::Result<()> {
        let name = crate::proto::utf7::encode(mailbox);
        let date = format!("\"{internal_date}\"");
        self.session
            .append(&name, None, Some(&date), raw)
            .await
            .map_err(|e| io::Error::other(format!("append to {mailbox}: {e}")))
    }

    /// Runs a command that must end in OK; `{mailbox}`-style names must already be
    /// quoted (see [`Admin::mailbox`]).
    pub async fn command(&mut self, command: &str) -> io::Result<()> {
        self.session
            .run_command_and_check_ok(command)
            .await
            .map_err(|e| io::Error::other(format!("{command}: {e}")))
    }

    /// Quotes a UTF-8 mailbox name for [`Admin::command`].
    pub fn mailbox(name: &str) -> String {
        quote_mailbox(name).expect("test mailbox names have no line breaks")
    }

    /// Selects a mailbox.
    pub async fn select(&mut self, mailbox: &str) -> io::Result<async_imap::types::Mailbox> {
        let name = crate::proto::utf7::encode(mailbox);
        self.session
            .select(&name)
            .await
            .map_err(|e| io::Error::other(format!("select {mailbox}: {e}")))
    }

    /// The UIDs of `mailbox`, ascending.
    pub async fn uids(&mut self, mailbox: &str) -> io::Result<Vec<u32>> {
        self.select(mailbox).await?;
        let mut uids: Vec<u32> = self
            .session
            .uid_search("ALL")
            .await
            .map_err(|e| io::Error::other(format!("uid search: {e}")))?
            .into_iter()
            .collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// The flags of one message of the selected mailbox, e.g. `["\\Seen"]`.
    pub async fn flags(&mut self, mailbox: &str, uid: u32) -> io::Result<Vec<String>> {
        use futures::TryStreamExt;
        self.select(mailbox).await?;
        let fetches: Vec<_> = self
            .session
            .uid_fetch(uid.to_string(), "FLAGS")
            .await
            .map_err(|e| io::Error::other(format!("uid fetch: {e}")))?
            .try_collect()
            .await
            .map_err(|e| io::Error::other(format!("uid fetch: {e}")))?;
        let fetch = fetches
            .first()
            .ok_or_else(|| io::Error::other(format!("no message {uid} in {mailbox}")))?;
        Ok(fetch.flags().map(|f| format!("{f:?}")).collect())
    }

    /// Sets or clears `\Seen` on one UID of `mailbox`.
    pub async fn set_seen(&mut self, mailbox: &str, uid: u32, seen: bool) -> io::Result<()> {
        self.select(mailbox).await?;
        let op = if seen { "+FLAGS" } else { "-FLAGS" };
        self.command(&format!("UID STORE {uid} {op}.SILENT (\\Seen)"))
            .await
    }

    /// Expunges UIDs of `mailbox` for good.
    pub async fn expunge(&mut self, mailbox: &str, uids: &str) -> io::Result<()> {
        self.select(mailbox).await?;
        self.command(&format!("UID STORE {uids} +FLAGS.SILENT (\\Deleted)"))
            .await?;
        self.command(&format!("UID EXPUNGE {uids}")).await
    }

    /// Creates a mailbox.
    pub async fn create(&mut self, mailbox: &str) -> io::Result<()> {
        self.command(&format!("CREATE {}", Admin::mailbox(mailbox)))
            .await
    }

    /// Deletes a mailbox (after unselecting it).
    pub async fn delete(&mut self, mailbox: &str) -> io::Result<()> {
        let _ = self.session.run_command_and_check_ok("UNSELECT").await;
        self.command(&format!("DELETE {}", Admin::mailbox(mailbox)))
            .await
    }

    /// Logs out.
    pub async fn logout(mut self) -> io::Result<()> {
        self.session
            .logout()
            .await
            .map_err(|e| io::Error::other(format!("logout: {e}")))
    }
}

fn greets(port: u16) -> bool {
    use std::io::Read;
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 64];
    matches!(stream.read(&mut buf), Ok(n) if n > 4 && buf.starts_with(b"* OK"))
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

fn nobody_ids() -> io::Result<(u32, u32)> {
    let field = |file: &str, name: &str| -> io::Result<u32> {
        let text = std::fs::read_to_string(file)?;
        text.lines()
            .find_map(|l| {
                let mut f = l.split(':');
                (f.next() == Some(name)).then(|| f.nth(1)?.parse().ok())?
            })
            .ok_or_else(|| io::Error::other(format!("no {name} in {file}")))
    };
    Ok((
        field("/etc/passwd", "nobody")?,
        field("/etc/group", "nogroup").or_else(|_| field("/etc/group", "nobody"))?,
    ))
}

fn write_certificates(root: &Path) -> io::Result<()> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let err = |e: rcgen::Error| io::Error::other(format!("cannot make test certificates: {e}"));
    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Mailroom test CA");
    let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
    let key = KeyPair::generate().map_err(err)?;
    let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .map_err(err)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &ca_cert, &ca_key).map_err(err)?;
    std::fs::write(root.join("ca.pem"), ca_cert.pem())?;
    std::fs::write(root.join("cert.pem"), cert.pem())?;
    std::fs::write(root.join("key.pem"), key.serialize_pem())?;
    Ok(())
}

fn render_config(root: &Path, imap_port: u16, imaps_port: u16, config: &DovecotConfig) -> String {
    let r = root.display();
    let mut conf = format!(
        r#"# Generated by mailroom_imap::testing::Dovecot
base_dir = {r}/run
state_dir = {r}/state
log_path = {r}/dovecot.log
info_log_path = {r}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{r}/cert.pem
ssl_key = <{r}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2 oauthbearer
auth_failure_delay = 0
mail_uid = nobody
mail_gid = nogroup
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:~/Maildir
mail_max_userip_connections = 1000
imap_hibernate_timeout = 0
# The default, plus the negotiated TLS version and cipher (benchmarks compare clients).
login_log_format_elements = user=<%u> method=%m rip=%r lip=%l mpid=%e %c session=<%{{session}}> tls=<%{{ssl_security}}>
# IDLE tests: changes made by other sessions are noticed within a second even when
# inotify does not tell.
mailbox_idle_check_interval = 1 secs
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
passdb {{
  driver = static
  mechanisms = plain login
  args = password={password}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={r}/mail/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    auto = create
    special_use = \Sent
  }}
  mailbox Entwürfe {{
    auto = create
    special_use = \Drafts
  }}
  mailbox Trash {{
    auto = create
    special_use = \Trash
  }}
  mailbox Junk {{
    auto = create
    special_use = \Junk
  }}
  mailbox Archive {{
    auto = create
    special_use = \Archive
  }}
}}
"#,
        password = Dovecot::PASSWORD,
    );
    if config.oauth2_introspection_url.is_some() {
        let _ = write!(
            conf,
            "passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {r}/oauth2.conf\n}}\n"
        );
    }
    if !config.without_capabilities.is_empty() {
        let caps: Vec<&str> = DEFAULT_CAPABILITIES
            .iter()
            .copied()
            .filter(|c| {
                !config
                    .without_capabilities
                    .iter()
                    .any(|w| w.eq_ignore_ascii_case(c))
            })
            .collect();
        let _ = writeln!(conf, "imap_capability = {}", caps.join(" "));
    }
    conf
}

const SENTENCES: &[&str] = &[
    "Please find the quarterly figures attached, as discussed in Monday's meeting.",
    "Merci pour votre retour rapide, je vous envoie la version corrigée demain.",
    "Könnten Sie bitte die Rechnung Nr. 4711 noch einmal prüfen?",
    "会議の資料を添付しましたので、ご確認ください。",
    "The deployment window moved to Thursday 22:00 UTC; rollback plan unchanged.",
    "Let me know if the new onboarding checklist works for your team.",
    "¿Podemos mover la llamada al viernes por la mañana?",
    "Reminder: expense reports are due by the end of the month.",
];

/// The `i`-th message of a realistic corpus (the benchmark's): a short multilingual
/// text in multipart/alternative with its HTML, encoded-word subjects, and one message
/// in ten with a ~40 KB base64 PDF. About 15 KB on average.
pub fn sample_message(i: usize) -> Vec<u8> {
    let mut body = String::new();
    let lines = 8 + (i * 7919) % 60;
    for l in 0..lines {
        body.push_str(SENTENCES[(i + l * 3) % SENTENCES.len()]);
        body.push_str("\r\n");
        if l % 5 == 4 {
            body.push_str("\r\n");
        }
    }
    let subject = match i % 4 {
        0 => format!("Quarterly report #{i}"),
        1 => format!(
            "=?UTF-8?B?{}?=",
            b64(format!("Résumé n°{i} — à relire").as_bytes())
        ),
        2 => format!("Re: Invoice {i}"),
        _ => format!("=?ISO-8859-1?Q?R=E9union_{i}?="),
    };
    let header = format!(
        "From: Sender {n} <sender{n}@example.com>\r\nTo: Bob <bob@example.test>\r\n\
         Cc: team{m}@example.test\r\nSubject: {subject}\r\n\
         Date: Mon, 20 Jan 2025 {h:02}:{min:02}:00 +0100\r\nMessage-ID: <bench-{i}@example.com>\r\n\
         MIME-Version: 1.0\r\n",
        n = i % 97,
        m = i % 7,
        h = i % 24,
        min = i % 60,
    );
    let html = format!(
        "<html><body><p>{}</p></body></html>",
        body.replace("\r\n", "<br>")
    );
    let mut out = header;
    if i.is_multiple_of(10) {
        // One in ten carries a PDF-sized attachment (~40 KB).
        let pdf: Vec<u8> = (0..30_000u32).map(|k| (k * 31 + i as u32) as u8).collect();
        out.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n--b{i}\r\n\
             Content-Type: application/pdf; name=\"report-{i}.pdf\"\r\n\
             Content-Disposition: attachment; filename=\"report-{i}.pdf\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b{i}--\r\n",
            wrap(&b64(&pdf))
        ));
    } else {
        out.push_str(&format!(
            "Content-Type: multipart/alternative; boundary=\"a{i}\"\r\n\r\n--a{i}\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n--a{i}\r\n\
             Content-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--a{i}--\r\n"
        ));
    }
    out.into_bytes()
}

/// Base64 without line breaks.
pub fn b64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len() * 4 / 3 + 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for k in 0..4 {
            if k <= c.len() {
                s.push(T[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// Wraps base64 at 76 characters with CRLF.
pub fn wrap(s: &str) -> String {
    s.as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect::<Vec<_>>()
        .join("\r\n")
}
