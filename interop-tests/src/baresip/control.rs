//! Client for baresip's `ctrl_tcp` module: JSON commands and responses/events in
//! netstrings (`<length>:<bytes>,`).
//!
//! A command is `{"command":"dial","params":"sip:bob@example.test","token":"t1"}`; its
//! response `{"response":true,"ok":true,"data":"...","token":"t1"}`; events look like
//! `{"event":true,"class":"call","type":"CALL_ESTABLISHED","accountaor":"...",
//! "direction":"outgoing","peeruri":"...","id":"..."}`.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long a command waits for its response.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest netstring accepted from baresip.
const MAX_MESSAGE: usize = 1 << 20;

/// What went wrong talking to baresip.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// Connecting or writing failed.
    #[error("ctrl_tcp i/o: {0}")]
    Io(#[from] std::io::Error),
    /// baresip closed the connection.
    #[error("ctrl_tcp connection closed")]
    Closed,
    /// Nothing arrived in time.
    #[error("timed out after {after:?} waiting for {waiting_for}")]
    Timeout {
        /// How long we waited.
        after: Duration,
        /// What we waited for.
        waiting_for: String,
    },
    /// baresip answered the command with `"ok": false`.
    #[error("command {command:?} failed: {data}")]
    Failed {
        /// The command.
        command: String,
        /// baresip's explanation.
        data: String,
    },
}

/// A response to a command.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Response {
    /// `"ok"`.
    pub ok: bool,
    /// `"data"`: the command's text output.
    pub data: String,
}

/// An event (`"event": true`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Event {
    /// `"type"`, e.g. `CALL_ESTABLISHED`, `CALL_CLOSED`, `REGISTER_OK`.
    pub kind: String,
    /// `"class"`, e.g. `call`, `register`.
    pub class: String,
    /// The whole JSON object.
    pub json: Value,
}

impl Event {
    /// A string field of the event (`peeruri`, `param`, `direction`, `id`...).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.json.get(name).and_then(Value::as_str)
    }
}

/// A connection to baresip's ctrl_tcp.
#[derive(Debug)]
pub struct BaresipControl {
    stream: TcpStream,
    incoming: Receiver<Value>,
    events: VecDeque<Event>,
    seen: Vec<Event>,
    next_token: u64,
}

