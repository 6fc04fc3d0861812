//! Generic parsing and printing of authentication header values (RFC 3261 §25.1 `challenge`,
//! `credentials`, `ainfo`; RFC 7235 §2.1 for the HTTP-style lists).
//!
//! These types hold a scheme and its `auth-param`s exactly as they came (names keep their case,
//! values are unescaped, and each value remembers whether it was quoted), so that printing a
//! parsed value gives back an equivalent header value: parse -> print -> parse is the identity.
//! The digest-specific meaning of the parameters lives in [`super::digest`].

use std::fmt;

/// A malformed authentication header value. The byte offsets point into the value given to the
/// parser.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthParseError {
    /// The value is empty or only whitespace.
    #[error("empty authentication header value")]
    Empty,
    /// Something else was found where the grammar wants `expected`.
    #[error("expected {expected} at byte {at}")]
    Expected {
        /// What the grammar wants at that place.
        expected: &'static str,
        /// Byte offset in the header value.
        at: usize,
    },
    /// A quoted-string has no closing quote.
    #[error("unterminated quoted string starting at byte {at}")]
    UnterminatedQuote {
        /// Byte offset of the opening quote.
        at: usize,
    },
    /// A parameter has `=` but no value.
    #[error("parameter {name:?} has no value")]
    MissingValue {
        /// The parameter name.
        name: String,
    },
    /// One header value holds several challenges or credentials where only one is allowed.
    #[error("more than one scheme in a single value (found {second:?})")]
    SeveralSchemes {
        /// The scheme of the second one.
        second: String,
    },
}

/// One `auth-param`: `name=value` or `name="value"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthParam {
    /// The parameter name as written (compare case-insensitively).
    pub name: String,
    /// The value, without quotes and with quoted-pairs unescaped.
    pub value: String,
    /// Whether the value was (or is to be) written as a quoted-string.
    pub quoted: bool,
}

impl AuthParam {
    /// A parameter printed as a quoted-string.
    pub fn quoted(name: impl Into<String>, value: impl Into<String>) -> Self {
        AuthParam {
            name: name.into(),
            value: value.into(),
            quoted: true,
        }
    }

    /// A parameter printed as a bare token (it is quoted anyway if the value is not a token).
    pub fn token(name: impl Into<String>, value: impl Into<String>) -> Self {
        AuthParam {
            name: name.into(),
            value: value.into(),
            quoted: false,
        }
    }
}

impl fmt::Display for AuthParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        f.write_str("=")?;
        if self.quoted || self.value.is_empty() || !self.value.chars().all(is_value_char) {
            write_quoted(f, &self.value)
        } else {
            f.write_str(&self.value)
        }
    }
}

/// A challenge (`WWW-Authenticate` / `Proxy-Authenticate` value): a scheme followed by either a
/// token68 or a comma-separated list of `auth-param`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The auth-scheme as written (`Digest`); compare case-insensitively.
    pub scheme: String,
    /// A token68 (HTTP `Basic`/`Negotiate` style), if the scheme used one instead of params.
    pub token68: Option<String>,
    /// The parameters in the order they came.
    pub params: Vec<AuthParam>,
}

/// Credentials (`Authorization` / `Proxy-Authorization` value): same shape as a [`Challenge`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The auth-scheme as written (`Digest`); compare case-insensitively.
    pub scheme: String,
    /// A token68, if the scheme used one instead of params.
    pub token68: Option<String>,
    /// The parameters in the order they came.
    pub params: Vec<AuthParam>,
}

/// An `Authentication-Info` value (RFC 3261 §20.6, RFC 7615): parameters only, no scheme.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthenticationInfo {
    /// The parameters in the order they came (`nextnonce`, `qop`, `rspauth`, `cnonce`, `nc`).
    pub params: Vec<AuthParam>,
}

