//! The dialog event package's body, `application/dialog-info+xml` (RFC 4235 §4).
//!
//! [`DialogInfo`] is one document: its `version`, whether it is the `full` state or a
//! `partial` update, the `entity` it is about, and one [`DialogEntry`] per dialog (its `id`,
//! Call-ID and tags, `direction`, and [`DialogPhase`] from `trying` to `terminated`).
//! [`DialogInfo::to_xml`] writes one; [`DialogInfo::parse`] reads one leniently (any
//! namespace prefix, unknown elements and attributes skipped, missing optional parts left
//! `None`) and fails with a [`DialogInfoError`] on XML it cannot read, never a panic.
//! [`DialogInfo::apply`] keeps a watcher's view: a full document replaces it, a partial one
//! updates the dialogs it names, an older `version` is ignored (§4.1.2).
//!
//! The XML reader is a small hand parser for this one format (no DTDs, no external
//! entities: `<!DOCTYPE` is refused), bounded in depth and element count.

use std::fmt::Write as _;

/// The body type of the dialog event package (RFC 4235 §4).
pub const DIALOG_INFO_XML: &str = "application/dialog-info+xml";

/// The XML namespace of RFC 4235 §4.
pub const DIALOG_INFO_NS: &str = "urn:ietf:params:xml:ns:dialog-info";

/// The deepest element nesting read.
const MAX_DEPTH: usize = 16;

/// The most elements read in one document.
const MAX_ELEMENTS: usize = 4096;

/// One `dialog-info` document (RFC 4235 §4.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DialogInfo {
    /// `version`: one more in each NOTIFY of a subscription.
    pub version: u32,
    /// `state="partial"`: only the dialogs that changed (else the full state).
    pub partial: bool,
    /// `entity`: the URI whose dialogs these are.
    pub entity: String,
    /// The dialogs.
    pub dialogs: Vec<DialogEntry>,
}

/// One `<dialog>` (RFC 4235 §4.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialogEntry {
    /// `id`: names the dialog within the document's entity.
    pub id: String,
    /// `call-id`.
    pub call_id: Option<String>,
    /// `local-tag`.
    pub local_tag: Option<String>,
    /// `remote-tag`.
    pub remote_tag: Option<String>,
    /// `direction`.
    pub direction: Option<Direction>,
    /// `<state>`.
    pub phase: DialogPhase,
    /// `<state event="...">`: why it reached that state (`rejected`, `cancelled`...).
    pub event: Option<String>,
    /// `<state code="...">`: the status code that ended or answered it.
    pub code: Option<u16>,
    /// `<local><identity>`: the entity's side.
    pub local: Option<String>,
    /// `<remote><identity>`: the other side.
    pub remote: Option<String>,
}

/// Which side of the dialog the entity is (RFC 4235 §4.1.1 `direction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The entity sent the INVITE.
    Initiator,
    /// The entity received it.
    Recipient,
}

/// A dialog's state (RFC 4235 §3.7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogPhase {
    /// An INVITE was sent or received, nothing answered yet.
    Trying,
    /// A provisional without a To tag.
    Proceeding,
    /// An early dialog: ringing.
    Early,
    /// Answered.
    Confirmed,
    /// Over.
    Terminated,
}

impl DialogPhase {
    /// Its name in the XML.
    pub fn as_str(self) -> &'static str {
        match self {
            DialogPhase::Trying => "trying",
            DialogPhase::Proceeding => "proceeding",
            DialogPhase::Early => "early",
            DialogPhase::Confirmed => "confirmed",
            DialogPhase::Terminated => "terminated",
        }
    }

    fn parse(text: &str) -> Option<DialogPhase> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "trying" => DialogPhase::Trying,
            "proceeding" => DialogPhase::Proceeding,
            "early" => DialogPhase::Early,
            "confirmed" => DialogPhase::Confirmed,
            "terminated" => DialogPhase::Terminated,
            _ => return None,
        })
    }
}

