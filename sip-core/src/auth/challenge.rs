//! Answering a 401/407 to any request (RFC 3261 §22.2, §22.3): the challenges of the
//! response, the credentials the challenged request already carried and the request's
//! method, Request-URI and body give the headers of the retried request. REGISTER's
//! registration state machine and the phone's INVITE and in-dialog requests share this.

use rand_core::Rng;

use super::digest::{AuthError, ChallengeKind, DigestClient, DigestRequest};
use super::header::Credentials;
use crate::message::{HeaderName, Message};

/// A request retried with credentials: the headers to put in place of the old
/// `Authorization`/`Proxy-Authorization` ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeAnswer {
    /// (header name, value) pairs.
    pub headers: Vec<(String, String)>,
}

impl ChallengeAnswer {
    /// `request` with its credentials replaced by these (the CSeq is the caller's business:
    /// a new request of a dialog takes the dialog's next number, RFC 3261 §22.2).
    pub fn apply(&self, request: &Message) -> Message {
        let mut retried = request.clone();
        retried.remove_header(HeaderName::Authorization);
        retried.remove_header(HeaderName::ProxyAuthorization);
        for (n, v) in &self.headers {
            retried.push_header_named(n, v);
        }
        retried
    }
}

/// Answers the 401 or 407 `response` to `request` with `client`'s credentials.
///
/// # Errors
///
/// [`AuthError`] when the response is not a challenge we can answer
/// ([`AuthError::RealmRefused`] when every challenge is for a realm `client` does not answer:
/// see [`DigestClient::with_realms`]), or when the same realm
/// challenges credentials we already sent without `stale=true` (the password is wrong:
/// retrying would loop).
pub fn answer_challenge<R: Rng + ?Sized>(
    client: &mut DigestClient,
    request: &Message,
    response: &Message,
    rng: &mut R,
) -> Result<ChallengeAnswer, AuthError> {
    let kind = ChallengeKind::from_status(response.status().unwrap_or(0)).ok_or(
        AuthError::MissingParam {
            param: "a 401 or 407 challenge",
        },
    )?;
    let values: Vec<&str> = response
        .header_lines_named(kind.challenge_header())
        .filter_map(Result::ok)
        .collect();
    let previous: Vec<Credentials> = request
        .header_lines_named(kind.credentials_header())
        .filter_map(Result::ok)
        .filter_map(|v| Credentials::parse(v).ok())
        .collect();
    let method = request.method().map(|m| m.to_string()).unwrap_or_default();
    let uri = request.uri_text().unwrap_or("");
    let body = request.body().clone();
    let answers = client.respond_to_values(
        kind,
        &values,
        &DigestRequest {
            method: &method,
            uri,
            body: &body,
        },
        &previous,
        rng,
    )?;
    Ok(ChallengeAnswer {
        headers: answers
            .iter()
            .map(|a| (a.header_name().to_owned(), a.credentials.to_string()))
            .collect(),
    })
}