macro_rules! scheme_value_impl {
    ($ty:ident) => {
        impl $ty {
            /// A value with the given scheme and no parameters yet.
            pub fn new(scheme: impl Into<String>) -> Self {
                $ty {
                    scheme: scheme.into(),
                    token68: None,
                    params: Vec::new(),
                }
            }

            /// Parse one header value holding exactly one scheme (SIP never comma-combines
            /// these headers, RFC 3261 §7.3.1).
            pub fn parse(value: &str) -> Result<Self, AuthParseError> {
                let mut list = parse_scheme_list(value)?;
                if list.len() > 1 {
                    return Err(AuthParseError::SeveralSchemes {
                        second: list.swap_remove(1).0,
                    });
                }
                let (scheme, token68, params) = list
                    .pop()
                    .expect("parse_scheme_list never returns an empty list");
                Ok($ty {
                    scheme,
                    token68,
                    params,
                })
            }

            /// Parse a value that may hold several comma-separated schemes (HTTP style,
            /// RFC 7235 §4.1); SIP peers should send one per header value but some combine them.
            pub fn parse_list(value: &str) -> Result<Vec<Self>, AuthParseError> {
                Ok(parse_scheme_list(value)?
                    .into_iter()
                    .map(|(scheme, token68, params)| $ty {
                        scheme,
                        token68,
                        params,
                    })
                    .collect())
            }

            /// Whether the scheme is `name` (case-insensitive).
            pub fn is_scheme(&self, name: &str) -> bool {
                self.scheme.eq_ignore_ascii_case(name)
            }

            /// The value of the first parameter called `name` (case-insensitive).
            pub fn param(&self, name: &str) -> Option<&str> {
                find_param(&self.params, name)
            }

            /// Append a parameter (builder style).
            pub fn with(mut self, param: AuthParam) -> Self {
                self.params.push(param);
                self
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.scheme)?;
                if let Some(t) = &self.token68 {
                    write!(f, " {t}")?;
                }
                write_params(f, &self.params, " ")
            }
        }

        impl std::str::FromStr for $ty {
            type Err = AuthParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
    };
}

scheme_value_impl!(Challenge);
scheme_value_impl!(Credentials);

impl AuthenticationInfo {
    /// Parse an `Authentication-Info` value: `param *(, param)`.
    pub fn parse(value: &str) -> Result<Self, AuthParseError> {
        let mut lx = Lexer::new(value);
        lx.skip_lws();
        if lx.at_end() {
            return Err(AuthParseError::Empty);
        }
        let mut params = Vec::new();
        loop {
            lx.skip_lws();
            if lx.peek() == Some(b',') {
                lx.pos += 1;
                continue;
            }
            if lx.at_end() {
                break;
            }
            let name = lx.token("parameter name")?;
            params.push(lx.param_rest(name)?);
            lx.skip_lws();
            match lx.peek() {
                None => break,
                Some(b',') => lx.pos += 1,
                Some(_) => return Err(lx.expected("',' or end")),
            }
        }
        Ok(AuthenticationInfo { params })
    }

    /// The value of the first parameter called `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        find_param(&self.params, name)
    }
}

impl fmt::Display for AuthenticationInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_params(f, &self.params, "")
    }
}

impl std::str::FromStr for AuthenticationInfo {
    type Err = AuthParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn find_param<'a>(params: &'a [AuthParam], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))
        .map(|p| p.value.as_str())
}

fn write_params(f: &mut fmt::Formatter<'_>, params: &[AuthParam], lead: &str) -> fmt::Result {
    for (i, p) in params.iter().enumerate() {
        f.write_str(if i == 0 { lead } else { ", " })?;
        write!(f, "{p}")?;
    }
    Ok(())
}

