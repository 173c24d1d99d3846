//! The device code flow as operators see it: the URL and code, a spinner, Ctrl-C.

use std::io::BufRead as _;
use std::time::Duration;

use anyhow::{Context as _, Result};
use chrono::Utc;
use indicatif::{ProgressBar, ProgressStyle};
use mailroom_core::{ClientSecret, OAuthCredentials};
use mailroom_oauth::{Authority, ClientApplication, ErrorKind, Resource, Tenant};

use crate::context::Ctx;
use crate::exit::{Code, Failure};
use crate::output;

/// Who signs in where.
#[derive(Debug)]
pub struct SignIn {
    /// Application (client) id.
    pub client_id: String,
    /// Tenant.
    pub tenant: Tenant,
    /// Client secret of a confidential client.
    pub client_secret: Option<ClientSecret>,
    /// Graph or Outlook IMAP.
    pub resource: Resource,
}

/// The client id from `--client-id` / `MAILROOM_CLIENT_ID`, or a clear error.
pub fn client_id(ctx: &Ctx) -> Result<String> {
    ctx.global
        .client_id
        .clone()
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| {
            Failure::err(
                Code::Usage,
                "no client id: pass --client-id or set MAILROOM_CLIENT_ID to the application (client) id of your Entra app registration (a public client with \"Allow public client flows\" on)",
            )
        })
}

/// Parses `--tenant`.
pub fn tenant(text: &str) -> Result<Tenant> {
    text.parse::<Tenant>()
        .map_err(|e| Failure::err(Code::Usage, format!("invalid --tenant {text:?}: {e}")))
}

/// Reads one secret line from stdin (never echoed, never printed).
pub fn read_secret_line(what: &str) -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .with_context(|| format!("cannot read the {what} from stdin"))?;
    let value = line.trim_end_matches(['\r', '\n']).to_owned();
    if value.is_empty() {
        return Err(Failure::err(
            Code::Usage,
            format!("no {what} on stdin: pipe it in, e.g. `… < secret-file`"),
        ));
    }
    Ok(value)
}

/// Runs the device code flow and returns the new credentials.
pub async fn device_flow(ctx: &Ctx, email: &str, sign_in: SignIn) -> Result<OAuthCredentials> {
    let mut template = OAuthCredentials::new(sign_in.client_id.clone());
    template.tenant_id = sign_in.tenant.to_string();
    template.client_secret = sign_in.client_secret;
    // Check the authority URL first: a plain-words error beats a connection error.
    Authority::new(&ctx.global.authority_url, sign_in.tenant.clone()).map_err(|e| {
        Failure::err(
            Code::Usage,
            format!("invalid authority URL (MAILROOM_AUTHORITY_URL / --authority-url): {e}"),
        )
    })?;
    let app = ClientApplication::builder_from_credentials(&template, &ctx.global.authority_url)
        .and_then(|b| b.http_client(ctx.http().clone()).build())
        .context("cannot set up the sign-in")?;
    let flow = app
        .start_device_flow(sign_in.resource.default_scopes())
        .await
        .with_context(|| {
            format!(
                "cannot start the sign-in at {} — check the client id, the tenant and the network",
                ctx.global.authority_url
            )
        })?;

    let minutes = (flow.expires_at - Utc::now()).num_minutes().max(0);
    eprintln!();
    eprintln!("  Sign in as {email}:");
    eprintln!();
    eprintln!("    1. open   {}", flow.verification_uri);
    eprintln!("    2. enter  {}", flow.user_code);
    eprintln!();
    eprintln!("  {}", flow.message);
    eprintln!(
        "  The code expires at {} (in {minutes} min). Ctrl-C cancels.",
        output::time(flow.expires_at)
    );
    eprintln!();

    let spinner = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("  {spinner} {msg} ({elapsed})").expect("a valid template"),
    );
    spinner.set_message("waiting for the sign-in…");
    spinner.enable_steady_tick(Duration::from_millis(120));
    let cancel = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let result = app.wait_for_device_flow(&flow, cancel).await;
    spinner.finish_and_clear();
    match result {
        Ok(signed_in) => {
            eprintln!("  ✔ signed in");
            Ok(signed_in.into_credentials())
        }
        Err(e) => {
            let advice = match e.kind() {
                ErrorKind::Cancelled => {
                    return Err(Failure::err(
                        Code::Failure,
                        "sign-in cancelled; nothing was stored",
                    ));
                }
                ErrorKind::Declined => "the sign-in was declined; run the command again and accept",
                ErrorKind::Expired => {
                    "the code expired before the sign-in finished; run the command again and sign in within the time shown"
                }
                ErrorKind::InvalidConfig => {
                    "check the client id (--client-id / MAILROOM_CLIENT_ID), the tenant, and that the app registration allows public client flows"
                }
                _ => "nothing was stored; try again",
            };
            let message = format!("sign-in failed for {email}: {e} — {advice}");
            Err(anyhow::Error::new(e).context(message))
        }
    }
}
