//! Presence documents: PIDF (RFC 3863) with the RPID activities (RFC 4480) and the data
//! model's `<dm:person>` (RFC 4479).
//!
//! [`PresenceDocument::parse`] reads what real servers and phones send, leniently: namespaces
//! are matched by URI whatever their prefix (and an undeclared or missing namespace is taken
//! for the one the element name suggests), unknown elements and extensions (`<caps:servcaps>`,
//! `<cipid:card>`, timestamps...) are skipped, any number of tuples and persons are read.
//! Input that is not well-formed XML, or not a `<presence>` document, is a [`PidfError`];
//! nothing panics, and the nesting depth is bounded.
//!
//! [`PresenceDocument::to_xml`] writes the form most phones read (baresip, for one, matches
//! `<basic>` and `<rpid:busy/>` literally): a default PIDF namespace, the `dm` and `rpid`
//! prefixes, empty activity elements.
//!
//! ```
//! use tincan_sip::pidf::{Activity, PresenceDocument, Status};
//!
//! let mut doc = PresenceDocument::of_status("sip:alice@example.com", Status::Busy, Some("In a meeting"));
//! doc.persons[0].activities.push(Activity::OnThePhone);
//! let xml = doc.to_xml();
//! assert!(xml.contains("<rpid:on-the-phone/>"));
//! let back = PresenceDocument::parse(xml.as_bytes()).unwrap();
//! assert_eq!(back.status(), Status::Busy);
//! assert_eq!(back.note(), Some("In a meeting"));
//! ```

use std::fmt::Write as _;

/// The body type of a PIDF document (RFC 3863 §4).
pub const CONTENT_TYPE: &str = "application/pidf+xml";

/// The PIDF namespace (RFC 3863 §4.1).
pub const NS_PIDF: &str = "urn:ietf:params:xml:ns:pidf";

/// The presence data model namespace of `<dm:person>` and `<dm:note>` (RFC 4479 §4).
pub const NS_DATA_MODEL: &str = "urn:ietf:params:xml:ns:pidf:data-model";

/// The RPID namespace of `<rpid:activities>` (RFC 4480 §4).
pub const NS_RPID: &str = "urn:ietf:params:xml:ns:pidf:rpid";

/// How deep elements may nest before a document is refused (PIDF needs about six levels).
pub const MAX_DEPTH: usize = 32;

/// The largest document parsed, in bytes.
pub const MAX_SIZE: usize = 64 * 1024;

/// Why a presence document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PidfError {
    /// The body is not UTF-8.
    #[error("presence document is not utf-8")]
    NotUtf8,
    /// The body is larger than [`MAX_SIZE`].
    #[error("presence document is larger than {MAX_SIZE} bytes")]
    TooLarge,
    /// Elements nest deeper than [`MAX_DEPTH`].
    #[error("presence document nests deeper than {MAX_DEPTH} elements")]
    TooDeep,
    /// Not well-formed XML.
    #[error("malformed presence document at byte {at}: {what}")]
    Malformed {
        /// Where, in bytes from the start.
        at: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// Well-formed, but its root element is not `<presence>`.
    #[error("not a pidf document: the root element is <{0}>")]
    NotPresence(String),
}

/// The basic status of a tuple (RFC 3863 §4.1.4): reachable or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basic {
    /// `open`: willing to communicate.
    Open,
    /// `closed`.
    Closed,
}

/// An RPID activity (RFC 4480 §3.2); the ones a phone acts on have variants, the others keep
/// their element name.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Activity {
    /// `<rpid:away/>`.
    Away,
    /// `<rpid:busy/>`.
    Busy,
    /// `<rpid:on-the-phone/>`.
    OnThePhone,
    /// Any other activity (`meeting`, `meal`, `vacation`...), by its local name.
    Other(String),
}

impl Activity {
    fn from_name(name: &str) -> Activity {
        match name {
            "away" => Activity::Away,
            "busy" => Activity::Busy,
            "on-the-phone" => Activity::OnThePhone,
            other => Activity::Other(other.to_owned()),
        }
    }

    /// The element's local name.
    pub fn name(&self) -> &str {
        match self {
            Activity::Away => "away",
            Activity::Busy => "busy",
            Activity::OnThePhone => "on-the-phone",
            Activity::Other(n) => n,
        }
    }