impl BaresipControl {
    /// Connects to ctrl_tcp at `addr` (127.0.0.1:port).
    pub fn connect(addr: SocketAddr) -> Result<Self, ControlError> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        let mut reader = stream.try_clone()?;
        let (tx, incoming) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            loop {
                match reader.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                loop {
                    match split_netstring(&buf) {
                        Netstring::Complete(payload, used) => {
                            if let Ok(v) = serde_json::from_slice::<Value>(payload)
                                && tx.send(v).is_err()
                            {
                                return;
                            }
                            buf.drain(..used);
                        }
                        Netstring::Incomplete => break,
                        Netstring::Malformed => return,
                    }
                }
            }
        });
        Ok(Self {
            stream,
            incoming,
            events: VecDeque::new(),
            seen: Vec::new(),
            next_token: 1,
        })
    }

    /// Sends a command and waits for its response; fails when baresip says `ok: false`.
    pub fn command(&mut self, command: &str, params: &str) -> Result<Response, ControlError> {
        let response = self.command_unchecked(command, params)?;
        if response.ok {
            Ok(response)
        } else {
            Err(ControlError::Failed {
                command: command.to_owned(),
                data: response.data,
            })
        }
    }

    /// Sends a command and returns its response, whatever `ok` says.
    pub fn command_unchecked(
        &mut self,
        command: &str,
        params: &str,
    ) -> Result<Response, ControlError> {
        let token = format!("harness-{}", self.next_token);
        self.next_token += 1;
        let body = json!({ "command": command, "params": params, "token": token }).to_string();
        self.stream
            .write_all(format!("{}:{body},", body.len()).as_bytes())?;
        let deadline = Instant::now() + RESPONSE_TIMEOUT;
        loop {
            let v = self.receive(deadline, || format!("the response to {command:?}"))?;
            if v.get("response").and_then(Value::as_bool) == Some(true) {
                if v.get("token").and_then(Value::as_str) == Some(token.as_str()) {
                    return Ok(Response {
                        ok: v.get("ok").and_then(Value::as_bool).unwrap_or(false),
                        data: v
                            .get("data")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned(),
                    });
                }
            } else {
                self.queue_event(v);
            }
        }
    }

    fn receive(
        &mut self,
        deadline: Instant,
        what: impl Fn() -> String,
    ) -> Result<Value, ControlError> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.incoming.recv_timeout(left) {
            Ok(v) => Ok(v),
            Err(RecvTimeoutError::Timeout) => Err(ControlError::Timeout {
                after: RESPONSE_TIMEOUT.max(left),
                waiting_for: what(),
            }),
            Err(RecvTimeoutError::Disconnected) => Err(ControlError::Closed),
        }
    }

    fn queue_event(&mut self, v: Value) {
        if v.get("event").and_then(Value::as_bool) == Some(true) {
            let event = Event {
                kind: v
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                class: v
                    .get("class")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                json: v,
            };
            self.seen.push(event.clone());
            self.events.push_back(event);
        }
    }

    /// Waits for the next event of type `kind` (e.g. `CALL_ESTABLISHED`), discarding the
    /// events before it (they stay in [`BaresipControl::seen`]).
    pub fn wait_event(&mut self, kind: &str, timeout: Duration) -> Result<Event, ControlError> {
        let deadline = Instant::now() + timeout;
        loop {
            while let Some(e) = self.events.pop_front() {
                if e.kind == kind {
                    return Ok(e);
                }
            }
            let v = self
                .receive(deadline, || format!("event {kind}"))
                .map_err(|e| match e {
                    ControlError::Timeout { waiting_for, .. } => ControlError::Timeout {
                        after: timeout,
                        waiting_for,
                    },
                    other => other,
                })?;
            self.queue_event(v);
        }
    }

    /// Events received and not yet consumed by [`BaresipControl::wait_event`], without waiting.
    pub fn pending_events(&mut self) -> Vec<Event> {
        while let Ok(v) = self.incoming.try_recv() {
            self.queue_event(v);
        }
        self.events.drain(..).collect()
    }

    /// Every event received on this connection so far.
    pub fn seen(&mut self) -> &[Event] {
        while let Ok(v) = self.incoming.try_recv() {
            self.queue_event(v);
        }
        &self.seen
    }

    /// `dial <uri>`.
    pub fn dial(&mut self, uri: &str) -> Result<Response, ControlError> {
        self.command("dial", uri)
    }

    /// `accept`: answers the incoming call (for `answermode=manual`).
    pub fn accept(&mut self) -> Result<Response, ControlError> {
        self.command("accept", "")
    }

    /// `hangup`: ends the current call.
    pub fn hangup(&mut self) -> Result<Response, ControlError> {
        self.command("hangup", "")
    }

    /// Sends DTMF digits (`sndcode`, one command per digit: RFC 4733 events in baresip 1.0).
    pub fn send_dtmf(&mut self, digits: &str) -> Result<(), ControlError> {
        for d in digits.chars() {
            self.command("sndcode", &d.to_string())?;
        }
        Ok(())
    }

    /// `hold`: puts the current call on hold (re-INVITE with `a=sendonly`).
    pub fn hold(&mut self) -> Result<Response, ControlError> {
        self.command("hold", "")
    }

    /// `resume`: resumes the held call.
    pub fn resume(&mut self) -> Result<Response, ControlError> {
        self.command("resume", "")
    }

    /// `reginfo`: registration state as text.
    pub fn reginfo(&mut self) -> Result<String, ControlError> {
        self.command("reginfo", "").map(|r| r.data)
    }

    /// `listcalls`: current calls as text.
    pub fn listcalls(&mut self) -> Result<String, ControlError> {
        self.command("listcalls", "").map(|r| r.data)
    }
}

enum Netstring<'a> {
    /// Payload, and how many bytes of the buffer it used (with the length and the comma).
    Complete(&'a [u8], usize),
    Incomplete,
    Malformed,
}

fn split_netstring(buf: &[u8]) -> Netstring<'_> {
    let Some(colon) = buf.iter().position(|&b| b == b':') else {
        return if buf.len() > 8 || !buf.iter().all(u8::is_ascii_digit) {
            Netstring::Malformed
        } else {
            Netstring::Incomplete
        };
    };
    let Some(len) = std::str::from_utf8(&buf[..colon])
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|&n| n <= MAX_MESSAGE)
    else {
        return Netstring::Malformed;
    };
    let end = colon + 1 + len;
    match buf.get(end) {
        None => Netstring::Incomplete,
        Some(b',') => Netstring::Complete(&buf[colon + 1..end], end + 1),
        Some(_) => Netstring::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netstrings_are_split() {
        let buf = b"5:hello,3:ab";
        match split_netstring(buf) {
            Netstring::Complete(p, used) => {
                assert_eq!(p, b"hello");
                assert_eq!(used, 8);
                assert!(matches!(
                    split_netstring(&buf[used..]),
                    Netstring::Incomplete
                ));
            }
            _ => panic!("expected a complete netstring"),
        }
        assert!(matches!(split_netstring(b"12"), Netstring::Incomplete));
        assert!(matches!(split_netstring(b"x:"), Netstring::Malformed));
        assert!(matches!(split_netstring(b"2:abX"), Netstring::Malformed));
    }
}