/// Why a `dialog-info` body cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialogInfoError {
    /// Not well-formed XML (as far as this reader goes), or over its limits.
    #[error("malformed xml: {0}")]
    Xml(&'static str),
    /// Well-formed, but not a `dialog-info` document.
    #[error("not a dialog-info document: {0}")]
    NotDialogInfo(&'static str),
}

impl DialogInfo {
    /// A full-state document of `entity`'s dialogs.
    pub fn full(version: u32, entity: &str, dialogs: Vec<DialogEntry>) -> DialogInfo {
        DialogInfo {
            version,
            partial: false,
            entity: entity.to_owned(),
            dialogs,
        }
    }

    /// The document as XML (RFC 4235 §4.1).
    pub fn to_xml(&self) -> String {
        let mut x = String::with_capacity(256 + 256 * self.dialogs.len());
        let _ = write!(
            x,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<dialog-info xmlns=\"{DIALOG_INFO_NS}\" version=\"{}\" state=\"{}\" entity=\"{}\">\n",
            self.version,
            if self.partial { "partial" } else { "full" },
            escape(&self.entity)
        );
        for d in &self.dialogs {
            let _ = write!(x, "  <dialog id=\"{}\"", escape(&d.id));
            for (name, value) in [
                ("call-id", &d.call_id),
                ("local-tag", &d.local_tag),
                ("remote-tag", &d.remote_tag),
            ] {
                if let Some(v) = value {
                    let _ = write!(x, " {name}=\"{}\"", escape(v));
                }
            }
            if let Some(dir) = d.direction {
                let dir = match dir {
                    Direction::Initiator => "initiator",
                    Direction::Recipient => "recipient",
                };
                let _ = write!(x, " direction=\"{dir}\"");
            }
            x.push_str(">\n    <state");
            if let Some(e) = &d.event {
                let _ = write!(x, " event=\"{}\"", escape(e));
            }
            if let Some(c) = d.code {
                let _ = write!(x, " code=\"{c}\"");
            }
            let _ = writeln!(x, ">{}</state>", d.phase.as_str());
            for (side, identity) in [("local", &d.local), ("remote", &d.remote)] {
                if let Some(i) = identity {
                    let _ = writeln!(x, "    <{side}><identity>{}</identity></{side}>", escape(i));
                }
            }
            x.push_str("  </dialog>\n");
        }
        x.push_str("</dialog-info>\n");
        x
    }

    /// Reads a document (see the module doc for how leniently).
    pub fn parse(text: &str) -> Result<DialogInfo, DialogInfoError> {
        let root = parse_xml(text)?;
        if root.name != "dialog-info" {
            return Err(DialogInfoError::NotDialogInfo("root is not dialog-info"));
        }
        let version = root
            .attr("version")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let partial = root
            .attr("state")
            .is_some_and(|s| s.trim().eq_ignore_ascii_case("partial"));
        let entity = root.attr("entity").unwrap_or("").trim().to_owned();
        let mut dialogs = Vec::new();
        for d in root.children.iter().filter(|c| c.name == "dialog") {
            let Some(id) = d.attr("id") else {
                continue;
            };
            let state = d.child("state");
            let phase = state
                .and_then(|s| DialogPhase::parse(&s.text))
                .unwrap_or(DialogPhase::Trying);
            let identity = |side: &str| {
                d.child(side)
                    .and_then(|s| s.child("identity"))
                    .map(|i| i.text.trim().to_owned())
                    .filter(|t| !t.is_empty())
            };
            dialogs.push(DialogEntry {
                id: id.to_owned(),
                call_id: d.attr("call-id").map(str::to_owned),
                local_tag: d.attr("local-tag").map(str::to_owned),
                remote_tag: d.attr("remote-tag").map(str::to_owned),
                direction: match d.attr("direction").map(str::trim) {
                    Some("initiator") => Some(Direction::Initiator),
                    Some("recipient") => Some(Direction::Recipient),
                    _ => None,
                },
                phase,
                event: state.and_then(|s| s.attr("event")).map(str::to_owned),
                code: state
                    .and_then(|s| s.attr("code"))
                    .and_then(|c| c.trim().parse().ok()),
                local: identity("local"),
                remote: identity("remote"),
            });
        }
        Ok(DialogInfo {
            version,
            partial,
            entity,
            dialogs,
        })
    }

    /// Takes a received document into this view of the entity's dialogs (RFC 4235 §4.1.2):
    /// an older or repeated `version` is ignored (returns false); a full one replaces the
    /// view, a partial one replaces or adds the dialogs it names. Terminated dialogs are
    /// dropped from the view. `first` is true for the first document of a subscription
    /// (whose version starts anywhere).
    pub fn apply(&mut self, update: DialogInfo, first: bool) -> bool {
        if !first && update.version <= self.version {
            return false;
        }
        self.version = update.version;
        if !update.entity.is_empty() {
            self.entity = update.entity;
        }
        if !update.partial || first {
            self.dialogs.clear();
        }
        for d in update.dialogs {
            self.dialogs.retain(|x| x.id != d.id);
            if d.phase != DialogPhase::Terminated {
                self.dialogs.push(d);
            }
        }
        true
    }
}

/// `&`, `<`, `>` and `"` as entities.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// The predefined entities and character references.
fn unescape(text: &str) -> Result<String, DialogInfoError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let end = after
            .find(';')
            .filter(|&e| e <= 10)
            .ok_or(DialogInfoError::Xml("unterminated entity"))?;
        let name = &after[..end];
        let c = match name {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = name.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = name.strip_prefix('#') {
                    dec.parse().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .ok_or(DialogInfoError::Xml("unknown entity"))?
            }
        };
        out.push(c);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// An element: its local name (no prefix), attributes (local names), children and text.
#[derive(Debug, Default)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Element>,
    text: String,
}