    /// What the activity says of availability, if anything.
    fn status(&self) -> Option<Status> {
        match self.name() {
            "busy" | "on-the-phone" | "meeting" | "appointment" | "performance"
            | "presentation" | "worship" => Some(Status::Busy),
            "away" | "vacation" | "holiday" | "meal" | "breakfast" | "lunch" | "dinner"
            | "sleeping" | "travel" | "in-transit" | "looking-for-work" => Some(Status::Away),
            _ => None,
        }
    }
}

/// What a presence document comes to, for a person looking at a contact list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum Status {
    /// Reachable (`open`, no busy or away activity).
    Available,
    /// Reachable, but away from the phone (`<rpid:away/>` and the like).
    Away,
    /// Reachable, but busy (`<rpid:busy/>`, `<rpid:on-the-phone/>`, a meeting...).
    Busy,
    /// Not reachable (`closed`, or nothing known).
    Offline,
}

impl Status {
    /// The lowercase name: `available`, `away`, `busy`, `offline`.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Available => "available",
            Status::Away => "away",
            Status::Busy => "busy",
            Status::Offline => "offline",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Status {
    /// `available` (or `open`, `online`), `away`, `busy`, `offline` (or `closed`), any case.
    pub fn from_name(name: &str) -> Option<Status> {
        match name.trim().to_ascii_lowercase().as_str() {
            "available" | "open" | "online" => Some(Status::Available),
            "away" => Some(Status::Away),
            "busy" => Some(Status::Busy),
            "offline" | "closed" => Some(Status::Offline),
            _ => None,
        }
    }
}

/// A `<tuple>`: one way to reach the presentity (RFC 3863 §4.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tuple {
    /// Its `id`.
    pub id: String,
    /// `<status><basic>`, if given.
    pub basic: Option<Basic>,
    /// RPID activities put inside the tuple's `<status>` (some phones do).
    pub activities: Vec<Activity>,
    /// `<contact>`.
    pub contact: Option<String>,
    /// The first `<note>`.
    pub note: Option<String>,
}

/// A `<dm:person>`: the human behind the presentity (RFC 4479 §3.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Person {
    /// Its `id`.
    pub id: String,
    /// `<rpid:activities>`.
    pub activities: Vec<Activity>,
    /// The first `<dm:note>`.
    pub note: Option<String>,
}

/// A PIDF document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PresenceDocument {
    /// The presentity's URI (`entity`).
    pub entity: String,
    /// The tuples, in document order.
    pub tuples: Vec<Tuple>,
    /// The persons, in document order.
    pub persons: Vec<Person>,
    /// The `<note>`s directly under `<presence>`.
    pub notes: Vec<String>,
}

impl PresenceDocument {
    /// The document a phone publishes for `status`: one tuple (`open`, or `closed` when
    /// offline) and one person with the activity of `Away` or `Busy` and the note.
    pub fn of_status(entity: &str, status: Status, note: Option<&str>) -> PresenceDocument {
        let basic = if status == Status::Offline {
            Basic::Closed
        } else {
            Basic::Open
        };
        let activities = match status {
            Status::Away => vec![Activity::Away],
            Status::Busy => vec![Activity::Busy],
            Status::Available | Status::Offline => Vec::new(),
        };
        PresenceDocument {
            entity: entity.to_owned(),
            tuples: vec![Tuple {
                id: "t1".to_owned(),
                basic: Some(basic),
                ..Tuple::default()
            }],
            persons: vec![Person {
                id: "p1".to_owned(),
                activities,
                note: note.map(str::to_owned),
            }],
            notes: Vec::new(),
        }
    }

    /// What the document comes to: `Offline` unless a tuple is `open` (or no tuple says,
    /// and activities are given); then `Busy` or `Away` if an activity says so (busy wins),
    /// else `Available`.
    pub fn status(&self) -> Status {
        let open = self.tuples.iter().any(|t| t.basic == Some(Basic::Open));
        let said = self.tuples.iter().any(|t| t.basic.is_some());
        let activities = self
            .persons
            .iter()
            .flat_map(|p| p.activities.iter())
            .chain(self.tuples.iter().flat_map(|t| t.activities.iter()))
            .filter_map(Activity::status)
            .collect::<Vec<_>>();
        if !open && (said || activities.is_empty()) {
            return Status::Offline;
        }
        if activities.contains(&Status::Busy) {
            Status::Busy
        } else if activities.contains(&Status::Away) {
            Status::Away
        } else {
            Status::Available
        }
    }

