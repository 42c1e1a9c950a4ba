//! The subset of Python's pickle format that ProxyStore's stream events use:
//! plain data (dicts, lists, tuples, sets, str, bytes, int, float, bool,
//! None) and objects rebuilt from a class and a state (`NEWOBJ` + `BUILD`,
//! as pydantic models pickle) or a call (`REDUCE`).
//!
//! Reading never runs code: a class or a function is kept as its module and
//! name ([`Val::Global`]), an object as its class, arguments and state
//! ([`Val::Object`]); what they mean is for the caller to decide (the stream
//! events accept two pydantic classes and one function, nothing else).
//! Writing emits protocol 4 opcodes without memo or frames (valid in every
//! Python >= 3.4).

mod read;
mod write;

use std::cell::RefCell;
use std::rc::Rc;

use bytes::Bytes;

pub(crate) use read::loads;
pub(crate) use write::dump_into;
#[cfg(test)]
pub(crate) use write::dumps;

/// A shared, mutable container (pickle's memo can refer to it again).
pub(crate) type Shared<T> = Rc<RefCell<T>>;

/// A Python value.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    None,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Bytes(Bytes),
    List(Shared<Vec<Val>>),
    Tuple(Rc<Vec<Val>>),
    Set(Shared<Vec<Val>>),
    Dict(Shared<Vec<(Val, Val)>>),
    /// A class or function: module and qualified name.
    Global(Rc<(String, String)>),
    /// `cls.__new__(cls, *args)` or `f(*args)`, then `BUILD` with `state`.
    Object(Shared<Object>),
}

/// An object: what made it and the state given to it.
#[derive(Debug, Clone)]
pub(crate) struct Object {
    /// The class (`NEWOBJ`) or function (`REDUCE`).
    pub(crate) callable: Val,
    /// Positional arguments.
    pub(crate) args: Vec<Val>,
    /// The state of `BUILD`, if any.
    pub(crate) state: Option<Val>,
}

impl Val {
    pub(crate) fn str(s: impl Into<String>) -> Val {
        Val::Str(s.into())
    }

    pub(crate) fn list(v: Vec<Val>) -> Val {
        Val::List(Rc::new(RefCell::new(v)))
    }

    pub(crate) fn set(v: Vec<Val>) -> Val {
        Val::Set(Rc::new(RefCell::new(v)))
    }

    pub(crate) fn dict(v: Vec<(Val, Val)>) -> Val {
        Val::Dict(Rc::new(RefCell::new(v)))
    }

    /// A `dict` with string keys.
    pub(crate) fn str_dict<'a>(v: impl IntoIterator<Item = (&'a str, Val)>) -> Val {
        Val::dict(v.into_iter().map(|(k, v)| (Val::str(k), v)).collect())
    }

    pub(crate) fn global(module: &str, name: &str) -> Val {
        Val::Global(Rc::new((module.to_string(), name.to_string())))
    }

    /// An object made by `callable(*args)` (`REDUCE`) or, for a class with
    /// a state, `callable.__new__(callable)` then `BUILD` (`NEWOBJ`).
    pub(crate) fn object(callable: Val, args: Vec<Val>, state: Option<Val>) -> Val {
        Val::Object(Rc::new(RefCell::new(Object {
            callable,
            args,
            state,
        })))
    }

    /// The Python type's name, for error messages.
    pub(crate) fn type_name(&self) -> String {
        match self {
            Val::None => "None".into(),
            Val::Bool(_) => "bool".into(),
            Val::Int(_) => "int".into(),
            Val::Float(_) => "float".into(),
            Val::Str(_) => "str".into(),
            Val::Bytes(_) => "bytes".into(),
            Val::List(_) => "list".into(),
            Val::Tuple(_) => "tuple".into(),
            Val::Set(_) => "set".into(),
            Val::Dict(_) => "dict".into(),
            Val::Global(g) => format!("{}.{}", g.0, g.1),
            Val::Object(o) => match &o.borrow().callable {
                Val::Global(g) => format!("{}.{} object", g.0, g.1),
                _ => "object made by a call's result".into(),
            },
        }
    }

    /// The value of `key` in a dict with string keys.
    pub(crate) fn get(&self, key: &str) -> Option<Val> {
        match self {
            Val::Dict(d) => d
                .borrow()
                .iter()
                .find(|(k, _)| matches!(k, Val::Str(s) if s == key))
                .map(|(_, v)| v.clone()),
            _ => None,
        }
    }

    /// The module and name of a global, or of the class (function) that
    /// made an object.
    pub(crate) fn class_path(&self) -> Option<(String, String)> {
        match self {
            Val::Global(g) => Some((g.0.clone(), g.1.clone())),
            Val::Object(o) => match &o.borrow().callable {
                Val::Global(g) => Some((g.0.clone(), g.1.clone())),
                _ => None,
            },
            _ => None,
        }
    }
}

