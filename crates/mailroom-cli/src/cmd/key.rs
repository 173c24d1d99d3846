//! `mailroom key generate|rotate`.

use anyhow::Result;
use mailroom_store::SealedCredentials;
use mailroom_vault::{FernetKey, Vault};
use serde_json::json;

use crate::cli::{GenerateArgs, KeyCommand, RotateArgs};
use crate::context::{Ctx, KeyOrigin, create_key_file};
use crate::exit::{Code, Failure};
use crate::output;

pub async fn run(ctx: &Ctx, command: KeyCommand) -> Result<()> {
    match command {
        KeyCommand::Generate(args) => generate(ctx, args),
        KeyCommand::Rotate(args) => rotate(ctx, args).await,
    }
}

fn generate(ctx: &Ctx, args: GenerateArgs) -> Result<()> {
    if !args.write {
        let key = FernetKey::generate();
        if ctx.json() {
            return output::json(&json!({"key": key.secret()}));
        }
        println!("{}", key.secret());
        return Ok(());
    }
    let Some(path) = &ctx.key_file else {
        return Err(Failure::err(
            Code::Usage,
            "--write writes the key file, but MAILROOM_KEY / --key is set: unset it, or keep the printed key there instead",
        ));
    };
    if path.exists() {
        return Err(Failure::err(
            Code::Failure,
            format!(
                "{} exists; not overwriting a key (to add a new key and re-encrypt, use `mailroom key rotate`)",
                path.display()
            ),
        ));
    }
    create_key_file(path)?;
    if ctx.json() {
        return output::json(&json!({"key_file": path}));
    }
    println!("{}", path.display());
    Ok(())
}

/// Which accounts do not decrypt with `vault`.
async fn undecryptable(ctx: &Ctx, vault: &Vault) -> Result<Vec<String>> {
    Ok(ctx
        .store()
        .await?
        .list_accounts()
        .await?
        .into_iter()
        .filter(|a| vault.decrypt(a.credentials.as_str()).is_err())
        .map(|a| a.email)
        .collect())
}

async fn rotate(ctx: &Ctx, args: RotateArgs) -> Result<()> {
    let keys = ctx.load_keys()?;
    let store = ctx.store().await?;
    let file = match &keys.origin {
        KeyOrigin::File(path) => Some(path.clone()),
        KeyOrigin::Env if args.reseal_only => None,
        KeyOrigin::Env => {
            return Err(Failure::err(
                Code::Usage,
                "the keys come from MAILROOM_KEY, which mailroom cannot write: put a new key (`mailroom key generate`) first in MAILROOM_KEY, keep the old ones after it, then run `mailroom key rotate --reseal-only`",
            ));
        }
    };
    // Every account must decrypt before anything changes.
    let current = Vault::new(keys.keys.clone())?;
    let broken = undecryptable(ctx, &current).await?;
    if !broken.is_empty() {
        return Err(Failure::err(
            Code::Failure,
            format!(
                "not rotating: the credentials of {} do not decrypt with the {} configured key(s) ({}) — fix the keys first, or remove those accounts",
                broken.join(", "),
                keys.keys.len(),
                keys.origin
            ),
        ));
    }
    let mut all = keys.keys.clone();
    if !args.reseal_only {
        all.insert(0, FernetKey::generate());
        let path = file.as_ref().expect("a key file unless --reseal-only");
        // The new key goes first, the old ones stay: whatever happens next, every row
        // still decrypts.
        mailroom_vault::write_key_file(path, &all)
            .map_err(|e| Failure::err(Code::Failure, format!("cannot update the key file: {e}")))?;
    }
    let vault = Vault::new(all.clone())?;
    let resealed = store
        .reseal_all_credentials(|sealed| {
            let token = vault
                .rotate(sealed.as_str())
                .map_err(|e| mailroom_store::Error::Invalid(format!("cannot re-encrypt: {e}")))?;
            SealedCredentials::new(token)
        })
        .await?;
    let mut dropped = 0;
    if args.drop_old && all.len() > 1 {
        let first = Vault::new(vec![all[0].clone()])?;
        let broken = undecryptable(ctx, &first).await?;
        if !broken.is_empty() {
            return Err(Failure::err(
                Code::Failure,
                format!(
                    "re-encrypted {resealed} account(s), but kept the older keys: {} still need them (a worker running with the old keys may have written them; stop it and rotate again)",
                    broken.join(", ")
                ),
            ));
        }
        match &file {
            Some(path) => {
                mailroom_vault::write_key_file(path, &all[..1]).map_err(|e| {
                    Failure::err(Code::Failure, format!("cannot update the key file: {e}"))
                })?;
                dropped = all.len() - 1;
            }
            None => eprintln!(
                "mailroom: every account decrypts with the first key: remove the older keys from MAILROOM_KEY"
            ),
        }
    }
    let kept = all.len() - dropped;
    if ctx.json() {
        return output::json(&json!({
            "resealed": resealed,
            "new_key": !args.reseal_only,
            "keys": kept,
            "dropped": dropped,
            "key_file": file,
        }));
    }
    let place = file
        .as_ref()
        .map_or_else(|| "MAILROOM_KEY".to_owned(), |p| p.display().to_string());
    if args.reseal_only {
        println!("re-encrypted {resealed} account(s) with the first key of {place}");
    } else {
        println!("added a new key to {place} and re-encrypted {resealed} account(s) with it");
    }
    if dropped > 0 {
        println!("dropped {dropped} older key(s); {place} now holds 1 key");
    } else if kept > 1 {
        println!(
            "{place} holds {kept} keys (newest first); drop the older ones with `mailroom key rotate --reseal-only --drop-old` once no worker uses them"
        );
    }
    Ok(())
}
