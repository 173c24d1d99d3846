//! The `mailroom-sim` binary (flags come with the Graph part).

fn main() {
    eprintln!("mailroom-sim: the binary is not wired yet; use the library");
}
