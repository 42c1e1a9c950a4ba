//! An LRU cache of encoded objects bounded in bytes.

use bytes::Bytes;
use lru::LruCache;

use crate::key::Key;

/// LRU of encoded objects whose total size stays within a byte budget.
/// Objects larger than the whole budget are not cached.
#[derive(Debug)]
pub(crate) struct ByteLru {
    map: LruCache<Key, Bytes>,
    bytes: u64,
    budget: u64,
}

impl ByteLru {
    pub(crate) fn new(budget: u64) -> Self {
        ByteLru {
            map: LruCache::unbounded(),
            bytes: 0,
            budget,
        }
    }

    pub(crate) fn get(&mut self, key: &Key) -> Option<Bytes> {
        self.map.get(key).cloned()
    }

    pub(crate) fn contains(&self, key: &Key) -> bool {
        self.map.contains(key)
    }

    pub(crate) fn insert(&mut self, key: Key, value: Bytes) {
        let size = value.len() as u64;
        if size > self.budget {
            return;
        }
        if let Some(old) = self.map.put(key, value) {
            self.bytes -= old.len() as u64;
        }
        self.bytes += size;
        while self.bytes > self.budget {
            match self.map.pop_lru() {
                Some((_, v)) => self.bytes -= v.len() as u64,
                None => break,
            }
        }
    }

    pub(crate) fn remove(&mut self, key: &Key) {
        if let Some(v) = self.map.pop(key) {
            self.bytes -= v.len() as u64;
        }
    }

    pub(crate) fn clear(&mut self) {
        self.map.clear();
        self.bytes = 0;
    }

    #[cfg(test)]
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_in_bytes() {
        let mut c = ByteLru::new(100);
        let k = |i: u8| Key::from_bytes(vec![i]);
        c.insert(k(1), Bytes::from(vec![0; 40]));
        c.insert(k(2), Bytes::from(vec![0; 40]));
        assert!(c.get(&k(1)).is_some()); // 1 is now most recent
        c.insert(k(3), Bytes::from(vec![0; 40])); // evicts 2
        assert!(c.contains(&k(1)) && !c.contains(&k(2)) && c.contains(&k(3)));
        assert_eq!(c.bytes(), 80);
        c.insert(k(4), Bytes::from(vec![0; 101])); // too big: not cached
        assert!(!c.contains(&k(4)));
        c.insert(k(1), Bytes::from(vec![0; 10])); // replace
        assert_eq!(c.bytes(), 50);
        c.remove(&k(1));
        assert_eq!(c.bytes(), 40);
    }
}
