//! Hash slots: Redis Cluster's key-to-slot function (CRC16 of the key, or of
//! its `{hash tag}`, modulo 16384) and the slot map read from
//! `CLUSTER SLOTS`.

use std::sync::Arc;

use crate::raw::Reply;

/// Number of hash slots of a Redis Cluster.
pub(crate) const SLOTS: usize = 16384;

/// CRC16/XMODEM (polynomial 0x1021, initial value 0), as Redis Cluster uses.
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The part of a key name that is hashed: the content of the first
/// `{...}` when it is not empty, otherwise the whole name.
pub(crate) fn hashed_part(name: &[u8]) -> &[u8] {
    if let Some(open) = name.iter().position(|&b| b == b'{') {
        if let Some(len) = name[open + 1..].iter().position(|&b| b == b'}') {
            if len > 0 {
                return &name[open + 1..open + 1 + len];
            }
        }
    }
    name
}

/// The hash slot of a key name.
pub(crate) fn slot_of(name: &[u8]) -> u16 {
    crc16(hashed_part(name)) % SLOTS as u16
}

/// Which master serves each slot (`None`: no master right now).
#[derive(Clone, Debug)]
pub(crate) struct SlotMap {
    owner: Vec<Option<Arc<str>>>,
}

impl SlotMap {
    /// The master of `slot`.
    pub(crate) fn owner(&self, slot: u16) -> Option<&Arc<str>> {
        self.owner.get(usize::from(slot)).and_then(Option::as_ref)
    }

    /// Record a `MOVED` answer: `slot` is now served by `addr`.
    pub(crate) fn set(&mut self, slot: u16, addr: Arc<str>) {
        if let Some(o) = self.owner.get_mut(usize::from(slot)) {
            *o = Some(addr);
        }
    }

    /// Every master, each once, in slot order.
    pub(crate) fn masters(&self) -> Vec<Arc<str>> {
        let mut v: Vec<Arc<str>> = Vec::new();
        for a in self.owner.iter().flatten() {
            if !v.iter().any(|m| m == a) {
                v.push(a.clone());
            }
        }
        v
    }

    /// Parse a `CLUSTER SLOTS` reply; `asked` is the host that answered (a
    /// node announces an empty address for "the address you reached me at").
    pub(crate) fn parse(reply: &Reply, asked: &str) -> Result<SlotMap, String> {
        let Reply::Array(ranges) = reply else {
            return Err(format!("CLUSTER SLOTS: got {}", reply.describe()));
        };
        let mut owner: Vec<Option<Arc<str>>> = vec![None; SLOTS];
        for r in ranges {
            let Reply::Array(items) = r else {
                return Err(format!("CLUSTER SLOTS range: got {}", r.describe()));
            };
            let (start, end, master) = match items.as_slice() {
                [Reply::Int(s), Reply::Int(e), Reply::Array(m), ..] => (*s, *e, m),
                _ => return Err("CLUSTER SLOTS range: not [start, end, master, ...]".into()),
            };
            if !(0..SLOTS as i64).contains(&start) || !(start..SLOTS as i64).contains(&end) {
                return Err(format!("CLUSTER SLOTS range {start}-{end} out of bounds"));
            }
            let host = match master.first() {
                Some(Reply::Bulk(b)) => String::from_utf8_lossy(b).into_owned(),
                Some(Reply::Status(s)) => s.clone(),
                _ => return Err("CLUSTER SLOTS master without an address".into()),
            };
            let port = match master.get(1) {
                Some(Reply::Int(p)) if (1..=i64::from(u16::MAX)).contains(p) => *p,
                _ => return Err("CLUSTER SLOTS master without a port".into()),
            };
            let host = if host.is_empty() || host == "?" {
                asked.to_string()
            } else {
                host
            };
            let addr: Arc<str> = join_addr(&host, port as u16).into();
            for o in &mut owner[start as usize..=end as usize] {
                *o = Some(addr.clone());
            }
        }
        Ok(SlotMap { owner })
    }
}

/// `host:port`, with brackets around an IPv6 address.
pub(crate) fn join_addr(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Split `host:port` (or `[v6]:port`).
pub(crate) fn split_addr(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = port.parse().ok().filter(|&p| p != 0)?;
    (!host.is_empty()).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_slots() {
        assert_eq!(crc16(b"123456789"), 0x31c3);
        // Values from the Redis Cluster specification and `CLUSTER KEYSLOT`.
        assert_eq!(slot_of(b"foo"), 12182);
        assert_eq!(slot_of(b"bar"), 5061);
        assert_eq!(slot_of(b"{user1000}.following"), slot_of(b"user1000"));
        assert_eq!(slot_of(b"p:{abc}:7"), slot_of(b"abc"));
        // An empty tag hashes the whole name.
        assert_eq!(hashed_part(b"{}x"), b"{}x");
        assert_eq!(hashed_part(b"a{b"), b"a{b");
        assert_eq!(hashed_part(b"x{}{y}"), b"x{}{y}");
    }

    #[test]
    fn parse_cluster_slots() {
        let node = |h: &str, p: i64| {
            Reply::Array(vec![
                Reply::Bulk(bytes::Bytes::copy_from_slice(h.as_bytes())),
                Reply::Int(p),
                Reply::Bulk(bytes::Bytes::from_static(b"id")),
            ])
        };
        let r = Reply::Array(vec![
            Reply::Array(vec![
                Reply::Int(0),
                Reply::Int(8000),
                node("10.0.0.1", 7000),
                node("10.0.0.2", 7003),
            ]),
            Reply::Array(vec![Reply::Int(8001), Reply::Int(16383), node("", 7001)]),
        ]);
        let m = SlotMap::parse(&r, "h").unwrap();
        assert_eq!(m.owner(0).unwrap().as_ref(), "10.0.0.1:7000");
        assert_eq!(m.owner(8001).unwrap().as_ref(), "h:7001");
        assert_eq!(m.masters().len(), 2);
        let bad = Reply::Array(vec![Reply::Array(vec![
            Reply::Int(0),
            Reply::Int(20000),
            node("a", 1),
        ])]);
        assert!(
            SlotMap::parse(&bad, "h")
                .unwrap_err()
                .contains("out of bounds")
        );
        assert!(SlotMap::parse(&Reply::Int(3), "h").is_err());
    }

    #[test]
    fn addrs() {
        assert_eq!(split_addr("h:7000"), Some(("h", 7000)));
        assert_eq!(split_addr("[::1]:7000"), Some(("::1", 7000)));
        assert_eq!(join_addr("::1", 7), "[::1]:7");
        assert_eq!(split_addr("h"), None);
        assert_eq!(split_addr("h:0"), None);
        assert_eq!(split_addr(":1"), None);
    }
}
