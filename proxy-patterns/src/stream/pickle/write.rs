//! A pickle writer (protocol 4 opcodes, no frames). An object written twice
//! (the same `Rc`, e.g. one store configuration shared by the events of a
//! batch) is written once and referred to after (`MEMOIZE`, `BINGET`), as
//! Python's pickler does.

use std::collections::HashMap;
use std::rc::Rc;

use super::Val;

/// Memo indices of the objects written so far, by address.
type Memo = HashMap<usize, u32>;

/// Containers nested deeper than this are written as `None` (only a value
/// that contains itself gets there; the stream events never do).
const MAX_DEPTH: usize = 256;

fn len_op(out: &mut Vec<u8>, short: u8, long: u8, huge: u8, b: &[u8]) {
    if let (Some(s), true) = (u8::try_from(b.len()).ok(), short != 0) {
        out.push(short);
        out.push(s);
    } else if let Ok(n) = u32::try_from(b.len()) {
        out.push(long);
        out.extend_from_slice(&n.to_le_bytes());
    } else {
        out.push(huge);
        out.extend_from_slice(&(b.len() as u64).to_le_bytes());
    }
    out.extend_from_slice(b);
}

fn int(out: &mut Vec<u8>, i: i128) {
    if let Ok(b) = u8::try_from(i) {
        out.extend_from_slice(&[b'K', b]);
    } else if let Ok(v) = u16::try_from(i) {
        out.push(b'M');
        out.extend_from_slice(&v.to_le_bytes());
    } else if let Ok(v) = i32::try_from(i) {
        out.push(b'J');
        out.extend_from_slice(&v.to_le_bytes());
    } else {
        // LONG1: shortest two's complement little-endian.
        let all = i.to_le_bytes();
        let mut n = 16;
        while n > 1 {
            let (last, prev) = (all[n - 1], all[n - 2]);
            if (last == 0 && prev & 0x80 == 0) || (last == 0xff && prev & 0x80 != 0) {
                n -= 1;
            } else {
                break;
            }
        }
        out.extend_from_slice(&[0x8a, n as u8]);
        out.extend_from_slice(&all[..n]);
    }
}

fn global(out: &mut Vec<u8>, module: &str, name: &str) {
    out.push(b'c');
    out.extend_from_slice(module.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(name.as_bytes());
    out.push(b'\n');
}

fn write(out: &mut Vec<u8>, memo: &mut Memo, v: &Val, depth: usize) {
    if depth > MAX_DEPTH {
        out.push(b'N');
        return;
    }
    let d = depth + 1;
    match v {
        Val::None => out.push(b'N'),
        Val::Bool(true) => out.push(0x88),
        Val::Bool(false) => out.push(0x89),
        Val::Int(i) => int(out, *i),
        Val::Float(f) => {
            out.push(b'G');
            out.extend_from_slice(&f.to_be_bytes());
        }
        Val::Str(s) => len_op(out, 0x8c, b'X', 0x8d, s.as_bytes()),
        Val::Bytes(b) => len_op(out, b'C', b'B', 0x8e, b),
        Val::List(l) => {
            out.extend_from_slice(b"](");
            for x in l.borrow().iter() {
                write(out, memo, x, d);
            }
            out.push(b'e');
        }
        Val::Tuple(t) => {
            out.push(b'(');
            for x in t.iter() {
                write(out, memo, x, d);
            }
            out.push(b't');
        }
        Val::Set(s) => {
            out.extend_from_slice(&[0x8f, b'(']);
            for x in s.borrow().iter() {
                write(out, memo, x, d);
            }
            out.push(0x90);
        }
        Val::Dict(m) => {
            out.extend_from_slice(b"}(");
            for (k, x) in m.borrow().iter() {
                write(out, memo, k, d);
                write(out, memo, x, d);
            }
            out.push(b'u');
        }
        Val::Global(g) => global(out, &g.0, &g.1),
        Val::Object(rc) => {
            let addr = Rc::as_ptr(rc) as usize;
            if let Some(&i) = memo.get(&addr) {
                match u8::try_from(i) {
                    Ok(b) => out.extend_from_slice(&[b'h', b]),
                    Err(_) => {
                        out.push(b'j');
                        out.extend_from_slice(&i.to_le_bytes());
                    }
                }
                return;
            }
            let o = rc.borrow();
            write(out, memo, &o.callable, d);
            write(out, memo, &Val::Tuple(Rc::new(o.args.clone())), d);
            // A class with a state is made with cls.__new__ (NEWOBJ), as
            // Python pickles it; anything else is called (REDUCE).
            out.push(if o.state.is_some() { 0x81 } else { b'R' });
            if let Some(s) = &o.state {
                write(out, memo, s, d);
                out.push(b'b');
            }
            // MEMOIZE: the object gets the next memo index.
            out.push(0x94);
            let i = memo.len() as u32;
            memo.insert(addr, i);
        }
    }
}

/// Write `v` as one pickle.
#[cfg(test)]
pub(crate) fn dumps(v: &Val) -> Vec<u8> {
    let mut out = Vec::new();
    dump_into(&mut out, v);
    out
}

/// Append `v` as one pickle to `out` (reserve what large values need first:
/// bytes are copied in once).
pub(crate) fn dump_into(out: &mut Vec<u8>, v: &Val) {
    out.extend_from_slice(&[0x80, 4]);
    write(out, &mut Memo::new(), v, 0);
    out.push(b'.');
}