impl Element {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
}

/// The name without its namespace prefix.
fn local_name(name: &str) -> &str {
    name.rsplit_once(':').map_or(name, |(_, n)| n)
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')
}

/// Reads the document's root element.
fn parse_xml(text: &str) -> Result<Element, DialogInfoError> {
    let xml = |what| DialogInfoError::Xml(what);
    let mut rest = text.trim_start_matches('\u{feff}');
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let Some(lt) = rest.find('<') else {
            if !rest.trim().is_empty() && stack.is_empty() {
                return Err(xml("text outside the root"));
            }
            break;
        };
        let text_part = &rest[..lt];
        if let Some(top) = stack.last_mut() {
            top.text.push_str(&unescape(text_part)?);
        } else if !text_part.trim().is_empty() {
            return Err(xml("text outside the root"));
        }
        rest = &rest[lt..];
        if let Some(r) = rest.strip_prefix("<?") {
            let end = r.find("?>").ok_or(xml("unterminated declaration"))?;
            rest = &r[end + 2..];
            continue;
        }
        if let Some(r) = rest.strip_prefix("<!--") {
            let end = r.find("-->").ok_or(xml("unterminated comment"))?;
            rest = &r[end + 3..];
            continue;
        }
        if let Some(r) = rest.strip_prefix("<![CDATA[") {
            let end = r.find("]]>").ok_or(xml("unterminated cdata"))?;
            let top = stack.last_mut().ok_or(xml("cdata outside the root"))?;
            top.text.push_str(&r[..end]);
            rest = &r[end + 3..];
            continue;
        }
        if rest.starts_with("<!") {
            return Err(xml("doctype or declaration not taken"));
        }
        let end = tag_end(rest).ok_or(xml("unterminated tag"))?;
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let open = stack.pop().ok_or(xml("closing tag without opening"))?;
            if local_name(name.trim()) != open.name {
                return Err(xml("mismatched closing tag"));
            }
            match stack.last_mut() {
                Some(parent) => parent.children.push(open),
                None => {
                    root = Some(open);
                    if !only_misc(rest) {
                        return Err(xml("content after the root"));
                    }
                    break;
                }
            }
            continue;
        }
        let (tag, empty) = match tag.strip_suffix('/') {
            Some(t) => (t, true),
            None => (tag, false),
        };
        count += 1;
        if count > MAX_ELEMENTS {
            return Err(xml("too many elements"));
        }
        if stack.len() >= MAX_DEPTH {
            return Err(xml("too deep"));
        }
        if stack.is_empty() && root.is_some() {
            return Err(xml("two roots"));
        }
        let element = parse_tag(tag)?;
        if empty {
            match stack.last_mut() {
                Some(parent) => parent.children.push(element),
                None => {
                    root = Some(element);
                    if !only_misc(rest) {
                        return Err(xml("content after the root"));
                    }
                    break;
                }
            }
        } else {
            stack.push(element);
        }
    }
    if !stack.is_empty() {
        return Err(xml("unclosed element"));
    }
    root.ok_or(xml("no root element"))
}

