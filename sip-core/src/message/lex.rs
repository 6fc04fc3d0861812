//! Character classes and small scanners for the RFC 3261 §25 grammar.
//!
//! Everything here works on `&str` slices and never allocates unless it has to undo an escape
//! or a line fold.

use std::borrow::Cow;

/// `token` characters (RFC 3261 §25.1): alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" /
/// "`" / "'" / "~".
pub(crate) const fn is_token_char(b: u8) -> bool {
    matches!(b,
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9'
        | b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~')
}

/// `word` characters (RFC 3261 §25.1), used by Call-ID: token chars plus separators.
pub(crate) const fn is_word_char(b: u8) -> bool {
    is_token_char(b)
        || matches!(
            b,
            b'(' | b')'
                | b'<'
                | b'>'
                | b':'
                | b'\\'
                | b'"'
                | b'/'
                | b'['
                | b']'
                | b'?'
                | b'{'
                | b'}'
        )
}

/// `unreserved` (RFC 3261 §25.1): alphanum / mark.
pub(crate) const fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        )
}

/// Character classes of [`CLASSES`], one bit each.
pub(crate) mod class {
    /// `token` (RFC 3261 §25.1).
    pub(crate) const TOKEN: u8 = 1;
    /// `word` (RFC 3261 §25.1, Call-ID).
    pub(crate) const WORD: u8 = 1 << 1;
    /// The characters of a SIP URI's user part (unreserved, escaped, user-unreserved).
    pub(crate) const USER: u8 = 1 << 2;
    /// The characters of a SIP URI's password.
    pub(crate) const PASSWORD: u8 = 1 << 3;
    /// `paramchar` of a SIP URI parameter (param-unreserved, unreserved, escaped).
    pub(crate) const PARAM: u8 = 1 << 4;
    /// `hnv-unreserved`, unreserved, escaped: a SIP URI header name or value.
    pub(crate) const HEADER: u8 = 1 << 5;
    /// Letters, digits, `-`, `.` and `_`: what a host name is made of.
    pub(crate) const HOST: u8 = 1 << 6;
    /// A header parameter's token value, or a host in one (`token` / `[` / `]` / `:`).
    pub(crate) const PARAM_VALUE: u8 = 1 << 7;
}

const fn classes_of(b: u8) -> u8 {
    let mut c = 0;
    if is_token_char(b) {
        c |= class::TOKEN;
    }
    if is_word_char(b) {
        c |= class::WORD;
    }
    if is_unreserved(b)
        || matches!(
            b,
            b'%' | b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/'
        )
    {
        c |= class::USER;
    }
    if is_unreserved(b) || matches!(b, b'%' | b'&' | b'=' | b'+' | b'$' | b',') {
        c |= class::PASSWORD;
    }
    if is_unreserved(b) || matches!(b, b'%' | b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$') {
        c |= class::PARAM;
    }
    if is_unreserved(b) || matches!(b, b'%' | b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$') {
        c |= class::HEADER;
    }
    if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_') {
        c |= class::HOST;
    }
    if is_token_char(b) || matches!(b, b'[' | b']' | b':') {
        c |= class::PARAM_VALUE;
    }
    c
}

/// The [`class`] bits of every byte: one table lookup instead of a chain of comparisons.
pub(crate) static CLASSES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = classes_of(i as u8);
        i += 1;
    }
    t
};

/// True when `b` is in all of the classes of `mask` (one bit of [`class`], usually).
#[inline]
pub(crate) fn is(b: u8, mask: u8) -> bool {
    CLASSES[usize::from(b)] & mask == mask
}

/// True when every byte of `s` is in the class `mask`.
#[inline]
pub(crate) fn all_in(s: &[u8], mask: u8) -> bool {
    s.iter().all(|&b| is(b, mask))
}

/// True when `s` is a non-empty `token`.
#[inline]
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && all_in(s.as_bytes(), class::TOKEN)
}