    /// The note shown with the status: a person's, else a tuple's, else the document's.
    pub fn note(&self) -> Option<&str> {
        self.persons
            .iter()
            .filter_map(|p| p.note.as_deref())
            .chain(self.tuples.iter().filter_map(|t| t.note.as_deref()))
            .chain(self.notes.iter().map(String::as_str))
            .find(|n| !n.trim().is_empty())
    }

    /// The document as XML.
    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n");
        let _ = write!(
            out,
            "<presence xmlns=\"{NS_PIDF}\" xmlns:dm=\"{NS_DATA_MODEL}\" xmlns:rpid=\"{NS_RPID}\" entity=\"{}\">\r\n",
            escape(&self.entity)
        );
        for t in &self.tuples {
            let _ = write!(out, " <tuple id=\"{}\">\r\n  <status>", escape(&t.id));
            if let Some(b) = t.basic {
                let b = match b {
                    Basic::Open => "open",
                    Basic::Closed => "closed",
                };
                let _ = write!(out, "<basic>{b}</basic>");
            }
            out.push_str("</status>\r\n");
            if let Some(c) = &t.contact {
                let _ = write!(out, "  <contact>{}</contact>\r\n", escape(c));
            }
            if let Some(n) = &t.note {
                let _ = write!(out, "  <note>{}</note>\r\n", escape(n));
            }
            out.push_str(" </tuple>\r\n");
        }
        for p in &self.persons {
            let _ = write!(out, " <dm:person id=\"{}\">\r\n", escape(&p.id));
            if !p.activities.is_empty() {
                out.push_str("  <rpid:activities>");
                for a in &p.activities {
                    if is_name(a.name()) {
                        let _ = write!(out, "<rpid:{}/>", a.name());
                    }
                }
                out.push_str("</rpid:activities>\r\n");
            }
            if let Some(n) = &p.note {
                let _ = write!(out, "  <dm:note>{}</dm:note>\r\n", escape(n));
            }
            out.push_str(" </dm:person>\r\n");
        }
        for n in &self.notes {
            let _ = write!(out, " <note>{}</note>\r\n", escape(n));
        }
        out.push_str("</presence>\r\n");
        out
    }

    /// Reads a PIDF document (leniently; see the module documentation).
    pub fn parse(body: &[u8]) -> Result<PresenceDocument, PidfError> {
        if body.len() > MAX_SIZE {
            return Err(PidfError::TooLarge);
        }
        let text = std::str::from_utf8(body).map_err(|_| PidfError::NotUtf8)?;
        let root = xml::parse(text)?;
        if root.local != "presence" || !(root.ns == NS_PIDF || root.ns.is_empty()) {
            return Err(PidfError::NotPresence(root.local.clone()));
        }
        let mut doc = PresenceDocument {
            entity: root.attr("entity").unwrap_or_default().to_owned(),
            ..PresenceDocument::default()
        };
        for child in &root.children {
            match child.local.as_str() {
                "tuple" if child.is_in(&[NS_PIDF]) => doc.tuples.push(read_tuple(child)),
                "person" if child.is_in(&[NS_DATA_MODEL, NS_PIDF]) => {
                    doc.persons.push(read_person(child));
                }
                "note" if child.is_in(&[NS_PIDF, NS_DATA_MODEL]) => {
                    doc.notes.push(child.text.trim().to_owned());
                }
                _ => {}
            }
        }
        Ok(doc)
    }
}

fn read_tuple(e: &xml::Element) -> Tuple {
    let mut t = Tuple {
        id: e.attr("id").unwrap_or_default().to_owned(),
        ..Tuple::default()
    };
    for child in &e.children {
        match child.local.as_str() {
            "status" if child.is_in(&[NS_PIDF]) => {
                for s in &child.children {
                    match s.local.as_str() {
                        "basic" if s.is_in(&[NS_PIDF]) && t.basic.is_none() => {
                            t.basic = match s.text.trim().to_ascii_lowercase().as_str() {
                                "open" => Some(Basic::Open),
                                "closed" => Some(Basic::Closed),
                                _ => None,
                            };
                        }
                        "activities" if s.is_in(&[NS_RPID]) => {
                            t.activities.extend(read_activities(s));
                        }
                        _ => {}
                    }
                }
            }
            "contact" if child.is_in(&[NS_PIDF]) && t.contact.is_none() => {
                t.contact = Some(child.text.trim().to_owned());
            }
            "note" if child.is_in(&[NS_PIDF, NS_DATA_MODEL]) && t.note.is_none() => {
                t.note = Some(child.text.trim().to_owned());
            }
            _ => {}
        }
    }
    t
}

