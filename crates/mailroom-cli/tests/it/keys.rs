use std::os::unix::fs::PermissionsExt as _;

use crate::support::{DEMO, Env};

fn key_lines(env: &Env) -> Vec<String> {
    std::fs::read_to_string(env.key_file())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_keeps_every_account_readable_and_drop_old_retires_the_old_key() {
    let env = Env::new(10).await;
    env.add_demo();
    env.expect(0, &["sync"]);
    let old = key_lines(&env);
    assert_eq!(old.len(), 1);

    // A new key first, the old one kept, every account re-encrypted.
    let (stdout, _) = env.expect(0, &["key", "rotate"]);
    assert!(stdout.contains("re-encrypted 1 account(s)"), "{stdout}");
    let rotated = key_lines(&env);
    assert_eq!(rotated.len(), 2);
    assert_eq!(rotated[1], old[0]);
    assert_eq!(crate::support::mode(&env.key_file()), 0o600);
    env.expect(0, &["sync"]);
    let doctor = env.json(&["doctor"]);
    assert_eq!(doctor["ok"], true, "{doctor}");

    // Rotate again and drop the older keys: only the newest remains, and it alone
    // reads every account; the original key alone no longer does.
    let report = env.json(&["key", "rotate", "--drop-old"]);
    assert_eq!(report["dropped"], 2, "{report}");
    let now = key_lines(&env);
    assert_eq!(now.len(), 1);
    assert!(!rotated.contains(&now[0]));
    env.expect(0, &["folders"]);
    let mut cmd = env.cmd(&["folders"]);
    cmd.env("MAILROOM_KEY", &old[0]);
    let (_, stderr) = env.expect_cmd(1, cmd, "folders with the retired key");
    assert!(
        stderr.contains("cannot decrypt the credentials of demo@mailroom.test: none of the 1 configured key(s) matches"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn generate_prints_a_key_and_write_never_overwrites() {
    let env = Env::new(1).await;
    let (stdout, _) = env.expect(0, &["key", "generate"]);
    let key = stdout.trim();
    assert_eq!(key.len(), 44, "{key}");
    // It is a usable key.
    let mut cmd = env.cmd(&["account", "list"]);
    cmd.env("MAILROOM_KEY", key);
    env.expect_cmd(0, cmd, "list with a generated key");

    let (stdout, _) = env.expect(0, &["key", "generate", "--write"]);
    assert_eq!(stdout.trim(), env.key_file().display().to_string());
    assert!(
        !stdout.contains(&key_lines(&env)[0]),
        "--write does not print the key"
    );
    let before = key_lines(&env);
    let (_, stderr) = env.expect(1, &["key", "generate", "--write"]);
    assert!(stderr.contains("not overwriting"), "{stderr}");
    assert_eq!(key_lines(&env), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_file_others_can_read_is_refused() {
    let env = Env::new(1).await;
    env.add_demo();
    std::fs::set_permissions(env.key_file(), std::fs::Permissions::from_mode(0o644)).unwrap();
    for args in [&["folders"][..], &["sync"], &["key", "rotate"]] {
        let (_, stderr) = env.expect(1, args);
        assert!(
            stderr.contains(&format!("chmod 600 {}", env.key_file().display())),
            "{args:?}: {stderr}"
        );
    }
    // Listing accounts needs no key.
    env.expect(0, &["account", "list"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_key_is_named_plainly() {
    let env = Env::new(3).await;
    env.add_demo();
    env.expect(0, &["sync"]);
    let (other, _) = env.expect(0, &["key", "generate"]);
    for args in [
        &["folders"][..],
        &["sync"],
        &["messages", "show", "1", "--raw"],
    ] {
        let mut cmd = env.cmd(args);
        cmd.env("MAILROOM_KEY", other.trim());
        let (_, stderr) = env.expect_cmd(1, cmd, &format!("{args:?} with a wrong key"));
        assert!(
            stderr.contains(&format!(
                "cannot decrypt the credentials of {DEMO}: none of the 1 configured key(s) matches"
            )) && stderr.contains("check MAILROOM_KEY / MAILROOM_KEY_FILE"),
            "{args:?}: {stderr}"
        );
    }
    // No key at all when accounts exist: no new key file is made up.
    std::fs::remove_file(env.key_file()).unwrap();
    let (_, stderr) = env.expect(1, &["sync"]);
    assert!(stderr.contains("no key configured"), "{stderr}");
    assert!(!env.key_file().exists());
}