/// True for SP and HTAB.
pub(crate) const fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// True for SP, HTAB, CR and LF.
#[inline]
const fn is_lws_byte(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Strips linear white space (SP, HTAB, and CR/LF of folds already in the value) at both ends.
#[inline]
pub(crate) fn trim_lws(s: &str) -> &str {
    let b = s.as_bytes();
    let mut start = 0;
    while start < b.len() && is_lws_byte(b[start]) {
        start += 1;
    }
    let mut end = b.len();
    while end > start && is_lws_byte(b[end - 1]) {
        end -= 1;
    }
    // Only ASCII bytes were skipped: both ends are character boundaries.
    s.get(start..end).unwrap_or_default()
}

/// `a.eq_ignore_ascii_case(b)` for short texts, in a loop that folds away when `b` is a
/// constant (a parameter or scheme name): a letter of `b` compares with its case bit
/// ignored, any other byte exactly.
#[inline(always)]
pub(crate) fn eq_ignore_case(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(&x, &y)| {
            if y.is_ascii_alphabetic() {
                x | 0x20 == y | 0x20
            } else {
                x == y
            }
        })
}

// Byte search in short texts (header values, URIs: tens of bytes). `memchr`'s vector code
// has a fixed cost per call (dispatch, setup) that dominates on such texts; these read eight
// bytes at a time in plain integer code instead ("SWAR": a byte equal to the needle becomes
// a zero byte, found with the `has-zero` bit trick).

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The eight bytes at `at`, little-endian.
#[inline(always)]
fn word(s: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&s[at..at + 8]);
    u64::from_le_bytes(w)
}

/// The bytes of `s` (shorter than eight) as the low bytes of a word, the others zero. Two
/// overlapping fixed-size reads instead of a copy of variable length (a call to `memcpy`).
#[inline(always)]
fn short_word(s: &[u8]) -> u64 {
    let n = s.len();
    debug_assert!(n < 8);
    if n >= 4 {
        let mut lo = [0u8; 4];
        let mut hi = [0u8; 4];
        lo.copy_from_slice(&s[..4]);
        hi.copy_from_slice(&s[n - 4..]);
        // The bytes both reads hold are the same: or-ing them keeps them.
        u64::from(u32::from_le_bytes(lo)) | u64::from(u32::from_le_bytes(hi)) << (8 * (n - 4))
    } else if n >= 2 {
        let lo = u16::from_le_bytes([s[0], s[1]]);
        let hi = u16::from_le_bytes([s[n - 2], s[n - 1]]);
        u64::from(lo) | u64::from(hi) << (8 * (n - 2))
    } else {
        s.first().map_or(0, |&b| u64::from(b))
    }
}

