//! Header names (with RFC 3261 §7.3.3 compact forms) and the header index of a message.

use std::fmt;

macro_rules! header_names {
    ($( $(#[$doc:meta])* $variant:ident => $canonical:literal $(, $compact:literal)? ;)*) => {
        /// A SIP header field name.
        ///
        /// Known names are recognized case-insensitively in their long and compact forms;
        /// any other name is [`HeaderName::Other`] and is kept verbatim by the message.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum HeaderName {
            $( $(#[$doc])* $variant, )*
            /// A header Tincan has no typed access for; its name is kept as received.
            Other,
        }

        impl HeaderName {
            /// The canonical (long) spelling, as Tincan prints it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( HeaderName::$variant => $canonical, )*
                    HeaderName::Other => "",
                }
            }

            /// The compact form (RFC 3261 §7.3.3 and the RFCs that define one), if any.
            pub fn compact(self) -> Option<char> {
                match self {
                    $( $( HeaderName::$variant => Some($compact), )? )*
                    _ => None,
                }
            }

            /// Recognizes a header name in long or compact form, ignoring case.
            pub fn from_name(name: &str) -> HeaderName {
                HeaderName::from_bytes(name.as_bytes())
            }

            /// [`from_name`](Self::from_name) on bytes: one table lookup by length and first
            /// letter (a table built at compile time), then at most a few comparisons.
            #[inline]
            pub fn from_bytes(bytes: &[u8]) -> HeaderName {
                let Some(&first) = bytes.first() else {
                    return HeaderName::Other;
                };
                // Upper-case ASCII letters become lower-case; nothing else lands in a..=z.
                let first = first | 0x20;
                if !first.is_ascii_lowercase() || bytes.len() >= MAX_NAME_LEN {
                    return HeaderName::Other;
                }
                let letter = usize::from(first - b'a');
                if bytes.len() == 1 {
                    return COMPACT[letter];
                }
                for &i in &BUCKETS[bytes.len() * 26 + letter] {
                    if i == EMPTY {
                        break;
                    }
                    // Same length (the bucket), so only the bytes are compared.
                    let known = &LOWER[usize::from(i)];
                    if eq_known(bytes, known) {
                        return known.header;
                    }
                }
                HeaderName::Other
            }
        }

        /// Every known header with its canonical name.
        const NAMES: &[(&str, HeaderName)] = &[ $( ($canonical, HeaderName::$variant), )* ];

        /// The header of each compact form, by letter (`a` first).
        const COMPACT: [HeaderName; 26] = {
            let mut t = [HeaderName::Other; 26];
            $( $( t[($compact as u32 - 'a' as u32) as usize] = HeaderName::$variant; )? )*
            t
        };
    };
}

/// Longest header name the table knows, plus one.
const MAX_NAME_LEN: usize = 32;
/// At most this many known names share a length and a first letter.
const PER_BUCKET: usize = 4;
/// An unused place in a bucket.
const EMPTY: u8 = u8::MAX;

/// A known name in lower case and its case mask (0x20 on letters), padded with zeros.
struct Lower {
    name: [u8; MAX_NAME_LEN],
    case: [u8; MAX_NAME_LEN],
    header: HeaderName,
}

/// `NAMES` in lower case with their case masks.
const LOWER: [Lower; NAMES.len()] = {
    let mut t = [const {
        Lower {
            name: [0; MAX_NAME_LEN],
            case: [0; MAX_NAME_LEN],
            header: HeaderName::Other,
        }
    }; NAMES.len()];
    let mut i = 0;
    while i < NAMES.len() {
        let name = NAMES[i].0.as_bytes();
        let mut j = 0;
        while j < name.len() {
            t[i].name[j] = name[j].to_ascii_lowercase();
            if name[j].is_ascii_alphabetic() {
                t[i].case[j] = 0x20;
            }
            j += 1;
        }
        t[i].header = NAMES[i].1;
        i += 1;
    }
    t
};

/// Compares a name with a known one, ignoring ASCII case, a word at a time: `byte | 0x20`
/// lower-cases a letter, and the case mask leaves other bytes as they are. A name shorter
/// than a word is compared as two overlapping halves (the known name is padded, so its
/// arrays can be read past its length).
#[inline]
fn eq_known(bytes: &[u8], known: &Lower) -> bool {
    let n = bytes.len();
    macro_rules! same {
        ($int:ty, $at:expr) => {{
            const W: usize = std::mem::size_of::<$int>();
            let at = $at;
            let read = |s: &[u8]| {
                let mut w = [0u8; W];
                w.copy_from_slice(&s[at..at + W]);
                <$int>::from_le_bytes(w)
            };
            read(bytes) | read(&known.case) == read(&known.name)
        }};
    }
    match n {
        0 => true,
        1 => bytes[0] | known.case[0] == known.name[0],
        2..4 => same!(u16, 0) && same!(u16, n - 2),
        4..8 => same!(u32, 0) && same!(u32, n - 4),
        _ => {
            let mut i = 0;
            while i + 8 <= n {
                if !same!(u64, i) {
                    return false;
                }
                i += 8;
            }
            // The last eight bytes (overlapping the ones already compared).
            i == n || same!(u64, n - 8)
        }
    }
}

/// Indexes into `NAMES` by name length and first letter (`len * 26 + letter`).
const BUCKETS: [[u8; PER_BUCKET]; MAX_NAME_LEN * 26] = {
    let mut t = [[EMPTY; PER_BUCKET]; MAX_NAME_LEN * 26];
    let mut i = 0;
    while i < NAMES.len() {
        let name = NAMES[i].0.as_bytes();
        assert!(name.len() < MAX_NAME_LEN, "header names are short");
        let first = name[0].to_ascii_lowercase();
        assert!(
            first.is_ascii_lowercase(),
            "header names start with a letter"
        );
        let bucket = &mut t[name.len() * 26 + (first - b'a') as usize];
        let mut j = 0;
        while bucket[j] != EMPTY {
            j += 1;
            assert!(
                j < PER_BUCKET,
                "too many names of one length and first letter"
            );
        }
        bucket[j] = i as u8;
        i += 1;
    }
    t
};

header_names! {
    /// `Accept` (RFC 3261 §20.1).
    Accept => "Accept";
    /// `Accept-Contact` (RFC 3841).
    AcceptContact => "Accept-Contact", 'a';
    /// `Accept-Encoding` (RFC 3261 §20.2).
    AcceptEncoding => "Accept-Encoding";
    /// `Accept-Language` (RFC 3261 §20.3).
    AcceptLanguage => "Accept-Language";
    /// `Alert-Info` (RFC 3261 §20.4).
    AlertInfo => "Alert-Info";
    /// `Allow` (RFC 3261 §20.5).
    Allow => "Allow";
    /// `Allow-Events` (RFC 6665 §8.2.2).
    AllowEvents => "Allow-Events", 'u';
    /// `Authentication-Info` (RFC 3261 §20.6).
    AuthenticationInfo => "Authentication-Info";
    /// `Authorization` (RFC 3261 §20.7).
    Authorization => "Authorization";
    /// `Call-ID` (RFC 3261 §20.8).
    CallId => "Call-ID", 'i';
    /// `Call-Info` (RFC 3261 §20.9).
    CallInfo => "Call-Info";
    /// `Contact` (RFC 3261 §20.10).
    Contact => "Contact", 'm';
    /// `Content-Disposition` (RFC 3261 §20.11).
    ContentDisposition => "Content-Disposition";
    /// `Content-Encoding` (RFC 3261 §20.12).
    ContentEncoding => "Content-Encoding", 'e';
    /// `Content-Language` (RFC 3261 §20.13).
    ContentLanguage => "Content-Language";
    /// `Content-Length` (RFC 3261 §20.14).
    ContentLength => "Content-Length", 'l';
    /// `Content-Type` (RFC 3261 §20.15).
    ContentType => "Content-Type", 'c';
    /// `CSeq` (RFC 3261 §20.16).
    CSeq => "CSeq";
    /// `Date` (RFC 3261 §20.17).
    Date => "Date";
    /// `Error-Info` (RFC 3261 §20.18).
    ErrorInfo => "Error-Info";
    /// `Event` (RFC 6665 §8.2.1).
    Event => "Event", 'o';
    /// `Expires` (RFC 3261 §20.19).
    Expires => "Expires";
    /// `From` (RFC 3261 §20.20).
    From => "From", 'f';
    /// `Identity` (RFC 8224).
    Identity => "Identity", 'y';
    /// `In-Reply-To` (RFC 3261 §20.21).
    InReplyTo => "In-Reply-To";
    /// `Max-Forwards` (RFC 3261 §20.22).
    MaxForwards => "Max-Forwards";
    /// `Min-Expires` (RFC 3261 §20.23).
    MinExpires => "Min-Expires";
    /// `Min-SE` (RFC 4028).
    MinSe => "Min-SE";
    /// `MIME-Version` (RFC 3261 §20.24).
    MimeVersion => "MIME-Version";
    /// `Organization` (RFC 3261 §20.25).
    Organization => "Organization";
    /// `Path` (RFC 3327).
    Path => "Path";
    /// `Priority` (RFC 3261 §20.26).
    Priority => "Priority";
    /// `Proxy-Authenticate` (RFC 3261 §20.27).
    ProxyAuthenticate => "Proxy-Authenticate";
    /// `Proxy-Authorization` (RFC 3261 §20.28).
    ProxyAuthorization => "Proxy-Authorization";
    /// `Proxy-Require` (RFC 3261 §20.29).
    ProxyRequire => "Proxy-Require";
    /// `RAck` (RFC 3262).
    RAck => "RAck";
    /// `Reason` (RFC 3326).
    Reason => "Reason";
    /// `Record-Route` (RFC 3261 §20.30).
    RecordRoute => "Record-Route";
    /// `Refer-To` (RFC 3515).
    ReferTo => "Refer-To", 'r';
    /// `Referred-By` (RFC 3892).
    ReferredBy => "Referred-By", 'b';
    /// `Reject-Contact` (RFC 3841).
    RejectContact => "Reject-Contact", 'j';
    /// `Replaces` (RFC 3891).
    Replaces => "Replaces";
    /// `Reply-To` (RFC 3261 §20.31).
    ReplyTo => "Reply-To";
    /// `Request-Disposition` (RFC 3841).
    RequestDisposition => "Request-Disposition", 'd';
    /// `Require` (RFC 3261 §20.32).
    Require => "Require";
    /// `Retry-After` (RFC 3261 §20.33).
    RetryAfter => "Retry-After";
    /// `Route` (RFC 3261 §20.34).
    Route => "Route";
    /// `RSeq` (RFC 3262).
    RSeq => "RSeq";
    /// `Server` (RFC 3261 §20.35).
    Server => "Server";
    /// `Service-Route` (RFC 3608).
    ServiceRoute => "Service-Route";
    /// `Session-Expires` (RFC 4028).
    SessionExpires => "Session-Expires", 'x';
    /// `SIP-ETag` (RFC 3903 §11.3.1).
    SipEtag => "SIP-ETag";
    /// `SIP-If-Match` (RFC 3903 §11.3.2).
    SipIfMatch => "SIP-If-Match";
    /// `Subject` (RFC 3261 §20.36).
    Subject => "Subject", 's';
    /// `Subscription-State` (RFC 6665 §8.2.3).
    SubscriptionState => "Subscription-State";
    /// `Supported` (RFC 3261 §20.37).
    Supported => "Supported", 'k';
    /// `Timestamp` (RFC 3261 §20.38).
    Timestamp => "Timestamp";
    /// `To` (RFC 3261 §20.39).
    To => "To", 't';
    /// `Unsupported` (RFC 3261 §20.40).
    Unsupported => "Unsupported";
    /// `User-Agent` (RFC 3261 §20.41).
    UserAgent => "User-Agent";
    /// `Via` (RFC 3261 §20.42).
    Via => "Via", 'v';
    /// `Warning` (RFC 3261 §20.43).
    Warning => "Warning";
    /// `WWW-Authenticate` (RFC 3261 §20.44).
    WwwAuthenticate => "WWW-Authenticate";
}

impl HeaderName {
    /// True for headers whose grammar allows several comma-separated values on one line
    /// (RFC 3261 §7.3.1), so that they may be split and combined.
    ///
    /// Headers whose values may contain an unquoted comma (Date, WWW-Authenticate,
    /// Authorization...) are not lists.
    pub fn is_list(self) -> bool {
        use HeaderName::*;
        matches!(
            self,
            Accept
                | AcceptContact
                | AcceptEncoding
                | AcceptLanguage
                | AlertInfo
                | Allow
                | AllowEvents
                | CallInfo
                | Contact
                | ContentEncoding
                | ContentLanguage
                | ErrorInfo
                | InReplyTo
                | Path
                | ProxyRequire
                | Reason
                | RecordRoute
                | RejectContact
                | RequestDisposition
                | Require
                | Route
                | ServiceRoute
                | Supported
                | Unsupported
                | Via
                | Warning
        )
    }

    /// True for headers that may appear at most once (RFC 3261 §20, "single-value").
    pub fn is_single(self) -> bool {
        use HeaderName::*;
        matches!(
            self,
            CallId
                | ContentLength
                | ContentType
                | CSeq
                | Date
                | Expires
                | From
                | MaxForwards
                | MinExpires
                | MinSe
                | RAck
                | ReferTo
                | ReferredBy
                | Replaces
                | RSeq
                | SessionExpires
                | SipEtag
                | SipIfMatch
                | SubscriptionState
                | To
        )
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_long_forms() {
        assert_eq!(HeaderName::from_name("v"), HeaderName::Via);
        assert_eq!(HeaderName::from_name("V"), HeaderName::Via);
        assert_eq!(HeaderName::from_name("vIa"), HeaderName::Via);
        assert_eq!(HeaderName::from_name("i"), HeaderName::CallId);
        assert_eq!(HeaderName::from_name("call-id"), HeaderName::CallId);
        assert_eq!(HeaderName::from_name("X-Custom"), HeaderName::Other);
        assert_eq!(HeaderName::from_name("q"), HeaderName::Other);
        assert_eq!(
            HeaderName::from_name("CONTENT-length"),
            HeaderName::ContentLength
        );
        assert_eq!(
            HeaderName::from_name("www-authenticate"),
            HeaderName::WwwAuthenticate
        );
        assert_eq!(HeaderName::from_name("Call\rID"), HeaderName::Other);
        assert_eq!(HeaderName::from_name("Contact_"), HeaderName::Other);
        assert_eq!(HeaderName::from_name(""), HeaderName::Other);
        for name in NAMES {
            let upper = name.0.to_ascii_uppercase();
            assert_eq!(HeaderName::from_name(&upper), name.1, "{upper}");
            assert_eq!(HeaderName::from_name(name.0), name.1);
        }
        for (c, n) in [
            ('i', HeaderName::CallId),
            ('m', HeaderName::Contact),
            ('e', HeaderName::ContentEncoding),
            ('l', HeaderName::ContentLength),
            ('c', HeaderName::ContentType),
            ('f', HeaderName::From),
            ('s', HeaderName::Subject),
            ('k', HeaderName::Supported),
            ('t', HeaderName::To),
            ('v', HeaderName::Via),
            ('o', HeaderName::Event),
            ('r', HeaderName::ReferTo),
            ('u', HeaderName::AllowEvents),
            ('b', HeaderName::ReferredBy),
            ('x', HeaderName::SessionExpires),
            ('y', HeaderName::Identity),
            ('a', HeaderName::AcceptContact),
        ] {
            assert_eq!(HeaderName::from_name(&c.to_string()), n);
            assert_eq!(n.compact(), Some(c));
        }
    }
}