fn read_person(e: &xml::Element) -> Person {
    let mut p = Person {
        id: e.attr("id").unwrap_or_default().to_owned(),
        ..Person::default()
    };
    for child in &e.children {
        match child.local.as_str() {
            "activities" if child.is_in(&[NS_RPID]) => p.activities.extend(read_activities(child)),
            "note" if child.is_in(&[NS_DATA_MODEL, NS_PIDF, NS_RPID]) && p.note.is_none() => {
                p.note = Some(child.text.trim().to_owned());
            }
            _ => {}
        }
    }
    p
}

fn read_activities(e: &xml::Element) -> Vec<Activity> {
    e.children
        .iter()
        .filter(|a| a.is_in(&[NS_RPID]) && a.local != "note")
        .map(|a| Activity::from_name(&a.local))
        .collect()
}

/// Whether `name` may be written as an element name as it is.
fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !name.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.')
}

/// Text and attribute values with `<`, `>`, `&` and quotes escaped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Just enough XML for presence documents: elements, attributes, namespaces, text,
/// character and predefined entity references, comments, CDATA, processing instructions
/// and a DOCTYPE without an internal subset (skipped).
mod xml {
    use super::{MAX_DEPTH, PidfError};

    /// An element with its namespace resolved.
    #[derive(Debug, Default)]
    pub(super) struct Element {
        /// The namespace URI; empty when none is declared (or the prefix is undeclared).
        pub(super) ns: String,
        /// The local name.
        pub(super) local: String,
        /// The attributes, names as written.
        pub(super) attrs: Vec<(String, String)>,
        pub(super) children: Vec<Element>,
        /// The text directly inside (all pieces joined).
        pub(super) text: String,
    }

    impl Element {
        pub(super) fn attr(&self, name: &str) -> Option<&str> {
            self.attrs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }

        /// In one of `namespaces`, or in no known namespace at all (a lenient reading of
        /// documents that forgot to declare theirs).
        pub(super) fn is_in(&self, namespaces: &[&str]) -> bool {
            self.ns.is_empty() || namespaces.contains(&self.ns.as_str())
        }
    }

    fn malformed(at: usize, what: &'static str) -> PidfError {
        PidfError::Malformed { at, what }
    }

    struct Open {
        element: Element,
        /// The name as written, to match the end tag.
        qname: String,
        /// The prefix declarations of this element: (prefix, URI); "" is the default.
        declared: Vec<(String, String)>,
    }

    /// Parses a document; its root element.
    pub(super) fn parse(text: &str) -> Result<Element, PidfError> {
        let bytes = text.as_bytes();
        let mut i = 0;
        let mut stack: Vec<Open> = Vec::new();
        let mut root: Option<Element> = None;
        while i < bytes.len() {
            if bytes[i] != b'<' {
                let end = text[i..].find('<').map_or(bytes.len(), |n| i + n);
                let piece = &text[i..end];
                match stack.last_mut() {
                    Some(open) => open.element.text.push_str(&unescape(piece, i)?),
                    None if piece.trim().is_empty() => {}
                    None => return Err(malformed(i, "text outside the root element")),
                }
                i = end;
                continue;
            }
            let rest = &text[i..];
            if rest.starts_with("<?") {
                i += find(rest, "?>", i)? + 2;
            } else if rest.starts_with("<!--") {
                i += find(rest, "-->", i)? + 3;
            } else if rest.starts_with("<![CDATA[") {
                let n = find(rest, "]]>", i)?;
                match stack.last_mut() {
                    Some(open) => open.element.text.push_str(&rest[9..n]),
                    None => return Err(malformed(i, "cdata outside the root element")),
                }
                i += n + 3;
            } else if rest.starts_with("<!") {
                if rest[..find(rest, ">", i)?].contains('[') {
                    return Err(malformed(i, "internal dtd subsets are not read"));
                }
                i += find(rest, ">", i)? + 1;
            } else if let Some(after) = rest.strip_prefix("</") {
                let n = find(after, ">", i)?;
                let name = after[..n].trim();
                let Some(open) = stack.pop() else {
                    return Err(malformed(i, "end tag without a start tag"));
                };
                if open.qname != name {
                    return Err(malformed(i, "end tag does not match its start tag"));
                }
                close(open, &mut stack, &mut root, i)?;
                i += 2 + n + 1;
            } else {
                let (open, empty, len) = start_tag(rest, i, &stack)?;
                if root.is_some() {
                    return Err(malformed(i, "a second root element"));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(PidfError::TooDeep);
                }
                if empty {
                    close(open, &mut stack, &mut root, i)?;
                } else {
                    stack.push(open);
                }
                i += len;
            }
        }
        if !stack.is_empty() {
            return Err(malformed(bytes.len(), "unclosed element"));
        }
        root.ok_or(malformed(bytes.len(), "no root element"))
    }

