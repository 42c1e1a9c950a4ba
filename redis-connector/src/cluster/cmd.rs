//! One command of a pipeline: where it goes (a key's slot, or one node),
//! its bytes (the value as the payload's own buffers, never copied), what
//! its reply is read into, and an `ASK` redirect it must follow.

use std::io::Write as _;
use std::sync::Arc;

use bytes::Bytes;

use super::slots::slot_of;
use crate::raw::Reply;

/// Where a command is sent.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    /// The master of this slot.
    Slot(u16),
    /// This node (`host:port`), whatever it serves.
    Node(Arc<str>),
}

/// How the reply of a command is read.
pub(crate) enum Want<'b> {
    /// Any reply ([`Reply`]; bulk strings into fresh or pooled buffers).
    Reply,
    /// A bulk string of exactly this many bytes, straight into this slice.
    Into(&'b mut [u8]),
}

/// What a command answered (server errors are `Err`s beside it).
#[derive(Debug)]
pub(crate) enum Answer {
    /// The reply of a [`Want::Reply`] command.
    Reply(Reply),
    /// A [`Want::Into`] command filled its slice.
    Filled,
    /// A [`Want::Into`] command's key does not exist.
    Nil,
}

/// One command.
pub(crate) struct Cmd<'b> {
    pub(crate) target: Target,
    /// RESP bytes up to the value (or the whole command without one).
    pub(crate) head: Vec<u8>,
    /// The value (the last argument), sent part by part after `head`.
    pub(crate) value: Vec<Bytes>,
    /// Whether the command ends with `value` (possibly empty).
    pub(crate) has_value: bool,
    pub(crate) want: Want<'b>,
    /// Set by an `ASK` redirect: send `ASKING` and this command to that node.
    pub(crate) ask: Option<Arc<str>>,
}

fn pack_args(out: &mut Vec<u8>, count: usize, args: &[&[u8]]) {
    let _ = write!(out, "*{count}\r\n");
    for a in args {
        let _ = write!(out, "${}\r\n", a.len());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

impl<'b> Cmd<'b> {
    /// `args[1]` is the key that routes the command.
    pub(crate) fn keyed(args: &[&[u8]]) -> Cmd<'b> {
        let mut head = Vec::with_capacity(64);
        pack_args(&mut head, args.len(), args);
        Cmd {
            target: Target::Slot(slot_of(args[1])),
            head,
            value: Vec::new(),
            has_value: false,
            want: Want::Reply,
            ask: None,
        }
    }

    /// `args` then `value` as the last argument; `args[1]` routes it.
    pub(crate) fn keyed_value(args: &[&[u8]], value: Vec<Bytes>) -> Cmd<'b> {
        let mut head = Vec::with_capacity(96);
        pack_args(&mut head, args.len() + 1, args);
        let len: usize = value.iter().map(Bytes::len).sum();
        let _ = write!(head, "${len}\r\n");
        Cmd {
            target: Target::Slot(slot_of(args[1])),
            head,
            value,
            has_value: true,
            want: Want::Reply,
            ask: None,
        }
    }

    /// A command for one node (`CLUSTER SLOTS`, `SCAN`, `FLUSHDB`).
    pub(crate) fn node(addr: Arc<str>, args: &[&[u8]]) -> Cmd<'b> {
        let mut head = Vec::with_capacity(64);
        pack_args(&mut head, args.len(), args);
        Cmd {
            target: Target::Node(addr),
            head,
            value: Vec::new(),
            has_value: false,
            want: Want::Reply,
            ask: None,
        }
    }

    /// Read the reply (a bulk string of `dst.len()` bytes) into `dst`.
    pub(crate) fn into_slice(mut self, dst: &'b mut [u8]) -> Cmd<'b> {
        self.want = Want::Into(dst);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_resp() {
        let c = Cmd::keyed(&[b"GET", b"k{x}"]);
        assert_eq!(c.head, b"*2\r\n$3\r\nGET\r\n$4\r\nk{x}\r\n");
        assert!(matches!(c.target, Target::Slot(s) if s == slot_of(b"x")));
        let c = Cmd::keyed_value(
            &[b"SET", b"k"],
            vec![Bytes::from_static(b"ab"), Bytes::from_static(b"c")],
        );
        assert_eq!(c.head, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n");
        assert!(c.has_value);
    }
}
