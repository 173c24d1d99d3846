//! Sign a user in with the device code flow, get tokens silently afterwards, and redeem
//! the refresh token by hand — as a public client, or as a confidential client when a
//! client secret is given. Nothing but `mailroom-oauth` and tokio.
//!
//! Against the simulator (it approves the sign-in by itself on the second poll):
//!
//! ```sh
//! cargo run -p mailroom-sim -- --port 8917 --device-code-interval 1 \
//!     --access-token-lifetime 60 --confidential-client service-app=s3cret &
//! MAILROOM_AUTHORITY_URL=http://127.0.0.1:8917 cargo run -p mailroom-oauth --example device_code_and_refresh
//! MAILROOM_AUTHORITY_URL=http://127.0.0.1:8917 MAILROOM_CLIENT_ID=service-app MAILROOM_CLIENT_SECRET=s3cret \
//!     cargo run -p mailroom-oauth --example device_code_and_refresh
//! ```
//!
//! Against Microsoft, leave `MAILROOM_AUTHORITY_URL` unset and set `MAILROOM_CLIENT_ID`
//! (and `MAILROOM_CLIENT_SECRET` for a confidential client) to your app registration.

use mailroom_oauth::{
    Authority, ClientApplication, ClientSecret, ConfidentialClientApplication, DEFAULT_CLOUD,
    PublicClientApplication, Resource, Tenant, TokenSession,
};

/// What one run saw.
#[derive(Debug)]
pub struct Summary {
    /// True when the application holds a client secret.
    pub confidential: bool,
    /// The tenant the stored credentials name.
    pub tenant_id: String,
    /// True when the session refreshed the access token by itself (it was inside the
    /// 5-minute window before its expiry).
    pub silently_refreshed: bool,
    /// True when redeeming the refresh token by hand rotated it.
    pub rotated: bool,
}

/// The walk, against the identity platform at `authority_url`.
pub async fn run(
    authority_url: &str,
    client_id: &str,
    client_secret: Option<&str>,
) -> Result<Summary, Box<dyn std::error::Error>> {
    let authority = Authority::new(authority_url, Tenant::Common)?;
    // A public client (CLI, desktop) holds no secret; a service holds one.
    let app: ClientApplication = match client_secret {
        None => PublicClientApplication::builder(client_id)
            .authority(authority)
            .build()?
            .into(),
        Some(secret) => {
            ConfidentialClientApplication::builder(client_id, ClientSecret::new(secret))
                .authority(authority)
                .build()?
                .into()
        }
    };

    // 1. Device code flow: show the message, wait until the user has signed in.
    let flow = app
        .start_device_flow(Resource::Graph.default_scopes())
        .await?;
    println!("{}", flow.message);
    let signed_in = app
        .wait_for_device_flow(&flow, std::future::pending())
        .await?;
    println!("token valid until {}", signed_in.expires_at());
    let credentials = signed_in.into_credentials(); // encrypt and store these

    // 2. Silent: a session hands out the cached token, and refreshes it (once, however
    //    many tasks ask at the same time) when it is within 5 minutes of its expiry.
    let session = TokenSession::new(app.clone(), credentials, Resource::Graph);
    let _token = session.access_token().await?; // `Authorization: Bearer {_token.secret()}`
    let silently_refreshed = match session.take_refreshed() {
        Some(_rotated) => {
            // … store `_rotated` at once: the old refresh token is spent
            true
        }
        None => false,
    };

    // 3. By hand: redeem the refresh token; the answer carries its replacement.
    let credentials = session.credentials();
    let old = credentials
        .refresh_token
        .as_ref()
        .ok_or("the sign-in returned no refresh token")?;
    let answer = app
        .acquire_token_by_refresh_token(old, Resource::Graph.default_scopes())
        .await?;
    let rotated = answer
        .refresh_token()
        .is_some_and(|new| new.secret() != old.secret());
    Ok(Summary {
        confidential: app.is_confidential(),
        tenant_id: credentials.tenant_id.clone(),
        silently_refreshed,
        rotated,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let authority = var("MAILROOM_AUTHORITY_URL").unwrap_or_else(|| DEFAULT_CLOUD.to_owned());
    let client_id = var("MAILROOM_CLIENT_ID").unwrap_or_else(|| "mailroom-example".to_owned());
    let secret = var("MAILROOM_CLIENT_SECRET");
    let summary = run(&authority, &client_id, secret.as_deref()).await?;
    println!("{summary:#?}");
    Ok(())
}