/// A word with the high bit set in each byte of `w` equal to `needle` (the lowest set bit
/// is exact; bits above it may be spurious).
#[inline(always)]
const fn eq_bytes(w: u64, needle: u8) -> u64 {
    let x = w ^ (ONES * needle as u64);
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// Index of the first byte of `s` that is one of `needles` (up to three; repeat one to
/// look for fewer).
#[inline(always)]
pub(crate) fn find3(s: &[u8], a: u8, b: u8, c: u8) -> Option<usize> {
    find3_with(s, a, b, c, |s| {
        let mut w = [0u8; 8];
        w[..s.len()].copy_from_slice(s);
        u64::from_le_bytes(w)
    })
}

/// [`find3`] for the typed header paths, which search many texts shorter than eight bytes
/// (a parameter, a name): such a text is read in fixed-size pieces rather than copied
/// (a copy of variable length is a call to `memcpy`). Kept apart from `find3` so that the
/// message index (`parse.rs`) keeps the code it was tuned with.
#[inline(always)]
pub(crate) fn find3_short(s: &[u8], a: u8, b: u8, c: u8) -> Option<usize> {
    find3_with(s, a, b, c, short_word)
}

/// [`find3`], with `short` reading a text shorter than eight bytes as the low bytes of a
/// word (the others zero).
#[inline(always)]
fn find3_with(s: &[u8], a: u8, b: u8, c: u8, short: impl Fn(&[u8]) -> u64) -> Option<usize> {
    let mut i = 0;
    while i + 8 <= s.len() {
        let w = word(s, i);
        let hits = eq_bytes(w, a) | eq_bytes(w, b) | eq_bytes(w, c);
        if hits != 0 {
            return Some(i + (hits.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    let n = s.len();
    if i == n {
        return None;
    }
    // The last bytes in one more word: read overlapping the bytes already searched (which
    // hold no needle, so the first hit is a new one), or zero-padded for a short text.
    let (w, base, valid) = if n >= 8 {
        (word(s, n - 8), n - 8, u64::MAX)
    } else {
        (short(s), 0, (1u64 << (8 * n)) - 1)
    };
    let hits = (eq_bytes(w, a) | eq_bytes(w, b) | eq_bytes(w, c)) & valid;
    (hits != 0).then(|| base + (hits.trailing_zeros() / 8) as usize)
}

/// Index of the first `needle` byte in `s`.
#[inline]
pub(crate) fn find(s: &[u8], needle: u8) -> Option<usize> {
    find3(s, needle, needle, needle)
}

/// The index of the first SP or HTAB in `s`.
#[inline]
pub(crate) fn find_wsp(s: &str) -> Option<usize> {
    find3_short(s.as_bytes(), b' ', b'\t', b'\t')
}

/// The index of the first `needle` byte (ASCII) in `s`.
#[inline]
pub(crate) fn find_byte(s: &str, needle: u8) -> Option<usize> {
    find3_short(s.as_bytes(), needle, needle, needle)
}

/// The pieces of a text between `sep` bytes, like `str::split` with one ASCII byte.
pub(crate) struct Pieces<'a> {
    rest: Option<&'a str>,
    sep: u8,
}

impl<'a> Pieces<'a> {
    /// Splits `s` at every `sep`.
    pub(crate) fn new(s: &'a str, sep: u8) -> Pieces<'a> {
        Pieces { rest: Some(s), sep }
    }
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        match find(s.as_bytes(), self.sep) {
            Some(i) => {
                self.rest = Some(&s[i + 1..]);
                Some(&s[..i])
            }
            None => {
                self.rest = None;
                Some(s)
            }
        }
    }
}

/// Replaces each line fold (CRLF or LF followed by SP/HTAB) with a single space.
///
/// Borrows when there is no fold, the common case.
pub(crate) fn unfold(s: &str) -> Cow<'_, str> {
    if find3(s.as_bytes(), b'\r', b'\n', b'\n').is_none() {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                // The fold and the white space that follows become one SP.
                while matches!(chars.peek(), Some(' ' | '\t')) {
                    chars.next();
                }
                out.push(' ');
            }
            _ => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Splits `s` at top-level occurrences of `sep`: not inside a quoted string (with quoted-pairs)
/// nor inside `<...>`.
///
/// Returns `None` when a quoted string or an angle bracket is left open.
pub(crate) fn split_top_level(s: &str, sep: u8) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut in_angle = false;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_quotes {
            match b {
                b'\\' => i += 1,
                b'"' => in_quotes = false,
                _ => {}
            }
        } else if in_angle {
            if b == b'>' {
                in_angle = false;
            }
        } else if b == b'"' {
            in_quotes = true;
        } else if b == b'<' {
            in_angle = true;
        } else if b == sep {
            parts.push(&s[start..i]);
            start = i + 1;
        }
        i += 1;
    }
    if in_quotes || in_angle {
        return None;
    }
    parts.push(&s[start..]);
    Some(parts)
}

/// Iterator over the pieces of `s` between top-level `sep` bytes (see [`split_top_level`]),
/// without allocating. An unterminated quote or angle bracket ends the last piece at the end
/// of the text; validate with [`split_top_level`] first where that matters.
pub(crate) struct TopLevel<'a> {
    rest: Option<&'a str>,
    sep: u8,
}

/// Splits at top-level `sep` bytes lazily.
pub(crate) fn top_level(s: &str, sep: u8) -> TopLevel<'_> {
    TopLevel { rest: Some(s), sep }
}

