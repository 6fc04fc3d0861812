//! Parameter lists: `;name=value` sequences of URIs (RFC 3261 §19.1.1) and of headers
//! (`generic-param`, §25.1), kept as the text they came in and read lazily.

use std::borrow::Cow;
use std::fmt;

use super::lex::{self, class, trim_lws};

/// A `;name[=value]` list, kept as its text (zero-copy) and iterated on demand.
///
/// The text is stored without the leading `;`. Names compare case-insensitively. Changing a
/// parameter rebuilds the text.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Params<'a> {
    raw: Cow<'a, str>,
}

/// One parameter of a [`Params`] list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param<'p> {
    /// The name, as written.
    pub name: &'p str,
    /// The value as written (quotes included for a quoted-string), or `None` for a flag.
    pub value: Option<&'p str>,
}

impl<'p> Param<'p> {
    /// The value with surrounding quotes and quoted-pairs undone.
    pub fn unquoted(&self) -> Option<Cow<'p, str>> {
        self.value.map(lex::unquote)
    }
}

impl<'a> Params<'a> {
    /// An empty list.
    pub const fn new() -> Params<'static> {
        Params {
            raw: Cow::Borrowed(""),
        }
    }

    /// Wraps already-validated text (without the leading `;`).
    pub(crate) fn from_raw(raw: Cow<'a, str>) -> Params<'a> {
        Params { raw }
    }

    /// The text of the list, without the leading `;`.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// True when there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.raw.trim().is_empty()
    }

    /// The parameters in order.
    pub fn iter(&self) -> impl Iterator<Item = Param<'_>> + '_ {
        lex::top_level(&self.raw, b';').filter_map(|p| {
            let p = trim_lws(p);
            (!p.is_empty()).then(|| split_param(p))
        })
    }

    /// Looks a parameter up by name (case-insensitive). `Some(None)` is a flag parameter.
    #[inline(always)]
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        match get_plain(&self.raw, name) {
            Some(found) => found,
            None => self.get_general(name),
        }
    }

    /// [`Params::get`] on any list.
    #[inline(never)]
    fn get_general(&self, name: &str) -> Option<Option<&str>> {
        self.iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value)
    }

    /// The value of a parameter with its quotes removed; `None` if absent or a flag.
    pub fn value(&self, name: &str) -> Option<Cow<'_, str>> {
        self.iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .and_then(|p| p.unquoted())
    }

    /// True when the parameter is present (with or without a value).
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets (replaces or appends) a parameter. `value` is written as given: quote it first
    /// when it is not a token.
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        let mut out = String::with_capacity(self.raw.len() + name.len() + 8);
        let mut replaced = false;
        for p in self.iter() {
            if !out.is_empty() {
                out.push(';');
            }
            if p.name.eq_ignore_ascii_case(name) && !replaced {
                replaced = true;
                push_param(&mut out, name, value);
            } else {
                push_param(&mut out, p.name, p.value);
            }
        }
        if !replaced {
            if !out.is_empty() {
                out.push(';');
            }
            push_param(&mut out, name, value);
        }
        self.raw = Cow::Owned(out);
    }

    /// Removes every parameter with this name.
    pub fn remove(&mut self, name: &str) {
        if !self.contains(name) {
            return;
        }
        let mut out = String::with_capacity(self.raw.len());
        for p in self.iter().filter(|p| !p.name.eq_ignore_ascii_case(name)) {
            if !out.is_empty() {
                out.push(';');
            }
            push_param(&mut out, p.name, p.value);
        }
        self.raw = Cow::Owned(out);
    }

    /// Detaches the list from the message buffer it borrows from.
    pub fn into_owned(self) -> Params<'static> {
        Params {
            raw: Cow::Owned(self.raw.into_owned()),
        }
    }
}

