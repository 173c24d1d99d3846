//! What the IMAP session counts, through the [`metrics`] facade (no-ops unless the
//! program installed a recorder):
//! `mailroom_imap_commands_total{command, result}`, by command class (a fixed set,
//! see [`command_class`]) and result (`ok`, `no`, `bad`, `error`).

use crate::session::{Done, Failure};

/// The class of a command line: its verb (after `UID`), from a fixed set.
pub(crate) fn command_class(command: &str) -> &'static str {
    let mut words = command.split_ascii_whitespace();
    let mut verb = words.next().unwrap_or("");
    if verb.eq_ignore_ascii_case("UID") {
        verb = words.next().unwrap_or("");
    }
    const KNOWN: [&str; 16] = [
        "select",
        "examine",
        "fetch",
        "search",
        "store",
        "copy",
        "move",
        "expunge",
        "list",
        "status",
        "noop",
        "idle",
        "logout",
        "enable",
        "capability",
        "append",
    ];
    KNOWN
        .iter()
        .find(|k| verb.eq_ignore_ascii_case(k))
        .copied()
        .unwrap_or("other")
}

/// One command ended.
pub(crate) fn command(command: &str, result: &Result<Done, Failure>) {
    let result = match result {
        Ok(_) => "ok",
        Err(Failure::No(_)) => "no",
        Err(Failure::Bad(_)) => "bad",
        Err(_) => "error",
    };
    metrics::counter!("mailroom_imap_commands_total", "command" => command_class(command), "result" => result)
        .increment(1);
}

#[cfg(test)]
mod tests {
    use super::command_class;

    #[test]
    fn command_classes() {
        assert_eq!(command_class("UID FETCH 1:* (FLAGS)"), "fetch");
        assert_eq!(command_class("select \"INBOX\""), "select");
        assert_eq!(command_class("UID MOVE 4 \"Archive\""), "move");
        assert_eq!(command_class("XYZZY"), "other");
        assert_eq!(command_class(""), "other");
    }
}