impl<'a> Iterator for TopLevel<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        let bytes = s.as_bytes();
        let mut i = 0;
        // Jump from one interesting byte to the next (the separator, a quote, an angle
        // bracket); most values have none of them.
        while let Some(off) = find3_short(&bytes[i..], self.sep, b'"', b'<') {
            let at = i + off;
            match bytes[at] {
                b'"' => {
                    // Skip the quoted string (with quoted-pairs).
                    let mut j = at + 1;
                    loop {
                        match find3_short(&bytes[j..], b'"', b'\\', b'\\') {
                            Some(k) if bytes[j + k] == b'\\' => j += k + 2,
                            Some(k) => {
                                j += k + 1;
                                break;
                            }
                            None => {
                                j = bytes.len();
                                break;
                            }
                        }
                        if j >= bytes.len() {
                            break;
                        }
                    }
                    i = j.min(bytes.len());
                }
                b'<' => {
                    i = find(&bytes[at..], b'>').map_or(bytes.len(), |k| at + k + 1);
                }
                _ => {
                    self.rest = Some(&s[at + 1..]);
                    return Some(&s[..at]);
                }
            }
            if i >= bytes.len() {
                break;
            }
        }
        self.rest = None;
        Some(s)
    }
}

/// Finds the end of a quoted string that starts at `s[0] == '"'`; returns the index just past
/// the closing quote.
pub(crate) fn quoted_end(s: &str) -> Option<usize> {
    quoted_end_escaped(s).map(|(end, _)| end)
}