/// [`Params::get`] in one pass over a list written plainly up to the parameter looked for:
/// no quote or angle bracket, no white space at the ends of a parameter or around the `=`
/// of the one found. `None` when the list (or the name) needs the general path, which
/// gives the same answer on plain lists.
#[inline(always)]
fn get_plain<'r>(raw: &'r str, name: &str) -> Option<Option<Option<&'r str>>> {
    let lws = |c: u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
    let b = raw.as_bytes();
    let n = name.as_bytes();
    // A name the general path would never match as written (white space at its ends, an
    // '='): let it answer.
    match (n.first(), n.last()) {
        (Some(&first), Some(&last)) if !lws(first) && !lws(last) => {}
        _ => return None,
    }
    if lex::find3_short(n, b'=', b'=', b'=').is_some() {
        return None;
    }
    let mut start = 0;
    loop {
        // The piece starting at `start` runs to the next ';' (a quote or an angle bracket
        // may hide a ';': general path).
        let end = match lex::find3_short(&b[start..], b';', b'"', b'<') {
            Some(i) if b[start + i] == b';' => start + i,
            Some(_) => return None,
            None => b.len(),
        };
        if end > start {
            if lws(b[start]) || lws(b[end - 1]) {
                return None;
            }
            // The piece's name is `name` when it starts with it and ends there (at '=', or
            // at the end of a flag). Names never hold ';', so this stays inside the piece.
            let piece = &b[start..end];
            if piece.len() >= n.len() && lex::eq_ignore_case(&piece[..n.len()], n) {
                match piece.get(n.len()) {
                    None => return Some(Some(None)),
                    Some(b'=') => {
                        let value = start + n.len() + 1;
                        if value < end && lws(b[value]) {
                            return None;
                        }
                        return Some(Some(Some(&raw[value..end])));
                    }
                    Some(&c) if lws(c) => return None,
                    Some(_) => {}
                }
            }
        }
        if end == b.len() {
            return Some(None);
        }
        start = end + 1;
    }
}

/// For the fuzz targets: panics when the one-pass lookup answers differently from the
/// general one on the list `raw`.
pub(crate) fn check_plain_get(raw: &str) {
    let p = Params::from_raw(Cow::Borrowed(raw));
    for name in [
        "branch",
        "tag",
        "expires",
        "rport",
        "received",
        "lr",
        "transport",
    ] {
        if let Some(plain) = get_plain(raw, name) {
            assert_eq!(
                plain,
                p.get_general(name),
                "the one-pass parameter lookup differs on {raw:?} for {name}"
            );
        }
    }
}

/// Splits a parameter (trimmed, not empty) at its first `=`.
#[inline]
fn split_param(p: &str) -> Param<'_> {
    match lex::find_byte(p, b'=') {
        Some(eq) => Param {
            name: trim_lws(&p[..eq]),
            value: Some(trim_lws(&p[eq + 1..])),
        },
        None => Param {
            name: p,
            value: None,
        },
    }
}

fn push_param(out: &mut String, name: &str, value: Option<&str>) {
    out.push_str(name);
    if let Some(v) = value {
        out.push('=');
        out.push_str(v);
    }
}

impl fmt::Display for Params<'_> {
    /// Prints `;name=value` for each parameter (with the leading `;`), or nothing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return Ok(());
        }
        for p in self.iter() {
            f.write_str(";")?;
            f.write_str(p.name)?;
            if let Some(v) = p.value {
                f.write_str("=")?;
                f.write_str(v)?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Params<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|p| (p.name, p.value)))
            .finish()
    }
}

/// Validates a header parameter list (`*( SEMI generic-param )`, text after the first `;`):
/// every parameter has a token name and a token, host or quoted-string value; no empty
/// parameter (`;;`).
pub(crate) fn validate_header_params(raw: &str) -> Result<(), &'static str> {
    validate_header_params_with(raw, |_, _, _| Ok(()))
}