    fn find(haystack: &str, needle: &str, at: usize) -> Result<usize, PidfError> {
        haystack
            .find(needle)
            .ok_or(malformed(at, "unterminated markup"))
    }

    fn close(
        open: Open,
        stack: &mut [Open],
        root: &mut Option<Element>,
        at: usize,
    ) -> Result<(), PidfError> {
        match stack.last_mut() {
            Some(parent) => parent.element.children.push(open.element),
            None => {
                if root.is_some() {
                    return Err(malformed(at, "a second root element"));
                }
                *root = Some(open.element);
            }
        }
        Ok(())
    }

    /// A start tag at the beginning of `tag`: the element, whether it is empty (`/>`), and
    /// its length.
    fn start_tag(tag: &str, at: usize, stack: &[Open]) -> Result<(Open, bool, usize), PidfError> {
        let bytes = tag.as_bytes();
        let mut i = 1;
        let name_end = tag[i..]
            .find(|c: char| c.is_whitespace() || c == '/' || c == '>')
            .map(|n| i + n)
            .ok_or(malformed(at, "unterminated start tag"))?;
        let qname = &tag[i..name_end];
        if qname.is_empty() || !qname.chars().all(is_name_char) {
            return Err(malformed(at, "bad element name"));
        }
        i = name_end;
        let mut attrs = Vec::new();
        let empty;
        loop {
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            match bytes.get(i) {
                None => return Err(malformed(at, "unterminated start tag")),
                Some(b'>') => {
                    empty = false;
                    i += 1;
                    break;
                }
                Some(b'/') if bytes.get(i + 1) == Some(&b'>') => {
                    empty = true;
                    i += 2;
                    break;
                }
                Some(_) => {}
            }
            let eq = tag[i..]
                .find('=')
                .map(|n| i + n)
                .ok_or(malformed(at + i, "attribute without a value"))?;
            let name = tag[i..eq].trim();
            if name.is_empty() || !name.chars().all(is_name_char) {
                return Err(malformed(at + i, "bad attribute name"));
            }
            i = eq + 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            let quote = match bytes.get(i) {
                Some(q @ (b'"' | b'\'')) => *q as char,
                _ => return Err(malformed(at + i, "unquoted attribute value")),
            };
            let close = tag[i + 1..]
                .find(quote)
                .map(|n| i + 1 + n)
                .ok_or(malformed(at + i, "unterminated attribute value"))?;
            let raw = &tag[i + 1..close];
            if raw.contains('<') {
                return Err(malformed(at + i, "'<' in an attribute value"));
            }
            attrs.push((name.to_owned(), unescape(raw, at + i)?));
            i = close + 1;
        }
        let mut declared = Vec::new();
        for (n, v) in &attrs {
            if n == "xmlns" {
                declared.push((String::new(), v.clone()));
            } else if let Some(p) = n.strip_prefix("xmlns:") {
                declared.push((p.to_owned(), v.clone()));
            }
        }
        let (prefix, local) = match qname.split_once(':') {
            Some((p, l)) => (p.to_owned(), l.to_owned()),
            None => (String::new(), qname.to_owned()),
        };
        let ns = declared
            .iter()
            .rev()
            .find(|(p, _)| *p == prefix)
            .map(|(_, u)| u.clone())
            .or_else(|| {
                stack.iter().rev().find_map(|o| {
                    o.declared
                        .iter()
                        .rev()
                        .find(|(p, _)| *p == prefix)
                        .map(|(_, u)| u.clone())
                })
            })
            .unwrap_or_default();
        let open = Open {
            element: Element {
                ns,
                local,
                attrs,
                children: Vec::new(),
                text: String::new(),
            },
            qname: qname.to_owned(),
            declared,
        };
        Ok((open, empty, i))
    }