/// Moves the children of `v` (when `v` holds the last reference to them)
/// to `out`.
fn take_children(v: &mut Val, out: &mut Vec<Val>) {
    match v {
        Val::List(rc) | Val::Set(rc) => {
            if let Some(cell) = Rc::get_mut(rc) {
                out.append(cell.get_mut());
            }
        }
        Val::Dict(rc) => {
            if let Some(cell) = Rc::get_mut(rc) {
                for (k, x) in cell.get_mut().drain(..) {
                    out.push(k);
                    out.push(x);
                }
            }
        }
        Val::Tuple(rc) => {
            if let Some(t) = Rc::get_mut(rc) {
                out.append(t);
            }
        }
        Val::Object(rc) => {
            if let Some(cell) = Rc::get_mut(rc) {
                let o = cell.get_mut();
                out.push(std::mem::replace(&mut o.callable, Val::None));
                out.append(&mut o.args);
                out.extend(o.state.take());
            }
        }
        _ => {}
    }
}

impl Drop for Val {
    /// Without recursion: a pickle can nest containers as deep as it likes,
    /// and a recursive drop of that would overflow the stack.
    fn drop(&mut self) {
        let mut pending = Vec::new();
        take_children(self, &mut pending);
        while let Some(mut v) = pending.pop() {
            take_children(&mut v, &mut pending);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(v: &Val) -> Val {
        loads(dumps(v)).unwrap()
    }

    #[test]
    fn plain_values_round_trip() {
        let big = Bytes::from(vec![7u8; 70_000]);
        let v = Val::str_dict([
            ("none", Val::None),
            ("t", Val::Bool(true)),
            ("i", Val::Int(-5)),
            ("i2", Val::Int(300)),
            ("i4", Val::Int(-70_000)),
            ("big", Val::Int(1 << 70)),
            ("neg", Val::Int(-(1 << 70))),
            ("f", Val::Float(0.25)),
            ("s", Val::str("h\u{e9}llo")),
            ("long", Val::str("x".repeat(300))),
            ("b", Val::Bytes(big.clone())),
            ("l", Val::list(vec![Val::Int(1), Val::str("a")])),
            ("set", Val::set(vec![Val::Int(3)])),
        ]);
        let r = roundtrip(&v);
        assert!(matches!(r.get("none"), Some(Val::None)));
        assert!(matches!(r.get("t"), Some(Val::Bool(true))));
        assert!(matches!(r.get("i"), Some(Val::Int(-5))));
        assert!(matches!(r.get("i2"), Some(Val::Int(300))));
        assert!(matches!(r.get("i4"), Some(Val::Int(-70_000))));
        assert!(matches!(r.get("big").as_ref(), Some(Val::Int(x)) if *x == 1 << 70));
        assert!(matches!(r.get("neg").as_ref(), Some(Val::Int(x)) if *x == -(1 << 70)));
        assert!(matches!(r.get("f").as_ref(), Some(Val::Float(x)) if *x == 0.25));
        assert!(matches!(r.get("s").as_ref(), Some(Val::Str(s)) if s == "h\u{e9}llo"));
        assert!(matches!(r.get("long").as_ref(), Some(Val::Str(s)) if s.len() == 300));
        assert!(matches!(r.get("b").as_ref(), Some(Val::Bytes(b)) if *b == big));
        let Some(Val::List(l)) = &r.get("l") else {
            panic!("list")
        };
        assert!(matches!(l.borrow()[1], Val::Str(ref s) if s == "a"));
        let Some(Val::Set(s)) = &r.get("set") else {
            panic!("set")
        };
        assert_eq!(s.borrow().len(), 1);
    }

    #[test]
    fn objects_round_trip_with_class_and_state() {
        let state = Val::str_dict([("x", Val::Int(1))]);
        let v = Val::object(Val::global("m.sub", "C"), vec![], Some(state));
        let r = roundtrip(&v);
        assert_eq!(r.class_path(), Some(("m.sub".into(), "C".into())));
        let Val::Object(o) = &r else { panic!("object") };
        let o = o.borrow();
        assert!(matches!(
            o.state.as_ref().unwrap().get("x"),
            Some(Val::Int(1))
        ));
        let call = Val::object(
            Val::global("m", "f"),
            vec![Val::Bytes(Bytes::from_static(b"a"))],
            None,
        );
        let r = roundtrip(&call);
        let Val::Object(o) = &r else { panic!("call") };
        assert!(matches!(o.borrow().args[0], Val::Bytes(_)));
    }

    #[test]
    fn an_object_written_twice_is_written_once_and_read_back_shared() {
        let state = Val::str_dict([("big", Val::str("x".repeat(1000)))]);
        let o = Val::object(Val::global("m", "Config"), vec![], Some(state));
        let once = dumps(&Val::list(vec![o.clone()]));
        let twice = dumps(&Val::list(vec![o.clone(), o.clone(), o]));
        assert!(
            twice.len() < once.len() + 10,
            "{} vs {}",
            twice.len(),
            once.len()
        );
        let lv = loads(twice).unwrap();
        let Val::List(l) = &lv else { panic!("list") };
        let l = l.borrow();
        let (Val::Object(a), Val::Object(c)) = (&l[0], &l[2]) else {
            panic!("objects")
        };
        assert!(Rc::ptr_eq(a, c), "the same object");
        assert!(
            matches!(a.borrow().state.as_ref().unwrap().get("big"), Some(Val::Str(ref s)) if s.len() == 1000)
        );
    }

    #[test]
    fn deep_nesting_neither_overflows_the_stack_nor_converts() {
        // 99 999 lists, each appended into the one below it.
        let n = 99_999;
        let mut p = vec![0x80, 4];
        p.extend(std::iter::repeat_n(b']', n));
        p.extend(std::iter::repeat_n(b'a', n - 1));
        p.push(b'.');
        let v = loads(p).unwrap();
        assert!(crate::stream::pyconfig::val_to_json(&v).is_err());
        drop(v);
        // A chain of calls, each on the result of the one before.
        let mut p = b"\x80\x04cm\nf\n".to_vec();
        for _ in 0..50_000 {
            p.extend_from_slice(b")R");
        }
        p.push(b'.');
        let v = loads(p).unwrap();
        assert_eq!(v.type_name(), "object made by a call's result");
        assert_eq!(v.class_path(), None);
    }

    #[test]
    fn bad_input_is_an_error_never_a_panic() {
        for bad in [
            &b""[..],
            b"\x80",
            b"\x80\x04",
            b"\x80\x04}",
            b"\x80\x04\x8c\x05ab",
            b"\x80\x04X\xff\xff\xff\xffab.",
            b"\x80\x04s.",
            b"\x80\x04h\x07.",
            b"\x80\x04\xff.",
            b"\x80\x04(.",
            b"\x80\x04a.",
            b"\x80\x04\x8c\x01a\x8c\x01b\x8c\x01c\x93.",
        ] {
            assert!(loads(bad).is_err(), "{bad:?}");
        }
        // A list that contains itself loads (as Python's does).
        let cyc: &[u8] = b"\x80\x04]\x94h\x00a.";
        assert!(loads(cyc).is_ok());
    }
}