/// [`validate_header_params`], and `check` on each parameter (name and value as written, and
/// whether the value is a token) in the same pass: what a header with rules of its own for
/// some parameters (Via) needs.
pub(crate) fn validate_header_params_with(
    raw: &str,
    mut check: impl FnMut(&str, Option<&str>, bool) -> Result<(), &'static str>,
) -> Result<(), &'static str> {
    if let Some(plain) = validate_plain_params(raw, &mut check) {
        return plain;
    }
    // No allocation: an unterminated quoted string ends the last piece, whose value then
    // fails the quoted-string check below.
    for piece in lex::top_level(raw, b';') {
        let piece = trim_lws(piece);
        if piece.is_empty() {
            return Err("empty parameter");
        }
        let Param { name, value } = split_param(piece);
        if !lex::is_token(name) {
            return Err("bad parameter name");
        }
        if let Some(v) = value {
            if v.starts_with('"') {
                if lex::quoted_end(v) != Some(v.len()) {
                    return Err("bad quoted parameter value");
                }
            } else if v.is_empty() || !lex::all_in(v.as_bytes(), class::PARAM_VALUE) {
                return Err("bad parameter value");
            }
        }
        check(name, value, value.is_some_and(lex::is_token))?;
    }
    Ok(())
}

/// True when the one-pass validation accepts `raw` as a header parameter list (text after
/// the first `;`), which [`validate_header_params`] then accepts too. False when it is invalid
/// or needs the general path.
#[inline]
pub(crate) fn plain_header_params(raw: &str) -> bool {
    matches!(
        validate_plain_params(raw, &mut |_, _, _| Ok(())),
        Some(Ok(()))
    )
}