/// [`quoted_end`], and whether the quoted string holds a quoted-pair (so that [`unquote`]
/// has something to undo).
#[inline]
pub(crate) fn quoted_end_escaped(s: &str) -> Option<(usize, bool)> {
    let bytes = s.as_bytes();
    debug_assert_eq!(bytes.first(), Some(&b'"'));
    let mut escaped = false;
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
                let next = *bytes.get(i + 1)?;
                if next == b'\r' || next == b'\n' || next > 0x7f {
                    return None;
                }
                escaped = true;
                i += 2;
            }
            b'"' => return Some((i + 1, escaped)),
            b'\r' | b'\n' => {
                // Only a fold (CRLF WSP) may appear inside.
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

/// Removes the surrounding quotes and undoes quoted-pairs.
pub(crate) fn unquote(s: &str) -> Cow<'_, str> {
    let inner = s
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s);
    if find_byte(inner, b'\\').is_none() {
        return Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Quotes `s` as a quoted-string, escaping `"` and `\`.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Parses a decimal number made only of ASCII digits (leading zeros allowed), with an upper
/// bound. Returns `None` on any other character, emptiness or overflow.
#[inline]
pub(crate) fn parse_decimal(s: &str, max: u64) -> Option<u64> {
    // Up to 19 digits cannot overflow a u64: no checked arithmetic on the usual numbers.
    if s.is_empty() || s.len() > 19 {
        return parse_long_decimal(s, max);
    }
    let mut v: u64 = 0;
    for b in s.bytes() {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + u64::from(d);
    }
    (v <= max).then_some(v)
}

/// [`parse_decimal`] of an empty text or one of 20 bytes or more.
#[cold]
fn parse_long_decimal(s: &str, max: u64) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        // A longer digit string is over any bound we check, unless it is all leading zeros.
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let trimmed = s.trim_start_matches('0');
        if trimmed.len() > 20 {
            return None;
        }
        return parse_decimal(if trimmed.is_empty() { "0" } else { trimmed }, max);
    }
    let mut v: u64 = 0;
    for b in s.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    (v <= max).then_some(v)
}

/// Undoes `%HH` escapes. Borrows when there are none; returns `None` on a broken escape.
pub(crate) fn percent_decode(s: &str) -> Option<Cow<'_, [u8]>> {
    if find_byte(s, b'%').is_none() {
        return Some(Cow::Borrowed(s.as_bytes()));
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let h = hex_val(*bytes.get(i + 1)?)?;
            let l = hex_val(*bytes.get(i + 2)?)?;
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(Cow::Owned(out))
}

const fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// True when `s` contains only `%HH` escapes that are well formed.
pub(crate) fn escapes_ok(s: &str) -> bool {
    let b = s.as_bytes();
    if find(b, b'%').is_none() {
        return true;
    }
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            match (b.get(i + 1), b.get(i + 2)) {
                (Some(&h), Some(&l)) if hex_val(h).is_some() && hex_val(l).is_some() => i += 3,
                _ => return false,
            }
        } else {
            i += 1;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_respects_quotes_and_angles() {
        let parts = split_top_level(r#""a,b" <sip:x@y;a=1,2>, <sip:z>"#, b',').unwrap();
        assert_eq!(parts.len(), 2);
        assert!(split_top_level(r#""open"#, b',').is_none());
    }

    #[test]
    fn lazy_split_matches_eager_split() {
        for text in [
            r#""a,b" <sip:x@y;a=1,2>, <sip:z>"#,
            "a,b,,c",
            r#""q\"," x, y"#,
            "<sip:a,b>",
            "",
            ",",
            r#""unterminated, x"#,
        ] {
            let lazy: Vec<&str> = top_level(text, b',').collect();
            if let Some(eager) = split_top_level(text, b',') {
                assert_eq!(lazy, eager, "{text}");
            }
        }
    }

    #[test]
    fn word_search_matches_a_byte_loop() {
        let text = b"SIP/2.0/UDP 192.0.2.10:5060;rport;branch=z9hG4bK\"a,b\"<x>;%\t end";
        for start in 0..text.len() {
            for end in start..=text.len() {
                let s = &text[start..end];
                for (a, b, c) in [
                    (b';', b'"', b'<'),
                    (b' ', b'\t', b'\t'),
                    (b'%', b'%', b'%'),
                    (0, 0, 0),
                ] {
                    let expected = s.iter().position(|&x| x == a || x == b || x == c);
                    assert_eq!(find3(s, a, b, c), expected);
                    assert_eq!(find3_short(s, a, b, c), expected);
                }
            }
        }
    }

    #[test]
    fn unfold_replaces_folds() {
        assert_eq!(unfold("a\r\n  b\r\n\tc"), "a b c");
        assert!(matches!(unfold("abc"), Cow::Borrowed(_)));
    }

    #[test]
    fn decimal_bounds() {
        assert_eq!(parse_decimal("0070", 255), Some(70));
        assert_eq!(parse_decimal("300", 255), None);
        assert_eq!(parse_decimal("000000000000000000000000001", 9), Some(1));
        assert_eq!(parse_decimal("-1", 9), None);
        assert_eq!(parse_decimal("", 9), None);
        assert_eq!(
            parse_decimal("18446744073709551615", u64::MAX),
            Some(u64::MAX)
        );
        assert_eq!(parse_decimal("18446744073709551616", u64::MAX), None);
        assert_eq!(
            parse_decimal("9999999999999999999", u64::MAX),
            Some(9_999_999_999_999_999_999)
        );
        assert_eq!(parse_decimal("65536", 65535), None);
        assert_eq!(parse_decimal("5060", 65535), Some(5060));
        assert_eq!(parse_decimal("50/0", 65535), None);
        assert_eq!(parse_decimal("50:0", 65535), None);
    }

    #[test]
    fn unquote_pairs() {
        assert_eq!(unquote(r#""J \"Rosenberg\" \\""#), r#"J "Rosenberg" \"#);
    }

    #[test]
    fn percent() {
        assert_eq!(&*percent_decode("a%41%62").unwrap(), b"aAb");
        assert!(percent_decode("a%4").is_none());
        assert!(escapes_ok("a%41"));
        assert!(!escapes_ok("a%4"));
        assert!(!escapes_ok("a%zz"));
    }
}
