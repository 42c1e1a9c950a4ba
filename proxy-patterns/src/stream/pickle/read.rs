//! A pickle reader (protocols 0-5, the opcodes plain data and objects use).
//! Code is never run: see the parent module.

use std::collections::HashMap;
use std::rc::Rc;

use bytes::Bytes;
use proxy_core::{Error, Result};

use super::Val;

/// Nested containers deeper than this are refused.
const MAX_STACK: usize = 100_000;

fn bad(reason: impl std::fmt::Display) -> Error {
    Error::decode(format!("malformed pickle: {reason}"))
}

struct Reader {
    data: Bytes,
    pos: usize,
    stack: Vec<Val>,
    marks: Vec<usize>,
    memo: HashMap<u64, Val>,
}

impl Reader {
    fn take(&mut self, n: usize) -> Result<Bytes> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| bad(format!("truncated at byte {}", self.pos)))?;
        let b = self.data.slice(self.pos..end);
        self.pos = end;
        Ok(b)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn le(&mut self, n: usize) -> Result<u64> {
        let b = self.take(n)?;
        let mut a = [0u8; 8];
        a[..n].copy_from_slice(&b);
        Ok(u64::from_le_bytes(a))
    }

    fn len(&mut self, n: usize) -> Result<usize> {
        usize::try_from(self.le(n)?).map_err(|_| bad("length does not fit in memory"))
    }

    fn line(&mut self) -> Result<String> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&c| c == b'\n')
            .ok_or_else(|| bad("unterminated text argument"))?;
        let s = String::from_utf8(rest[..n].to_vec()).map_err(|_| bad("text is not UTF-8"))?;
        self.pos += n + 1;
        Ok(s)
    }

    fn utf8(&mut self, n: usize) -> Result<Val> {
        let b = self.take(n)?;
        String::from_utf8(b.to_vec())
            .map(Val::Str)
            .map_err(|_| bad("str is not UTF-8"))
    }

    fn push(&mut self, v: Val) -> Result<()> {
        if self.stack.len() >= MAX_STACK {
            return Err(bad("stack too deep"));
        }
        self.stack.push(v);
        Ok(())
    }

    fn pop(&mut self) -> Result<Val> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return Err(bad(format!("stack underflow at byte {}", self.pos)));
        }
        Ok(self.stack.pop().expect("checked above"))
    }

    fn top(&self) -> Result<&Val> {
        self.stack
            .last()
            .ok_or_else(|| bad(format!("empty stack at byte {}", self.pos)))
    }

    /// The items pushed since the last mark, which is removed.
    fn pop_mark(&mut self) -> Result<Vec<Val>> {
        let m = self
            .marks
            .pop()
            .ok_or_else(|| bad(format!("no mark at byte {}", self.pos)))?;
        Ok(self.stack.split_off(m))
    }

    fn memo_get(&self, i: u64) -> Result<Val> {
        self.memo
            .get(&i)
            .cloned()
            .ok_or_else(|| bad(format!("memo entry {i} was never stored")))
    }

    fn memo_put(&mut self, i: u64) -> Result<()> {
        let v = self.top()?.clone();
        self.memo.insert(i, v);
        Ok(())
    }

    fn set_items(&mut self, target: &Val, items: Vec<Val>) -> Result<()> {
        let Val::Dict(d) = target else {
            return Err(bad(format!("SETITEM(S) on a {}", target.type_name())));
        };
        if items.len() % 2 != 0 {
            return Err(bad("odd number of dict items"));
        }
        let mut d = d.borrow_mut();
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            match d
                .iter_mut()
                .find(|(old, _)| matches!((old, &k), (Val::Str(a), Val::Str(b)) if a == b))
            {
                Some(slot) => slot.1 = v,
                None => d.push((k, v)),
            }
        }
        Ok(())
    }

    fn extend(&mut self, target: &Val, items: Vec<Val>) -> Result<()> {
        match target {
            Val::List(l) => l.borrow_mut().extend(items),
            Val::Set(s) => s.borrow_mut().extend(items),
            other => {
                return Err(bad(format!(
                    "APPEND(S)/ADDITEMS on a {}",
                    other.type_name()
                )));
            }
        }
        Ok(())
    }

    fn run(&mut self) -> Result<Val> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    let v = self.u8()?;
                    if v > 5 {
                        return Err(bad(format!("protocol {v} (this reader knows 0 to 5)")));
                    }
                }
                0x95 => {
                    self.take(8)?; // FRAME: a length hint only
                }
                b'.' => {
                    let v = self.pop()?;
                    if !self.stack.is_empty() || !self.marks.is_empty() {
                        return Err(bad("values left on the stack at STOP"));
                    }
                    return Ok(v);
                }
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?.clone();
                    self.push(v)?;
                }
                b'N' => self.push(Val::None)?,
                0x88 => self.push(Val::Bool(true))?,
                0x89 => self.push(Val::Bool(false))?,
                b'J' => {
                    let v = self.le(4)? as u32 as i32;
                    self.push(Val::Int(v.into()))?;
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Val::Int(v.into()))?;
                }
                b'M' => {
                    let v = self.le(2)?;
                    self.push(Val::Int(v.into()))?;
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a {
                        self.u8()? as usize
                    } else {
                        self.len(4)?
                    };
                    if n > 16 {
                        return Err(bad(format!("integer of {n} bytes (at most 16 here)")));
                    }
                    let b = self.take(n)?;
                    let mut a = if b.last().is_some_and(|&x| x & 0x80 != 0) {
                        [0xffu8; 16]
                    } else {
                        [0u8; 16]
                    };
                    a[..n].copy_from_slice(&b);
                    self.push(Val::Int(i128::from_le_bytes(a)))?;
                }
                b'I' | b'L' => {
                    let s = self.line()?;
                    let s = s.trim_end_matches('L');
                    let v = match s {
                        "01" => Val::Bool(true),
                        "00" => Val::Bool(false),
                        s => Val::Int(s.parse().map_err(|_| bad(format!("integer {s:?}")))?),
                    };
                    self.push(v)?;
                }
                b'G' => {
                    let b = self.take(8)?;
                    let v = f64::from_be_bytes(b[..].try_into().expect("8 bytes"));
                    self.push(Val::Float(v))?;
                }
                b'F' => {
                    let s = self.line()?;
                    let v = s.parse().map_err(|_| bad(format!("float {s:?}")))?;
                    self.push(Val::Float(v))?;
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let v = self.utf8(n)?;
                    self.push(v)?;
                }
                b'X' | 0x8d => {
                    let n = self.len(if op == b'X' { 4 } else { 8 })?;
                    let v = self.utf8(n)?;
                    self.push(v)?;
                }
                b'C' | b'B' | 0x8e | 0x96 => {
                    let n = match op {
                        b'C' => self.u8()? as usize,
                        b'B' => self.len(4)?,
                        _ => self.len(8)?,
                    };
                    let b = self.take(n)?;
                    self.push(Val::Bytes(b))?;
                }
                b'}' => self.push(Val::dict(Vec::new()))?,
                b']' => self.push(Val::list(Vec::new()))?,
                b')' => self.push(Val::Tuple(Rc::new(Vec::new())))?,
                0x8f => self.push(Val::set(Vec::new()))?,
                b'd' => {
                    let items = self.pop_mark()?;
                    let d = Val::dict(Vec::new());
                    self.set_items(&d, items)?;
                    self.push(d)?;
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Val::list(items))?;
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Val::Tuple(Rc::new(items)))?;
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    self.push(Val::set(items))?;
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Val::Tuple(Rc::new(items)))?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    let d = self.top()?.clone();
                    self.set_items(&d, vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let d = self.top()?.clone();
                    self.set_items(&d, items)?;
                }
                b'a' => {
                    let v = self.pop()?;
                    let l = self.top()?.clone();
                    self.extend(&l, vec![v])?;
                }
                b'e' | 0x90 => {
                    let items = self.pop_mark()?;
                    let l = self.top()?.clone();
                    self.extend(&l, items)?;
                }
                0x94 => {
                    let i = self.memo.len() as u64;
                    self.memo_put(i)?;
                }
                b'q' => {
                    let i = self.u8()?.into();
                    self.memo_put(i)?;
                }
                b'r' => {
                    let i = self.le(4)?;
                    self.memo_put(i)?;
                }
                b'p' => {
                    let s = self.line()?;
                    let i = s.parse().map_err(|_| bad(format!("memo index {s:?}")))?;
                    self.memo_put(i)?;
                }
                b'h' => {
                    let i = self.u8()?.into();
                    let v = self.memo_get(i)?;
                    self.push(v)?;
                }
                b'j' => {
                    let i = self.le(4)?;
                    let v = self.memo_get(i)?;
                    self.push(v)?;
                }
                b'g' => {
                    let s = self.line()?;
                    let i = s.parse().map_err(|_| bad(format!("memo index {s:?}")))?;
                    let v = self.memo_get(i)?;
                    self.push(v)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push(Val::global(&module, &name))?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Val::Str(module), Val::Str(name)) = (&module, &name) else {
                        return Err(bad("STACK_GLOBAL needs two str"));
                    };
                    self.push(Val::global(module, name))?;
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let Val::Tuple(args) = &args else {
                        return Err(bad(format!("call arguments are a {}", args.type_name())));
                    };
                    self.push(Val::object(callable, args.to_vec(), None))?;
                }
                0x92 => {
                    let _kwargs = self.pop()?;
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let Val::Tuple(args) = &args else {
                        return Err(bad(format!("call arguments are a {}", args.type_name())));
                    };
                    self.push(Val::object(callable, args.to_vec(), None))?;
                }
                b'b' => {
                    let state = self.pop()?;
                    match self.top()? {
                        Val::Object(o) => o.borrow_mut().state = Some(state),
                        other => return Err(bad(format!("BUILD on a {}", other.type_name()))),
                    }
                }
                other => {
                    return Err(bad(format!(
                        "opcode 0x{other:02x} at byte {} is not supported (persistent ids, \
                         extension registry, out-of-band buffers, Python 2 strings)",
                        self.pos - 1
                    )));
                }
            }
        }
    }
}

/// Read one pickle (the whole input).
pub(crate) fn loads(data: impl Into<Bytes>) -> Result<Val> {
    let mut r = Reader {
        data: data.into(),
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    };
    let v = r.run()?;
    if r.pos != r.data.len() {
        return Err(bad(format!(
            "{} bytes after the end of the pickle",
            r.data.len() - r.pos
        )));
    }
    Ok(v)
}
