//! Batches: order, missing keys and repeated keys in `get_batch`.

use bytes::Bytes;

use crate::conformance::Ctx;
use crate::conformance::data::pattern;
use crate::connector::Payload;
use crate::key::Key;

/// Batches keep order, mix in missing keys, and match single gets.
pub fn batch_order(ctx: &Ctx) {
    let c = &ctx.connector;
    let items: Vec<Bytes> = (0..20).map(|i| pattern(100 + i * 37, i as u8)).collect();
    let keys = c
        .put_batch(items.iter().cloned().map(Payload::from).collect())
        .unwrap();
    assert_eq!(keys.len(), items.len());
    let gone = keys[5].clone();
    c.evict(&gone).unwrap();
    let mut order: Vec<usize> = (0..20).rev().collect();
    order.swap(3, 11);
    let ask: Vec<Key> = order.iter().map(|&i| keys[i].clone()).collect();
    let got = c.get_batch(&ask).unwrap();
    assert_eq!(got.len(), ask.len());
    for (j, &i) in order.iter().enumerate() {
        if i == 5 {
            assert_eq!(got[j], None);
        } else {
            assert_eq!(got[j].as_ref(), Some(&items[i]), "item {i}");
        }
    }
    assert!(c.put_batch(vec![]).unwrap().is_empty());
    assert!(c.get_batch(&[]).unwrap().is_empty());
    for k in &keys {
        c.evict(k).unwrap();
    }
}

/// `get_batch` with repeated keys, repeated missing keys, and a mix: every
/// position gets its own key's object.
pub fn get_batch_duplicates(ctx: &Ctx) {
    let c = &ctx.connector;
    let a = pattern(300, 31);
    let b = pattern(5000, 32);
    let ka = c.put(Payload::from(a.clone())).unwrap();
    let kb = c.put(Payload::from(b.clone())).unwrap();
    let km = c.put(Payload::from(pattern(10, 33))).unwrap();
    c.evict(&km).unwrap();
    let ask = [&ka, &kb, &ka, &km, &ka, &kb, &km].map(Key::clone);
    let want = [Some(&a), Some(&b), Some(&a), None, Some(&a), Some(&b), None];
    let got = c.get_batch(&ask).unwrap();
    assert_eq!(got.len(), ask.len(), "one result per key");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.as_ref(), w, "position {i} of a batch with repeated keys");
    }
    assert_eq!(
        c.get_batch(&[ka.clone(), ka.clone()]).unwrap(),
        vec![Some(a.clone()), Some(a)]
    );
    assert_eq!(
        c.get_batch(&[km.clone(), km]).unwrap(),
        vec![None, None],
        "a missing key twice"
    );
    c.evict(&ka).unwrap();
    c.evict(&kb).unwrap();
}
