//! HTTP digest authentication for SIP (RFC 3261 §22.4, RFC 2617, RFC 7616, RFC 8760).
//!
//! [`DigestChallenge`] and [`DigestCredentials`] are typed views of the generic
//! [`Challenge`]/[`Credentials`] header values. [`digest_response`] is the pure computation
//! (test vectors from RFC 2617 §3.5 and RFC 7616 §3.9.1 are in the tests). [`DigestClient`]
//! is the per-account state a user agent keeps: the credentials, the challenges it answered
//! and the nonce counts.

use std::collections::HashMap;
use std::fmt;

use md5::Md5;
use rand_core::Rng;
use sha2::{Digest, Sha256, Sha512_256};

use super::header::{AuthParam, AuthParseError, AuthenticationInfo, Challenge, Credentials};

/// A digest operation that could not be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The header value is malformed.
    #[error("malformed authentication header: {0}")]
    Parse(#[from] AuthParseError),
    /// The value uses another scheme than `Digest`.
    #[error("not a digest value (scheme {scheme})")]
    NotDigest {
        /// The scheme that was found.
        scheme: String,
    },
    /// A parameter the digest scheme requires is absent.
    #[error("digest {param} parameter missing")]
    MissingParam {
        /// The parameter name.
        param: &'static str,
    },
    /// A parameter appears twice (RFC 7616 §3.3: each parameter at most once).
    #[error("digest {param} parameter given twice")]
    DuplicateParam {
        /// The parameter name.
        param: String,
    },
    /// A parameter value does not fit its syntax.
    #[error("invalid digest {param} value {value:?}")]
    InvalidParam {
        /// The parameter name.
        param: &'static str,
        /// The value found.
        value: String,
    },
    /// None of the challenges uses a scheme, algorithm and qop this client supports.
    #[error("no supported authentication challenge (offered: {offered})")]
    NoSupportedChallenge {
        /// A short description of each offered challenge.
        offered: String,
    },
    /// Every challenge the client could answer is for a realm its credentials are not for
    /// (see [`DigestClient::with_realms`]): answering would hand the challenger a hash of the
    /// password to attack offline.
    #[error("challenge for realm {realm:?} refused: the credentials are not for that realm")]
    RealmRefused {
        /// The realm of the (first) refused challenge.
        realm: String,
    },
    /// The server challenged again, without `stale=true`, a request that already carried
    /// credentials for this realm: the username or password is wrong (RFC 3261 §22.2).
    #[error("credentials rejected by realm {realm:?}")]
    Rejected {
        /// The realm that refused the credentials.
        realm: String,
    },
}