fn write_quoted(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in value.chars() {
        // quoted-pair may escape anything but CR and LF (RFC 3261 §25.1); those cannot be
        // represented in a header value at all, so they are dropped rather than corrupt framing.
        match c {
            '"' | '\\' => write!(f, "\\{c}")?,
            '\r' | '\n' => {}
            _ => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

/// RFC 3261 `token` characters plus the extra RFC 7230 `tchar`s.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~#$&^|".contains(&b)
}

/// Characters accepted in an unquoted parameter value: tokens, plus the characters lenient
/// peers put in unquoted nonces and URIs (`/`, `:`, `@`, `[`, `]`, `?`). Quoted on output if
/// anything else appears.
fn is_value_char(c: char) -> bool {
    c.is_ascii() && (is_token_byte(c as u8) || "/:@[]?".contains(c))
}

fn is_token68_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

type SchemeValue = (String, Option<String>, Vec<AuthParam>);

/// `1#( auth-scheme [ 1*SP ( token68 / #auth-param ) ] )`, tolerating LWS everywhere legal.
fn parse_scheme_list(value: &str) -> Result<Vec<SchemeValue>, AuthParseError> {
    let mut lx = Lexer::new(value);
    lx.skip_lws();
    if lx.at_end() {
        return Err(AuthParseError::Empty);
    }
    let mut out: Vec<SchemeValue> = Vec::new();
    // Leading empty list elements are legal in HTTP's #rule.
    while lx.peek() == Some(b',') {
        lx.pos += 1;
        lx.skip_lws();
    }
    let mut scheme = lx.token("auth-scheme")?;
    loop {
        let had_space = lx.skip_lws();
        let mut token68 = None;
        let mut params = Vec::new();
        if had_space && !lx.at_end() && lx.peek() != Some(b',') {
            if let Some(t) = lx.try_token68() {
                token68 = Some(t);
            } else {
                let name = lx.token("parameter name")?;
                params.push(lx.param_rest(name)?);
            }
        } else if !lx.at_end() && lx.peek() != Some(b',') {
            return Err(lx.expected("whitespace after the scheme"));
        }
        // Further comma-separated items: more params of this scheme, or the next scheme.
        let mut next_scheme = None;
        loop {
            lx.skip_lws();
            match lx.peek() {
                None => break,
                Some(b',') => lx.pos += 1,
                Some(_) => return Err(lx.expected("','")),
            }
            lx.skip_lws();
            if lx.at_end() || lx.peek() == Some(b',') {
                continue;
            }
            let name = lx.token("parameter name or auth-scheme")?;
            let save = lx.pos;
            lx.skip_lws();
            if lx.peek() == Some(b'=') && token68.is_none() {
                lx.pos = save;
                params.push(lx.param_rest(name)?);
            } else {
                lx.pos = save;
                next_scheme = Some(name);
                break;
            }
        }
        out.push((scheme, token68, params));
        match next_scheme {
            Some(s) => scheme = s,
            None => return Ok(out),
        }
    }
}

struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn new(s: &'a str) -> Self {
        Lexer { s, pos: 0 }
    }

    fn bytes(&self) -> &'a [u8] {
        self.s.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn expected(&self, expected: &'static str) -> AuthParseError {
        AuthParseError::Expected {
            expected,
            at: self.pos,
        }
    }

    /// Skip LWS (`[*WSP CRLF] 1*WSP`, also a bare LF fold); returns whether anything was skipped.
    fn skip_lws(&mut self) -> bool {
        let start = self.pos;
        loop {
            let b = self.bytes();
            match b.get(self.pos) {
                Some(b' ' | b'\t') => self.pos += 1,
                Some(b'\r') if b.get(self.pos + 1) == Some(&b'\n') => {
                    if matches!(b.get(self.pos + 2), Some(b' ' | b'\t')) {
                        self.pos += 3;
                    } else {
                        break;
                    }
                }
                Some(b'\n') if matches!(b.get(self.pos + 1), Some(b' ' | b'\t')) => self.pos += 2,
                _ => break,
            }
        }
        self.pos > start
    }

    fn token(&mut self, what: &'static str) -> Result<String, AuthParseError> {
        let start = self.pos;
        while self.peek().is_some_and(is_token_byte) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.expected(what));
        }
        Ok(self.s[start..self.pos].to_owned())
    }

    /// A token68 followed by end or ',' (after LWS); otherwise nothing is consumed.
    fn try_token68(&mut self) -> Option<String> {
        let start = self.pos;
        let mut end = start;
        let b = self.bytes();
        while end < b.len() && is_token68_byte(b[end]) {
            end += 1;
        }
        if end == start {
            return None;
        }
        while end < b.len() && b[end] == b'=' {
            end += 1;
        }
        let save = self.pos;
        self.pos = end;
        self.skip_lws();
        if self.at_end() || self.peek() == Some(b',') {
            let t = self.s[start..end].to_owned();
            self.pos = end;
            Some(t)
        } else {
            self.pos = save;
            None
        }
    }

    /// After a parameter name: `LWS "=" LWS (token / quoted-string)`.
    fn param_rest(&mut self, name: String) -> Result<AuthParam, AuthParseError> {
        self.skip_lws();
        if self.peek() != Some(b'=') {
            return Err(self.expected("'='"));
        }
        self.pos += 1;
        self.skip_lws();
        match self.peek() {
            Some(b'"') => {
                let value = self.quoted_string()?;
                Ok(AuthParam {
                    name,
                    value,
                    quoted: true,
                })
            }
            _ => {
                let start = self.pos;
                while let Some(c) = self.s[self.pos..].chars().next() {
                    if !is_value_char(c) {
                        break;
                    }
                    self.pos += c.len_utf8();
                }
                if self.pos == start {
                    return Err(AuthParseError::MissingValue { name });
                }
                Ok(AuthParam {
                    name,
                    value: self.s[start..self.pos].to_owned(),
                    quoted: false,
                })
            }
        }
    }

    /// `DQUOTE *(qdtext / quoted-pair) DQUOTE`, returning the unescaped content.
    fn quoted_string(&mut self) -> Result<String, AuthParseError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.s[self.pos..].chars().next() else {
                return Err(AuthParseError::UnterminatedQuote { at: open });
            };
            match c {
                '"' => {
                    self.pos += 1;
                    return Ok(out);
                }
                '\\' => {
                    self.pos += 1;
                    let Some(e) = self.s[self.pos..].chars().next() else {
                        return Err(AuthParseError::UnterminatedQuote { at: open });
                    };
                    if e == '\r' || e == '\n' {
                        return Err(self.expected("an escapable character after '\\'"));
                    }
                    out.push(e);
                    self.pos += e.len_utf8();
                }
                '\r' | '\n' => {
                    // Folding inside a quoted string is LWS; anything else is a broken line.
                    if !self.skip_lws() {
                        return Err(self.expected("'\"' before the end of the line"));
                    }
                    out.push(' ');
                }
                _ => {
                    out.push(c);
                    self.pos += c.len_utf8();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_digest_challenge_with_lws_and_quoted_pairs() {
        let c = Challenge::parse(
            "Digest  realm = \"ex\\\"am\\\\ple\" ,\r\n nonce=\"abc\", qop=\"auth,auth-int\",stale=TRUE",
        )
        .unwrap();
        assert_eq!(c.scheme, "Digest");
        assert_eq!(c.param("REALM"), Some("ex\"am\\ple"));
        assert_eq!(c.param("qop"), Some("auth,auth-int"));
        assert_eq!(c.param("stale"), Some("TRUE"));
        let again = Challenge::parse(&c.to_string()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn splits_http_style_lists() {
        let list = Challenge::parse_list(
            "Basic realm=\"a\", Digest realm=\"b\", nonce=\"n\", Negotiate abc+/==, Bearer",
        )
        .unwrap();
        let schemes: Vec<_> = list.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["Basic", "Digest", "Negotiate", "Bearer"]);
        assert_eq!(list[1].params.len(), 2);
        assert_eq!(list[2].token68.as_deref(), Some("abc+/=="));
        assert!(matches!(
            Challenge::parse("Basic realm=\"a\", Digest realm=\"b\""),
            Err(AuthParseError::SeveralSchemes { .. })
        ));
    }

    #[test]
    fn rejects_malformed_values_without_panicking() {
        for bad in [
            "",
            "   ",
            "Digest nonce=\"a\", realm=",
            "Digest realm=\"open",
            "Digest realm\"x\"",
            "Digest realm=\"a\" nonce=\"b\"",
            "=x",
            "Digest realm=\"a\\",
            "Digest realm=\"a\r\nb\"",
            "Digest,realm",
            "Digest realm=a;b",
        ] {
            assert!(Challenge::parse(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn authentication_info_round_trips() {
        let v = "nextnonce=\"47364c23432d2e131a5fb210812c\", qop=auth, rspauth=\"abc\", cnonce=\"x y\", nc=00000001";
        let info = AuthenticationInfo::parse(v).unwrap();
        assert_eq!(
            info.param("nextnonce"),
            Some("47364c23432d2e131a5fb210812c")
        );
        assert_eq!(info.to_string(), v);
    }

    #[test]
    fn unquoted_values_that_are_not_tokens_are_printed_quoted() {
        let c = Credentials::new("Digest").with(AuthParam::token("uri", "sip:a b"));
        assert_eq!(c.to_string(), "Digest uri=\"sip:a b\"");
        assert_eq!(
            Credentials::parse(&c.to_string()).unwrap().param("uri"),
            Some("sip:a b")
        );
    }
}
