//! Small text helpers shared by the parsers, the server and the output code: excerpts of
//! untrusted input, and human units (`units`).

pub mod units;

/// At most `max` characters of untrusted text (a bad nettop line, a client's header), with `…`
/// when cut, for a log line or an error message.
pub fn excerpt(text: &str, max: usize) -> String {
    let mut out: String = text.chars().take(max).collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::excerpt;

    #[test]
    fn excerpts_cut_on_characters_and_say_so() {
        assert_eq!(excerpt("abc", 3), "abc");
        assert_eq!(excerpt("abcd", 3), "abc…");
        assert_eq!(excerpt("ééé€", 2), "éé…");
        assert_eq!(excerpt("", 5), "");
    }
}