/// A digest algorithm (RFC 7616 §3.2, registered for SIP by RFC 8760).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// `MD5` (the default when a challenge names none).
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256`.
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
    /// `SHA-512-256` (SHA-512/256, FIPS 180-4).
    Sha512_256,
    /// `SHA-512-256-sess`.
    Sha512_256Sess,
}

impl Algorithm {
    /// Parse an `algorithm` token (case-insensitive); `None` for algorithms we do not support.
    pub fn parse(token: &str) -> Option<Self> {
        const ALL: [Algorithm; 6] = [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
            Algorithm::Sha512_256,
            Algorithm::Sha512_256Sess,
        ];
        ALL.into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(token))
    }

    /// The token as written in headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// Whether this is a `-sess` variant (A1 includes the nonce and cnonce).
    pub fn is_session(self) -> bool {
        matches!(
            self,
            Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess
        )
    }

    /// Preference when several challenges are offered: SHA-512-256 > SHA-256 > MD5, and the
    /// plain variant before its `-sess` twin.
    pub fn strength(self) -> u8 {
        match self {
            Algorithm::Sha512_256 => 6,
            Algorithm::Sha512_256Sess => 5,
            Algorithm::Sha256 => 4,
            Algorithm::Sha256Sess => 3,
            Algorithm::Md5 => 2,
            Algorithm::Md5Sess => 1,
        }
    }

    /// `H(data)` as lowercase hex.
    pub fn hash_hex(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex(&Md5::digest(data)),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hex(&Sha256::digest(data)),
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => hex(&Sha512_256::digest(data)),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
}

/// Quality of protection (RFC 7616 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Qop {
    /// `auth`: authentication of method and URI.
    Auth,
    /// `auth-int`: also the message body.
    AuthInt,
}

impl Qop {
    /// The token as written in headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }

    fn parse(token: &str) -> Option<Self> {
        if token.eq_ignore_ascii_case("auth") {
            Some(Qop::Auth)
        } else if token.eq_ignore_ascii_case("auth-int") {
            Some(Qop::AuthInt)
        } else {
            None
        }
    }
}

/// Which header pair a challenge came in: it decides where the answer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChallengeKind {
    /// 401 with `WWW-Authenticate`, answered with `Authorization`.
    Www,
    /// 407 with `Proxy-Authenticate`, answered with `Proxy-Authorization`.
    Proxy,
}

impl ChallengeKind {
    /// The kind a status code asks for (401 or 407).
    pub fn from_status(status: u16) -> Option<Self> {
        match status {
            401 => Some(ChallengeKind::Www),
            407 => Some(ChallengeKind::Proxy),
            _ => None,
        }
    }

    /// The challenge header name.
    pub fn challenge_header(self) -> &'static str {
        match self {
            ChallengeKind::Www => "WWW-Authenticate",
            ChallengeKind::Proxy => "Proxy-Authenticate",
        }
    }

    /// The header name carrying the answer.
    pub fn credentials_header(self) -> &'static str {
        match self {
            ChallengeKind::Www => "Authorization",
            ChallengeKind::Proxy => "Proxy-Authorization",
        }
    }
}

/// The typed content of a `Digest` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestChallenge {
    /// `realm` (required).
    pub realm: String,
    /// `nonce` (required).
    pub nonce: String,
    /// `opaque`, echoed back unchanged.
    pub opaque: Option<String>,
    /// `stale=true`: the nonce expired but the credentials were right: retry with this nonce.
    pub stale: bool,
    /// The `algorithm` token as written (`None`: absent, which means MD5).
    pub algorithm_token: Option<String>,
    /// The `qop` options, raw tokens in the offered order (empty: legacy RFC 2069 digest).
    pub qop_options: Vec<String>,
    /// `domain`, space-separated URIs (informational).
    pub domain: Option<String>,
    /// `userhash=true`: the server accepts a hashed username (RFC 7616 §3.4.4).
    pub userhash: bool,
    /// `charset=UTF-8` (RFC 7616 §4).
    pub charset: Option<String>,
}

impl DigestChallenge {
    /// Read a digest challenge from a generic one.
    pub fn from_challenge(c: &Challenge) -> Result<Self, AuthError> {
        if !c.is_scheme("Digest") {
            return Err(AuthError::NotDigest {
                scheme: c.scheme.clone(),
            });
        }
        check_unique(&c.params)?;
        let get = |n: &str| c.param(n).map(str::to_owned);
        Ok(DigestChallenge {
            realm: get("realm").ok_or(AuthError::MissingParam { param: "realm" })?,
            nonce: get("nonce").ok_or(AuthError::MissingParam { param: "nonce" })?,
            opaque: get("opaque"),
            stale: c
                .param("stale")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            algorithm_token: get("algorithm"),
            qop_options: c
                .param("qop")
                .map(|q| {
                    q.split(',')
                        .map(|t| t.trim().to_owned())
                        .filter(|t| !t.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            domain: get("domain"),
            userhash: c
                .param("userhash")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            charset: get("charset"),
        })
    }

    /// Parse a `WWW-Authenticate`/`Proxy-Authenticate` value holding a digest challenge.
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        Self::from_challenge(&Challenge::parse(value)?)
    }

    /// The algorithm, if supported (absent means MD5).
    pub fn algorithm(&self) -> Option<Algorithm> {
        match &self.algorithm_token {
            None => Some(Algorithm::Md5),
            Some(t) => Algorithm::parse(t),
        }
    }

    /// The qop to use: `auth` when offered; `auth-int` only when it is the only one we know;
    /// `Ok(None)` for a legacy challenge without qop; an error when qop is offered but none
    /// of the options is supported.
    pub fn choose_qop(&self) -> Result<Option<Qop>, AuthError> {
        if self.qop_options.is_empty() {
            return Ok(None);
        }
        let known: Vec<Qop> = self
            .qop_options
            .iter()
            .filter_map(|t| Qop::parse(t))
            .collect();
        if known.contains(&Qop::Auth) {
            Ok(Some(Qop::Auth))
        } else if known.contains(&Qop::AuthInt) {
            Ok(Some(Qop::AuthInt))
        } else {
            Err(AuthError::InvalidParam {
                param: "qop",
                value: self.qop_options.join(","),
            })
        }
    }

    /// The generic header value (quoting as RFC 7616 §3.3 writes it).
    pub fn to_challenge(&self) -> Challenge {
        let mut c = Challenge::new("Digest")
            .with(AuthParam::quoted("realm", &self.realm))
            .with(AuthParam::quoted("nonce", &self.nonce));
        if let Some(d) = &self.domain {
            c = c.with(AuthParam::quoted("domain", d));
        }
        if let Some(o) = &self.opaque {
            c = c.with(AuthParam::quoted("opaque", o));
        }
        if self.stale {
            c = c.with(AuthParam::token("stale", "true"));
        }
        if let Some(a) = &self.algorithm_token {
            c = c.with(AuthParam::token("algorithm", a));
        }
        if !self.qop_options.is_empty() {
            c = c.with(AuthParam::quoted("qop", self.qop_options.join(",")));
        }
        if let Some(cs) = &self.charset {
            c = c.with(AuthParam::token("charset", cs));
        }
        if self.userhash {
            c = c.with(AuthParam::token("userhash", "true"));
        }
        c
    }
}

fn check_unique(params: &[AuthParam]) -> Result<(), AuthError> {
    for (i, p) in params.iter().enumerate() {
        if params[..i]
            .iter()
            .any(|q| q.name.eq_ignore_ascii_case(&p.name))
        {
            return Err(AuthError::DuplicateParam {
                param: p.name.clone(),
            });
        }
    }
    Ok(())
}

/// The typed content of `Digest` credentials (`Authorization`/`Proxy-Authorization`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestCredentials {
    /// `username` (or its hash when `userhash` is true).
    pub username: String,
    /// `realm`.
    pub realm: String,
    /// `nonce` from the challenge.
    pub nonce: String,
    /// `uri`: the Request-URI.
    pub uri: String,
    /// `response`: the hex digest.
    pub response: String,
    /// `algorithm` token, if sent.
    pub algorithm_token: Option<String>,
    /// `cnonce` (with qop).
    pub cnonce: Option<String>,
    /// `opaque`, echoed from the challenge.
    pub opaque: Option<String>,
    /// `qop` chosen (raw token).
    pub qop: Option<String>,
    /// `nc` nonce count (with qop).
    pub nc: Option<u32>,
    /// `userhash=true`.
    pub userhash: bool,
}

impl DigestCredentials {
    /// Read digest credentials from a generic value.
    pub fn from_credentials(c: &Credentials) -> Result<Self, AuthError> {
        if !c.is_scheme("Digest") {
            return Err(AuthError::NotDigest {
                scheme: c.scheme.clone(),
            });
        }
        check_unique(&c.params)?;
        let get = |n: &str| c.param(n).map(str::to_owned);
        let req = |n: &'static str| get(n).ok_or(AuthError::MissingParam { param: n });
        let nc = match c.param("nc") {
            None => None,
            Some(v) => Some(
                u32::from_str_radix(v, 16)
                    .ok()
                    .filter(|_| v.len() == 8)
                    .ok_or_else(|| AuthError::InvalidParam {
                        param: "nc",
                        value: v.to_owned(),
                    })?,
            ),
        };
        Ok(DigestCredentials {
            username: req("username")?,
            realm: req("realm")?,
            nonce: req("nonce")?,
            uri: req("uri")?,
            response: req("response")?,
            algorithm_token: get("algorithm"),
            cnonce: get("cnonce"),
            opaque: get("opaque"),
            qop: get("qop"),
            nc,
            userhash: c
                .param("userhash")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        })
    }

    /// Parse an `Authorization`/`Proxy-Authorization` value holding digest credentials.
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        Self::from_credentials(&Credentials::parse(value)?)
    }

    /// The generic header value, quoted as RFC 3261 §25.1 / RFC 7616 §3.4 write it
    /// (`algorithm`, `qop`, `nc`, `userhash` as tokens, the rest quoted).
    pub fn to_credentials(&self) -> Credentials {
        let mut c = Credentials::new("Digest")
            .with(AuthParam::quoted("username", &self.username))
            .with(AuthParam::quoted("realm", &self.realm))
            .with(AuthParam::quoted("nonce", &self.nonce))
            .with(AuthParam::quoted("uri", &self.uri))
            .with(AuthParam::quoted("response", &self.response));
        if let Some(a) = &self.algorithm_token {
            c = c.with(AuthParam::token("algorithm", a));
        }
        if let Some(cn) = &self.cnonce {
            c = c.with(AuthParam::quoted("cnonce", cn));
        }
        if let Some(o) = &self.opaque {
            c = c.with(AuthParam::quoted("opaque", o));
        }
        if let Some(q) = &self.qop {
            c = c.with(AuthParam::token("qop", q));
        }
        if let Some(nc) = self.nc {
            c = c.with(AuthParam::token("nc", format!("{nc:08x}")));
        }
        if self.userhash {
            c = c.with(AuthParam::token("userhash", "true"));
        }
        c
    }
}

/// Everything the digest `response` depends on (RFC 7616 §3.4.1).
#[derive(Debug, Clone, Copy)]
pub struct ResponseInputs<'a> {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The real (unhashed) username.
    pub username: &'a str,
    /// The realm.
    pub realm: &'a str,
    /// The password.
    pub password: &'a str,
    /// The server nonce.
    pub nonce: &'a str,
    /// The client nonce (ignored without qop, unless the algorithm is `-sess`).
    pub cnonce: &'a str,
    /// The nonce count (ignored without qop).
    pub nc: u32,
    /// The qop (`None`: legacy RFC 2069 computation).
    pub qop: Option<Qop>,
    /// The request method (`REGISTER`).
    pub method: &'a str,
    /// The digest-uri (the Request-URI as sent).
    pub uri: &'a str,
    /// The message body (used by `auth-int` only).
    pub body: &'a [u8],
}

/// Compute the digest `response` value (lowercase hex).
pub fn digest_response(i: &ResponseInputs<'_>) -> String {
    let h = |s: &str| i.algorithm.hash_hex(s.as_bytes());
    let mut ha1 = h(&format!("{}:{}:{}", i.username, i.realm, i.password));
    if i.algorithm.is_session() {
        ha1 = h(&format!("{ha1}:{}:{}", i.nonce, i.cnonce));
    }
    let ha2 = match i.qop {
        Some(Qop::AuthInt) => h(&format!(
            "{}:{}:{}",
            i.method,
            i.uri,
            i.algorithm.hash_hex(i.body)
        )),
        _ => h(&format!("{}:{}", i.method, i.uri)),
    };
    match i.qop {
        Some(q) => h(&format!(
            "{ha1}:{}:{:08x}:{}:{}:{ha2}",
            i.nonce,
            i.nc,
            i.cnonce,
            q.as_str()
        )),
        None => h(&format!("{ha1}:{}:{ha2}", i.nonce)),
    }
}

/// Compute the `rspauth` value a server sends in `Authentication-Info` (RFC 2617 §3.2.3,
/// RFC 7616 §3.5): the response computation with an empty method (`A2 = ":" digest-uri`);
/// `method` is ignored and `body` is the response body.
pub fn digest_rspauth(i: &ResponseInputs<'_>) -> String {
    digest_response(&ResponseInputs { method: "", ..*i })
}

/// The request being authorized.
#[derive(Debug, Clone, Copy)]
pub struct DigestRequest<'a> {
    /// Method (`REGISTER`, `INVITE`, ...).
    pub method: &'a str,
    /// The Request-URI as it will be sent (the digest-uri).
    pub uri: &'a str,
    /// The body (for `auth-int`).
    pub body: &'a [u8],
}

/// One header to add to the retried request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// Which header (`Authorization` or `Proxy-Authorization`).
    pub kind: ChallengeKind,
    /// The realm answered.
    pub realm: String,
    /// The value.
    pub credentials: Credentials,
}

impl Authorization {
    /// The header name.
    pub fn header_name(&self) -> &'static str {
        self.kind.credentials_header()
    }
}

/// A challenge chosen for a realm, kept to answer later requests without a new round trip.
#[derive(Debug, Clone)]
struct Session {
    kind: ChallengeKind,
    challenge: DigestChallenge,
    algorithm: Algorithm,
    qop: Option<Qop>,
    /// For `-sess` algorithms: the cnonce fixed for this nonce (A1 depends on it).
    sess_cnonce: Option<String>,
    /// The cnonce, nc and digest-uri of the last answer, to check `rspauth` against.
    last: Option<(String, u32, String)>,
}

/// Per-account digest state: credentials, chosen challenges per realm, nonce counts.
///
/// The password never appears in `Debug` output.
#[derive(Clone)]
pub struct DigestClient {
    username: String,
    password: String,
    /// The realms answered (`None`: any).
    realms: Option<Vec<String>>,
    use_userhash: bool,
    sessions: HashMap<String, Session>,
    /// Nonce count per (realm, nonce): nc=00000001, 2, ... for each request using that nonce.
    nonce_counts: HashMap<(String, String), u32>,
}

impl fmt::Debug for DigestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestClient")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("realms_allowed", &self.realms)
            .field("use_userhash", &self.use_userhash)
            .field("realms", &self.sessions.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl DigestClient {
    /// A client answering challenges of any realm with these credentials.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        DigestClient {
            username: username.into(),
            password: password.into(),
            realms: None,
            use_userhash: false,
            sessions: HashMap::new(),
            nonce_counts: HashMap::new(),
        }
    }

    /// Only answer challenges of this realm (others are ignored).
    pub fn with_realm(mut self, realm: impl Into<String>) -> Self {
        self.set_realms(Some(vec![realm.into()]));
        self
    }

    /// Only answer challenges of these realms (compared exactly, case included).
    pub fn with_realms<S: Into<String>>(mut self, realms: impl IntoIterator<Item = S>) -> Self {
        self.set_realms(Some(realms.into_iter().map(Into::into).collect()));
        self
    }

    /// The realms answered from now on: `Some(list)` only those, `None` any. Challenges
    /// answered before for realms no longer allowed are forgotten (no credentials go to them
    /// up front either).
    pub fn set_realms(&mut self, realms: Option<Vec<String>>) {
        if let Some(allowed) = &realms {
            self.sessions.retain(|r, _| allowed.contains(r));
            self.nonce_counts.retain(|(r, _), _| allowed.contains(r));
        }
        self.realms = realms;
    }

    /// The realms this client answers (`None`: any).
    pub fn realms(&self) -> Option<&[String]> {
        self.realms.as_deref()
    }

    /// Whether credentials may go to `realm`.
    fn answers(&self, realm: &str) -> bool {
        self.realms
            .as_ref()
            .is_none_or(|allowed| allowed.iter().any(|r| r == realm))
    }

    /// Send a hashed username when the server offers `userhash=true` (RFC 7616 §3.4.4).
    pub fn with_userhash(mut self, enabled: bool) -> Self {
        self.use_userhash = enabled;
        self
    }

    /// The username.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// How many requests used this nonce so far (the last `nc` sent; 0 if none).
    pub fn nonce_count(&self, realm: &str, nonce: &str) -> u32 {
        self.nonce_counts
            .get(&(realm.to_owned(), nonce.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// Answer the challenges of a 401 or 407.
    ///
    /// `challenges` are all the challenge header values of the response (unknown schemes and
    /// algorithms are skipped; per realm the strongest algorithm wins). `previous` are the
    /// credentials the challenged request carried (empty for a first attempt): if a realm
    /// challenges again without `stale=true`, the credentials were wrong and
    /// [`AuthError::Rejected`] is returned instead of retrying forever.
    pub fn respond<R: Rng + ?Sized>(
        &mut self,
        kind: ChallengeKind,
        challenges: &[Challenge],
        request: &DigestRequest<'_>,
        previous: &[Credentials],
        rng: &mut R,
    ) -> Result<Vec<Authorization>, AuthError> {
        let mut best: Vec<(DigestChallenge, Algorithm, Option<Qop>)> = Vec::new();
        let mut offered = Vec::new();
        let mut refused = None;
        for c in challenges {
            offered.push(describe(c));
            let Ok(d) = DigestChallenge::from_challenge(c) else {
                continue;
            };
            if !self.answers(&d.realm) {
                refused.get_or_insert(d.realm);
                continue;
            }
            let (Some(alg), Ok(qop)) = (d.algorithm(), d.choose_qop()) else {
                continue;
            };
            match best.iter_mut().find(|(b, _, _)| b.realm == d.realm) {
                Some(slot) if slot.1.strength() < alg.strength() => *slot = (d, alg, qop),
                Some(_) => {}
                None => best.push((d, alg, qop)),
            }
        }
        if best.is_empty() {
            if let Some(realm) = refused {
                return Err(AuthError::RealmRefused { realm });
            }
            return Err(AuthError::NoSupportedChallenge {
                offered: if offered.is_empty() {
                    "none".to_owned()
                } else {
                    offered.join("; ")
                },
            });
        }
        for (d, _, _) in &best {
            let answered = previous
                .iter()
                .any(|p| p.is_scheme("Digest") && p.param("realm").is_some_and(|r| r == d.realm));
            if answered && !d.stale {
                self.sessions.remove(&d.realm);
                return Err(AuthError::Rejected {
                    realm: d.realm.clone(),
                });
            }
        }
        let mut out = Vec::with_capacity(best.len());
        for (challenge, algorithm, qop) in best {
            let realm = challenge.realm.clone();
            // A new nonce starts a new count; forget counts of this realm's older nonces.
            self.nonce_counts
                .retain(|(r, n), _| *r != realm || *n == challenge.nonce);
            let sess_cnonce = algorithm.is_session().then(|| cnonce(rng));
            self.sessions.insert(
                realm.clone(),
                Session {
                    kind,
                    challenge,
                    algorithm,
                    qop,
                    sess_cnonce,
                    last: None,
                },
            );
            out.push(self.answer(&realm, request, rng));
        }
        Ok(out)
    }

    /// [`respond`](Self::respond) from raw header values; values that do not parse are skipped.
    pub fn respond_to_values<R: Rng + ?Sized>(
        &mut self,
        kind: ChallengeKind,
        values: &[&str],
        request: &DigestRequest<'_>,
        previous: &[Credentials],
        rng: &mut R,
    ) -> Result<Vec<Authorization>, AuthError> {
        let challenges: Vec<Challenge> = values
            .iter()
            .filter_map(|v| Challenge::parse_list(v).ok())
            .flatten()
            .collect();
        self.respond(kind, &challenges, request, previous, rng)
    }

    /// Credentials for a new request from the challenges answered before (nc incremented),
    /// saving the 401/407 round trip for refreshes. Empty if nothing was answered yet.
    pub fn authorize<R: Rng + ?Sized>(
        &mut self,
        request: &DigestRequest<'_>,
        rng: &mut R,
    ) -> Vec<Authorization> {
        let mut realms: Vec<String> = self.sessions.keys().cloned().collect();
        realms.sort();
        realms
            .iter()
            .map(|r| self.answer(r, request, rng))
            .collect()
    }

    /// Take `nextnonce` from an `Authentication-Info` value of `realm` (RFC 7616 §3.5).
    pub fn handle_authentication_info(&mut self, realm: &str, info: &AuthenticationInfo) {
        if let (Some(next), Some(s)) = (info.param("nextnonce"), self.sessions.get_mut(realm))
            && s.challenge.nonce != next
        {
            s.challenge.nonce = next.to_owned();
            s.challenge.stale = false;
            s.sess_cnonce = None;
            let nonce = next.to_owned();
            self.nonce_counts
                .retain(|(r, n), _| r != realm || *n == nonce);
        }
    }

    /// Check the `rspauth` of an `Authentication-Info` from `realm` (mutual authentication,
    /// RFC 7616 §3.5): `Some(true)` if it proves the server knows the password, `Some(false)`
    /// if it does not match, `None` if there is nothing to check (no `rspauth`, or no request
    /// answered for that realm). `body` is the response's body (for `auth-int`).
    pub fn check_rspauth(
        &self,
        realm: &str,
        info: &AuthenticationInfo,
        body: &[u8],
    ) -> Option<bool> {
        let rspauth = info.param("rspauth")?;
        let s = self.sessions.get(realm)?;
        let (last_cnonce, last_nc, uri) = s.last.as_ref()?;
        let cnonce = info.param("cnonce").unwrap_or(last_cnonce);
        let nc = match info.param("nc") {
            Some(v) => u32::from_str_radix(v, 16).ok()?,
            None => *last_nc,
        };
        let qop = match info.param("qop") {
            Some(q) => Some(Qop::parse(q)?),
            None => s.qop,
        };
        let expected = digest_rspauth(&ResponseInputs {
            algorithm: s.algorithm,
            username: &self.username,
            realm,
            password: &self.password,
            nonce: &s.challenge.nonce,
            cnonce,
            nc,
            qop,
            method: "",
            uri,
            body,
        });
        Some(expected.eq_ignore_ascii_case(rspauth))
    }

    /// Forget the answered challenges (after a final failure or a credentials change).
    pub fn reset(&mut self) {
        self.sessions.clear();
        self.nonce_counts.clear();
    }

    fn answer<R: Rng + ?Sized>(
        &mut self,
        realm: &str,
        request: &DigestRequest<'_>,
        rng: &mut R,
    ) -> Authorization {
        let s = self
            .sessions
            .get_mut(realm)
            .expect("answer is only called for realms that have a session");
        if s.algorithm.is_session() && s.sess_cnonce.is_none() {
            s.sess_cnonce = Some(cnonce(rng));
        }
        let s = s.clone();
        let d = &s.challenge;
        let nc = self
            .nonce_counts
            .entry((realm.to_owned(), d.nonce.clone()))
            .or_insert(0);
        *nc = nc.saturating_add(1);
        let nc = *nc;
        let cn = match (&s.sess_cnonce, s.qop) {
            (Some(c), _) => c.clone(),
            (None, Some(_)) => cnonce(rng),
            (None, None) => String::new(),
        };
        let response = digest_response(&ResponseInputs {
            algorithm: s.algorithm,
            username: &self.username,
            realm,
            password: &self.password,
            nonce: &d.nonce,
            cnonce: &cn,
            nc,
            qop: s.qop,
            method: request.method,
            uri: request.uri,
            body: request.body,
        });
        if let Some(live) = self.sessions.get_mut(realm) {
            live.last = Some((cn.clone(), nc, request.uri.to_owned()));
        }
        let userhash = self.use_userhash && d.userhash;
        let username = if userhash {
            s.algorithm
                .hash_hex(format!("{}:{realm}", self.username).as_bytes())
        } else {
            self.username.clone()
        };
        let creds = DigestCredentials {
            username,
            realm: realm.to_owned(),
            nonce: d.nonce.clone(),
            uri: request.uri.to_owned(),
            response,
            // Echo the algorithm the challenge named; MD5 stays implicit when it named none.
            algorithm_token: d
                .algorithm_token
                .as_ref()
                .map(|_| s.algorithm.as_str().to_owned()),
            cnonce: (s.qop.is_some() || s.algorithm.is_session()).then_some(cn),
            opaque: d.opaque.clone(),
            qop: s.qop.map(|q| q.as_str().to_owned()),
            nc: s.qop.map(|_| nc),
            userhash,
        };
        Authorization {
            kind: s.kind,
            realm: realm.to_owned(),
            credentials: creds.to_credentials(),
        }
    }
}

/// A client nonce: 64 random bits as 16 hex digits (RFC 7616 §3.4: enough entropy to defeat
/// chosen-plaintext attacks).
fn cnonce<R: Rng + ?Sized>(rng: &mut R) -> String {
    format!("{:016x}", rng.next_u64())
}

fn describe(c: &Challenge) -> String {
    let mut s = c.scheme.clone();
    if let Some(a) = c.param("algorithm") {
        s.push_str(&format!(" algorithm={a}"));
    }
    if let Some(q) = c.param("qop") {
        s.push_str(&format!(" qop={q}"));
    }
    if let Some(r) = c.param("realm") {
        s.push_str(&format!(" realm={r}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs<'a>(alg: Algorithm) -> ResponseInputs<'a> {
        // RFC 7616 §3.9.1.
        ResponseInputs {
            algorithm: alg,
            username: "Mufasa",
            realm: "http-auth@example.org",
            password: "Circle of Life",
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            nc: 1,
            qop: Some(Qop::Auth),
            method: "GET",
            uri: "/dir/index.html",
            body: b"",
        }
    }

    #[test]
    fn rfc7616_md5_and_sha256_vectors() {
        assert_eq!(
            digest_response(&inputs(Algorithm::Md5)),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
        assert_eq!(
            digest_response(&inputs(Algorithm::Sha256)),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn algorithm_tokens_round_trip() {
        for a in [
            "MD5",
            "md5-SESS",
            "SHA-256",
            "sha-256-sess",
            "SHA-512-256",
            "SHA-512-256-sess",
        ] {
            let alg = Algorithm::parse(a).unwrap();
            assert!(alg.as_str().eq_ignore_ascii_case(a));
        }
        assert_eq!(Algorithm::parse("AKAv1-MD5"), None);
    }

    #[test]
    fn debug_output_redacts_the_password() {
        let c = DigestClient::new("alice", "hunter2");
        let dbg = format!("{c:?}");
        assert!(dbg.contains("alice"));
        assert!(!dbg.contains("hunter2"));
    }
}