    fn is_name_char(c: char) -> bool {
        c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')
    }

    /// Replaces the predefined entities and character references.
    fn unescape(text: &str, at: usize) -> Result<String, PidfError> {
        if !text.contains('&') {
            return Ok(text.to_owned());
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(amp) = rest.find('&') {
            out.push_str(&rest[..amp]);
            let after = &rest[amp + 1..];
            let semi = after
                .find(';')
                .filter(|&n| n <= 10)
                .ok_or(malformed(at, "unterminated entity reference"))?;
            let name = &after[..semi];
            let c = match name {
                "lt" => '<',
                "gt" => '>',
                "amp" => '&',
                "quot" => '"',
                "apos" => '\'',
                _ => {
                    let code = if let Some(hex) =
                        name.strip_prefix("#x").or_else(|| name.strip_prefix("#X"))
                    {
                        u32::from_str_radix(hex, 16).ok()
                    } else if let Some(dec) = name.strip_prefix('#') {
                        dec.parse::<u32>().ok()
                    } else {
                        return Err(malformed(at, "unknown entity"));
                    };
                    code.and_then(char::from_u32)
                        .ok_or(malformed(at, "bad character reference"))?
                }
            };
            out.push(c);
            rest = &after[semi + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 3863 §6 (the example of the RFC).
    const RFC_3863: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
   <impp:presence xmlns:impp="urn:ietf:params:xml:ns:pidf"
       entity="pres:someone@example.com">
     <impp:tuple id="sg89ae">
       <impp:status>
         <impp:basic>open</impp:basic>
       </impp:status>
       <impp:contact priority="0.8">tel:+09012345678</impp:contact>
     </impp:tuple>
   </impp:presence>"#;

    #[test]
    fn rfc_3863_example_with_a_prefix() {
        let doc = PresenceDocument::parse(RFC_3863.as_bytes()).unwrap();
        assert_eq!(doc.entity, "pres:someone@example.com");
        assert_eq!(doc.tuples.len(), 1);
        assert_eq!(doc.tuples[0].id, "sg89ae");
        assert_eq!(doc.tuples[0].basic, Some(Basic::Open));
        assert_eq!(doc.tuples[0].contact.as_deref(), Some("tel:+09012345678"));
        assert_eq!(doc.status(), Status::Available);
    }

    #[test]
    fn extensions_are_skipped_and_activities_read() {
        // As a softphone sends it: capabilities, a timestamp, activities in the tuple's
        // status and in the person, unusual prefixes, a comment and CDATA.
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:p="urn:ietf:params:xml:ns:pidf:data-model"
  xmlns:r="urn:ietf:params:xml:ns:pidf:rpid" xmlns:sc="urn:ietf:params:xml:ns:pidf:caps"
  xmlns:x="urn:example:unknown" entity="sip:bob@example.com">
 <!-- a comment -->
 <tuple id="a"><status><basic>closed</basic></status><note>desk phone</note></tuple>
 <tuple id="b"><status><basic> Open </basic><r:activities><r:on-the-phone/></r:activities></status>
  <sc:servcaps><sc:audio>true</sc:audio></sc:servcaps><timestamp>2026-03-16T08:06:06Z</timestamp>
  <x:whatever a='1'><x:deeper/></x:whatever></tuple>
 <p:person id="p"><r:activities><r:meeting/></r:activities><p:note><![CDATA[Talk & walk]]></p:note></p:person>
</presence>"#;
        let doc = PresenceDocument::parse(body.as_bytes()).unwrap();
        assert_eq!(doc.tuples.len(), 2);
        assert_eq!(doc.tuples[0].basic, Some(Basic::Closed));
        assert_eq!(doc.tuples[1].basic, Some(Basic::Open));
        assert_eq!(doc.tuples[1].activities, vec![Activity::OnThePhone]);
        assert_eq!(
            doc.persons[0].activities,
            vec![Activity::Other("meeting".to_owned())]
        );
        assert_eq!(doc.status(), Status::Busy);
        assert_eq!(doc.note(), Some("Talk & walk"));
    }

    #[test]
    fn kamailio_and_baresip_forms() {
        // baresip's notifier: no namespace prefixes beyond the default, no person.
        let baresip = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
            <presence xmlns=\"urn:ietf:params:xml:ns:pidf\"\r\n    entity=\"sip:b@x\">\r\n  \
            <tuple id=\"1\">\r\n    <status>\r\n      <basic>closed</basic>\r\n    </status>\r\n    \
            <contact>sip:b@x</contact>\r\n  </tuple>\r\n</presence>\r\n";
        let doc = PresenceDocument::parse(baresip.as_bytes()).unwrap();
        assert_eq!(doc.status(), Status::Offline);
        // Away with an undeclared rpid prefix; entities in the note.
        let away = "<presence entity='sip:c@x'><tuple id='t'><status><basic>open</basic></status></tuple>\
            <dm:person id='p'><rpid:activities><rpid:away/></rpid:activities>\
            <dm:note>back &lt;soon&gt; &#233;&#x263A;</dm:note></dm:person></presence>";
        let doc = PresenceDocument::parse(away.as_bytes()).unwrap();
        assert_eq!(doc.status(), Status::Away);
        assert_eq!(doc.note(), Some("back <soon> é☺"));
        // No tuple, no activity: nothing known.
        let empty = "<presence xmlns='urn:ietf:params:xml:ns:pidf' entity='sip:d@x'/>";
        assert_eq!(
            PresenceDocument::parse(empty.as_bytes()).unwrap().status(),
            Status::Offline
        );
    }

    #[test]
    fn built_documents_round_trip() {
        for status in [
            Status::Available,
            Status::Away,
            Status::Busy,
            Status::Offline,
        ] {
            let doc =
                PresenceDocument::of_status("sip:a@example.com", status, Some("a <b> & \"c\""));
            let xml = doc.to_xml();
            let back = PresenceDocument::parse(xml.as_bytes()).unwrap();
            assert_eq!(back, doc, "{xml}");
            assert_eq!(back.status(), status);
        }
        let xml = PresenceDocument::of_status("sip:a@x", Status::Busy, None).to_xml();
        // The literal forms phones match on.
        assert!(xml.contains("<basic>open</basic>"), "{xml}");
        assert!(xml.contains("<rpid:busy/>"), "{xml}");
        let xml = PresenceDocument::of_status("sip:a@x", Status::Away, None).to_xml();
        assert!(xml.contains("<rpid:away/>"), "{xml}");
    }

    #[test]
    fn malformed_documents_are_errors() {
        let bad: &[&[u8]] = &[
            b"",
            b"   ",
            b"not xml",
            b"<presence",
            b"<presence entity='x'>",
            b"<presence></tuple>",
            b"<presence><tuple></presence></tuple>",
            b"<presence/><presence/>",
            b"<presence a=b/>",
            b"<presence a='1/>",
            b"<presence>&bogus;</presence>",
            b"<presence>&#xFFFFFFFF;</presence>",
            b"<presence><![CDATA[x</presence>",
            b"<!DOCTYPE presence [<!ENTITY a 'b'>]><presence/>",
            b"\xff\xfe<presence/>",
            b"text<presence/>",
            b"</presence>",
        ];
        for b in bad {
            assert!(
                PresenceDocument::parse(b).is_err(),
                "{:?}",
                String::from_utf8_lossy(b)
            );
        }
        assert_eq!(
            PresenceDocument::parse(b"<dialog-info/>"),
            Err(PidfError::NotPresence("dialog-info".to_owned()))
        );
        let deep = "<a>".repeat(1000) + &"</a>".repeat(1000);
        assert_eq!(
            PresenceDocument::parse(deep.as_bytes()),
            Err(PidfError::TooDeep)
        );
        let large = vec![b' '; MAX_SIZE + 1];
        assert_eq!(PresenceDocument::parse(&large), Err(PidfError::TooLarge));
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = PresenceDocument::parse(&body);
        }

        #[test]
        fn mangled_documents_never_panic(cut in 0usize..2000, byte in proptest::prelude::any::<u8>(), at in 0usize..2000) {
            let mut body = PresenceDocument::of_status("sip:a@x", Status::Busy, Some("n")).to_xml().into_bytes();
            let at = at % body.len();
            body[at] = byte;
            body.truncate(cut.max(1));
            let _ = PresenceDocument::parse(&body);
        }
    }
}