/// Whether what follows the root is only comments, declarations and space.
fn only_misc(mut rest: &str) -> bool {
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return true;
        }
        if let Some(r) = rest.strip_prefix("<!--")
            && let Some(end) = r.find("-->")
        {
            rest = &r[end + 3..];
            continue;
        }
        return false;
    }
}

/// Where the `>` closing the tag at the start of `s` is (quotes skipped).
fn tag_end(s: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices().skip(1) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return Some(i),
            (None, '<') => return None,
            _ => {}
        }
    }
    None
}

/// `name attr="v" attr='v'` (without the angle brackets).
fn parse_tag(tag: &str) -> Result<Element, DialogInfoError> {
    let xml = |what| DialogInfoError::Xml(what);
    let tag = tag.trim();
    let name_end = tag.find(|c: char| !is_name_char(c)).unwrap_or(tag.len());
    let name = &tag[..name_end];
    if name.is_empty() {
        return Err(xml("element without a name"));
    }
    let mut element = Element {
        name: local_name(name).to_owned(),
        ..Element::default()
    };
    let mut rest = tag[name_end..].trim_start();
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or(xml("attribute without a value"))?;
        let attr = rest[..eq].trim();
        if attr.is_empty() || !attr.chars().all(is_name_char) {
            return Err(xml("bad attribute name"));
        }
        let after = rest[eq + 1..].trim_start();
        let quote = after
            .chars()
            .next()
            .filter(|c| matches!(c, '"' | '\''))
            .ok_or(xml("attribute value not quoted"))?;
        let close = after[1..]
            .find(quote)
            .ok_or(xml("unterminated attribute value"))?;
        let value = unescape(&after[1..1 + close])?;
        if !attr.starts_with("xmlns") {
            element.attrs.push((local_name(attr).to_owned(), value));
        }
        rest = after[close + 2..].trim_start();
    }
    Ok(element)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, phase: DialogPhase) -> DialogEntry {
        DialogEntry {
            id: id.to_owned(),
            call_id: Some("c1@host".to_owned()),
            local_tag: Some("l1".to_owned()),
            remote_tag: None,
            direction: Some(Direction::Recipient),
            phase,
            event: None,
            code: None,
            local: Some("sip:bob@example.com".to_owned()),
            remote: Some("sip:alice&co@example.com".to_owned()),
        }
    }

    #[test]
    fn round_trips() {
        let info = DialogInfo::full(
            3,
            "sip:bob@example.com",
            vec![entry("d1", DialogPhase::Early), {
                let mut e = entry("d2", DialogPhase::Terminated);
                e.event = Some("rejected".to_owned());
                e.code = Some(486);
                e.direction = Some(Direction::Initiator);
                e
            }],
        );
        let xml = info.to_xml();
        assert!(xml.contains("sip:alice&amp;co@example.com"), "{xml}");
        assert_eq!(DialogInfo::parse(&xml), Ok(info));
    }

    #[test]
    fn reads_prefixes_extra_elements_and_partial_state() {
        let xml = r#"<?xml version="1.0"?>
<!-- a comment -->
<d:dialog-info xmlns:d="urn:ietf:params:xml:ns:dialog-info" xmlns:x="urn:x"
    version='7' state="partial" entity="sip:bob@example.com">
  <d:dialog id="abc" call-id="x@y" direction="initiator" x:extra="1">
    <x:vendor><x:deep>ignored</x:deep></x:vendor>
    <d:state event="replaced">confirmed</d:state>
    <d:duration>12</d:duration>
    <d:remote><d:identity display="Carol">sip:carol@example.com</d:identity>
      <d:target uri="sip:carol@192.0.2.3"/></d:remote>
  </d:dialog>
  <d:dialog id="no-state"/>
</d:dialog-info>"#;
        let info = DialogInfo::parse(xml).unwrap();
        assert_eq!(info.version, 7);
        assert!(info.partial);
        assert_eq!(info.dialogs.len(), 2);
        let d = &info.dialogs[0];
        assert_eq!(d.phase, DialogPhase::Confirmed);
        assert_eq!(d.direction, Some(Direction::Initiator));
        assert_eq!(d.event.as_deref(), Some("replaced"));
        assert_eq!(d.remote.as_deref(), Some("sip:carol@example.com"));
        assert_eq!(d.local, None);
        assert_eq!(info.dialogs[1].phase, DialogPhase::Trying);
        // An empty document: no dialogs, the entity idle.
        let empty = DialogInfo::parse(
            "<dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" version=\"0\" state=\"full\" entity=\"sip:a@b\"/>",
        )
        .unwrap();
        assert!(empty.dialogs.is_empty());
    }

    #[test]
    fn apply_keeps_a_view_by_version() {
        let mut view = DialogInfo::default();
        let mut first = DialogInfo::full(5, "sip:b@h", vec![entry("d1", DialogPhase::Early)]);
        assert!(view.apply(first.clone(), true));
        assert_eq!(view.dialogs.len(), 1);
        // Partial: d2 added, d1 confirmed.
        let partial = DialogInfo {
            version: 6,
            partial: true,
            entity: String::new(),
            dialogs: vec![
                entry("d1", DialogPhase::Confirmed),
                entry("d2", DialogPhase::Trying),
            ],
        };
        assert!(view.apply(partial, false));
        assert_eq!(view.dialogs.len(), 2);
        assert!(
            view.dialogs
                .iter()
                .any(|d| d.id == "d1" && d.phase == DialogPhase::Confirmed)
        );
        // An old version is ignored.
        first.version = 6;
        assert!(!view.apply(first, false));
        // Terminated ones leave the view.
        let end = DialogInfo::full(7, "sip:b@h", vec![entry("d1", DialogPhase::Terminated)]);
        assert!(view.apply(end, false));
        assert!(view.dialogs.is_empty());
    }

    #[test]
    fn bad_xml_is_an_error_not_a_panic() {
        for bad in [
            "",
            "<",
            "<dialog-info",
            "<dialog-info>",
            "<dialog-info></other>",
            "</dialog-info>",
            "<dialog-info a=b/>",
            "<dialog-info a=\"1/>",
            "<dialog-info>&bogus;</dialog-info>",
            "<dialog-info>&#xFFFFFFFF;</dialog-info>",
            "<!DOCTYPE x [<!ENTITY a 'b'>]><dialog-info/>",
            "<dialog-info/><dialog-info/>",
            "text<dialog-info/>",
            "<presence/>",
            "<a><![CDATA[x</a>",
            "<dialog-info>é<<</dialog-info>",
        ] {
            assert!(DialogInfo::parse(bad).is_err(), "{bad:?}");
        }
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert_eq!(
            DialogInfo::parse(&deep),
            Err(DialogInfoError::Xml("too deep"))
        );
        // Every prefix of a good document and every byte flipped: no panic.
        let good = DialogInfo::full(1, "sip:b@h", vec![entry("d1", DialogPhase::Early)]).to_xml();
        for i in 0..good.len() {
            if good.is_char_boundary(i) {
                let _ = DialogInfo::parse(&good[..i]);
            }
        }
        for i in 0..good.len() {
            let mut bytes = good.clone().into_bytes();
            bytes[i] = b"<>&\"'/=x"[i % 8];
            if let Ok(s) = String::from_utf8(bytes) {
                let _ = DialogInfo::parse(&s);
            }
        }
    }
}