/// The usual case of [`validate_header_params_with`] in one pass over the bytes: parameters
/// written `name[=value]` with token names and token/host values or quoted values without
/// escapes, no white space. Gives the same answer as the general path, or `None` when the
/// list needs that path (white space, an escape, any other byte, or an error to report).
#[inline]
fn validate_plain_params(
    raw: &str,
    check: &mut impl FnMut(&str, Option<&str>, bool) -> Result<(), &'static str>,
) -> Option<Result<(), &'static str>> {
    let b = raw.as_bytes();
    let n = b.len();
    let mut i = 0;
    loop {
        // name: a token
        let start = i;
        while i < n && lex::is(b[i], class::TOKEN) {
            i += 1;
        }
        if i == start {
            // An empty parameter or name, or another byte: the general path says which.
            return None;
        }
        let name = &raw[start..i];
        // The classes all the bytes of a token value are in.
        let mut value_classes = 0;
        let value = if b.get(i) == Some(&b'=') {
            i += 1;
            let value_start = i;
            if b.get(i) == Some(&b'"') {
                // A quoted value without escapes or folds.
                let close = i + 1 + lex::find3_short(&b[i + 1..], b'"', b'"', b'"')?;
                if lex::find3_short(&b[i + 1..close], b'\\', b'\r', b'\n').is_some() {
                    return None;
                }
                i = close + 1;
            } else {
                value_classes = u8::MAX;
                while i < n {
                    let c = lex::CLASSES[usize::from(b[i])];
                    if c & class::PARAM_VALUE == 0 {
                        break;
                    }
                    value_classes &= c;
                    i += 1;
                }
                if i == value_start {
                    return None;
                }
            }
            Some(&raw[value_start..i])
        } else {
            None
        };
        if check(name, value, value_classes & class::TOKEN != 0).is_err() {
            return None;
        }
        match b.get(i) {
            None => return Some(Ok(())),
            Some(b';') => i += 1,
            Some(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterate_and_lookup() {
        let p = Params::from_raw(Cow::Borrowed("branch=z9hG4bK1 ; rport; received = 1.2.3.4"));
        let v: Vec<_> = p.iter().map(|p| (p.name, p.value)).collect();
        assert_eq!(
            v,
            vec![
                ("branch", Some("z9hG4bK1")),
                ("rport", None),
                ("received", Some("1.2.3.4"))
            ]
        );
        assert_eq!(p.get("RPORT"), Some(None));
        assert_eq!(p.value("received").as_deref(), Some("1.2.3.4"));
    }

    #[test]
    fn plain_lookup_agrees_with_the_general_path() {
        let lists = [
            "branch=z9hG4bK1;rport",
            "rport;branch=z9hG4bK1",
            "tag=1 ; x",
            " tag=1",
            "tag =1",
            "tag= 1",
            "tag=",
            "tag",
            ";;tag=2;",
            "x=\"a;tag=3\";tag=4",
            "TAG=5;tag=6",
            "expires=3600;+sip.instance=\"<urn:uuid:1>\";reg-id=1",
            "lr",
            "",
            "a b=1;tag=2",
            "tag=1 ",
            "a=b=c",
            "=x;tag",
            "tagx=1;Tag=2",
            "\u{e9}=1;tag=\u{e9}",
        ];
        for raw in lists {
            let p = Params::from_raw(Cow::Borrowed(raw));
            for name in [
                "tag", "rport", "branch", "expires", "reg-id", "lr", "x", "t", "a b", "a=b",
                "tag ", " tag", "", "\u{e9}",
            ] {
                let general = p
                    .iter()
                    .find(|q| q.name.eq_ignore_ascii_case(name))
                    .map(|q| q.value);
                assert_eq!(p.get(name), general, "{raw:?} {name}");
            }
        }
    }

    #[test]
    fn set_and_remove() {
        let mut p = Params::from_raw(Cow::Borrowed("a=1;rport"));
        p.set("rport", Some("5060"));
        p.set("received", Some("10.0.0.1"));
        assert_eq!(p.to_string(), ";a=1;rport=5060;received=10.0.0.1");
        p.remove("a");
        assert_eq!(p.as_str(), "rport=5060;received=10.0.0.1");
    }

    #[test]
    fn plain_validation_agrees_with_the_general_path() {
        for raw in [
            "expires=3600;+sip.instance=\"<urn:uuid:1>\";reg-id=1",
            "a=\"x;y\"",
            "a=\"x\"b",
            "a=\"x\\\"y\"",
            "a=\"unterminated",
            "a=\"\"",
            "a=b\"c\"",
            "a=\"x\";;b",
            "tag=1;x",
            "tag=1; x",
            "=1",
            "a=",
            "a==b",
            "rport;branch=z9hG4bK776asdhds",
            "a;b;c",
            "maddr=[::1];ttl=1",
            "a=b;",
            ";a",
            "a b",
            "a=\"x\";b=c",
        ] {
            let plain = validate_plain_params(raw, &mut |_, _, _| Ok(()));
            let general = {
                let mut ok = Ok(());
                for piece in lex::top_level(raw, b';') {
                    let piece = trim_lws(piece);
                    let Param { name, value } = split_param(piece);
                    let bad = piece.is_empty()
                        || !lex::is_token(name)
                        || value.is_some_and(|v| {
                            if v.starts_with('"') {
                                lex::quoted_end(v) != Some(v.len())
                            } else {
                                v.is_empty() || !lex::all_in(v.as_bytes(), class::PARAM_VALUE)
                            }
                        });
                    if bad {
                        ok = Err(());
                        break;
                    }
                }
                ok
            };
            if let Some(plain) = plain {
                assert_eq!(plain.map_err(|_| ()), general, "{raw:?}");
            }
            assert_eq!(
                validate_header_params(raw).map_err(|_| ()),
                general,
                "{raw:?}"
            );
        }
    }

    #[test]
    fn validation() {
        assert!(validate_header_params("tag=1;x=\"a;b\"").is_ok());
        assert!(validate_header_params("tag=1;;x").is_err());
        assert!(validate_header_params("received=[2001:db8::9:255]").is_ok());
    }
}
