//! Plain text from an HTML body, for previews when Graph sends HTML although text
//! was preferred. Good enough for a preview, not a renderer.

/// The visible text of `html`: `<head>`, `<style>` and `<script>` dropped, a line
/// break after block elements and `<br>`, other tags removed, the usual entities
/// decoded. Stops once `max_chars` characters are out (a preview needs no more).
pub fn html_to_text(html: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(html.len().min(max_chars * 2));
    let mut chars = 0usize;
    let lower_starts = |s: &str, prefix: &str| {
        s.len() >= prefix.len()
            && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
    };
    let mut rest = html;
    while !rest.is_empty() && chars < max_chars {
        if rest.starts_with('<') {
            let end = rest.find('>').map_or(rest.len(), |e| e + 1);
            let tag = &rest[..end];
            rest = &rest[end..];
            let skip_to = ["head", "style", "script", "title"]
                .into_iter()
                .find(|name| {
                    lower_starts(tag, &format!("<{name}"))
                        && tag[1 + name.len()..]
                            .chars()
                            .next()
                            .is_some_and(|c| c == '>' || c == '/' || c.is_whitespace())
                });
            if let Some(name) = skip_to {
                let close = format!("</{name}");
                let lower = rest.to_ascii_lowercase();
                rest = match lower.find(&close) {
                    Some(i) => {
                        let after = &rest[i..];
                        &after[after.find('>').map_or(after.len(), |e| e + 1)..]
                    }
                    None => "",
                };
                continue;
            }
            let block = [
                "<br",
                "</p",
                "</div",
                "</li",
                "</tr",
                "</h1",
                "</h2",
                "</h3",
                "</h4",
                "</h5",
                "</h6",
                "</blockquote",
                "</table",
            ]
            .iter()
            .any(|t| lower_starts(tag, t));
            if block {
                out.push('\n');
                chars += 1;
            }
            continue;
        }
        let next = rest.find('<').unwrap_or(rest.len());
        let (text, after) = rest.split_at(next);
        rest = after;
        let mut t = text;
        while !t.is_empty() && chars < max_chars {
            let mut cut = t.find(['&', '\r', '\n']).unwrap_or(t.len());
            if let Some((i, _)) = t[..cut].char_indices().nth(max_chars - chars) {
                cut = i;
            }
            out.push_str(&t[..cut]);
            chars += t[..cut].chars().count();
            t = &t[cut..];
            if chars >= max_chars {
                break;
            }
            if t.starts_with(['\r', '\n']) {
                // Source line breaks are not visible in HTML: they separate words.
                if !out.ends_with([' ', '\n']) && !out.is_empty() {
                    out.push(' ');
                    chars += 1;
                }
                t = &t[1..];
            } else if t.starts_with('&') {
                let (decoded, len) = entity(t);
                out.push(decoded);
                chars += 1;
                t = &t[len..];
            }
        }
    }
    out
}

/// Decodes the entity at the start of `s` (which starts with `&`): the character and
/// the length consumed. An unknown entity is a literal `&`.
fn entity(s: &str) -> (char, usize) {
    let Some(end) = s[1..].find(';').map(|e| e + 1).filter(|&e| e <= 10) else {
        return ('&', 1);
    };
    let name = &s[1..end];
    let c = match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" | "#39" => Some('\''),
        "nbsp" => Some(' '),
        _ => name
            .strip_prefix("#x")
            .or_else(|| name.strip_prefix("#X"))
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
            .and_then(char::from_u32),
    };
    match c {
        Some(c) => (c, end + 1),
        None => ('&', 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(html: &str, expected: &str) {
        assert_eq!(html_to_text(html, 2000), expected, "{html}");
    }

    #[test]
    fn text_of_html() {
        check(
            "<html><head><meta charset=\"utf-8\"><style>p{margin:0}</style></head><body><p>Hello &amp; welcome</p><p>Second<br>line &lt;x&gt; &#233;&#x263A;</p></body></html>",
            "Hello & welcome\nSecond\nline <x> é☺\n",
        );
        check("<div>a\r\nb</div>", "a b\n");
        check("AT&T &unknown; x", "AT&T &unknown; x");
        check("<script type=x>alert(1)</script>ok", "ok");
        check("<p>unclosed <b", "unclosed ");
    }

    #[test]
    fn stops_early() {
        let html = "<p>".to_owned() + &"é".repeat(10_000) + "</p>";
        let text = html_to_text(&html, 2000);
        assert_eq!(text.chars().count(), 2000);
    }
}
