//! Encoding objects to bytes and back, in ProxyStore's wire format.
//!
//! Every encoded object starts with a two-letter identifier and a newline, as
//! in the Python ProxyStore (`proxystore.serialize`), so objects stored by one
//! side are read by the other:
//!
//! | identifier | Rust types | payload | Python type |
//! |---|---|---|---|
//! | `BS` | [`Bytes`], `Vec<u8>` | the bytes | `bytes` |
//! | `US` | `String` | UTF-8 | `str` |
//! | `NP` | [`NdArray`], `Vec<f64>`, `Vec<f32>`, `Vec<i64>`, `Vec<i32>`, `Vec<u64>`, `Vec<u32>`, `Vec<i16>`, `Vec<u16>`, `Vec<i8>` | NumPy `.npy` (v1-v3) | `numpy.ndarray` |
//! | `RP` | any other `serde` type | [postcard](https://docs.rs/postcard) | (Rust only) |
//!
//! The type decides the format: [`encode`] and [`decode`] look at `T` (by
//! `TypeId`) and use the matching row, so any `serde` type can be proxied and
//! byte-like types keep both interoperability and zero copies.
//! Decoding into [`Bytes`] or [`NdArray`] is zero-copy (a slice of the received
//! buffer, e.g. registered memory or a file mapping); `Vec`s and `String`s copy
//! once, because they own their memory: use `Bytes` where the copy matters.
//! Python's pickle formats (`PK`, `CP`, `PD`, `PL`) are recognised and refused
//! with an error that says so.

use std::any::{Any, TypeId};
use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::connector::Payload;
use crate::error::{Error, Result};

/// Anything that can be stored and proxied: every `serde` type that is `Send +
/// Sync + 'static` (blanket-implemented).
pub trait Object: Serialize + DeserializeOwned + Send + Sync + 'static {}
impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> Object for T {}

/// `bytes` (raw).
pub const BYTES: [u8; 2] = *b"BS";
/// `str` (UTF-8).
pub const STR: [u8; 2] = *b"US";
/// NumPy array (`.npy`).
pub const NUMPY: [u8; 2] = *b"NP";
/// Rust serde value (postcard).
pub const POSTCARD: [u8; 2] = *b"RP";

/// Alignment of the payload of byte strings (`BS`) and arrays (`NP`) within
/// an encoded object: their header line is padded with spaces to this many
/// bytes (`BS` + 61 spaces + `\n`), so the payload starts on a 64-byte
/// boundary whenever the object does (every connector that hands out views
/// starts objects there). The Python ProxyStore reads the padded line
/// unchanged (it strips the identifier line); it writes the 3-byte form
/// (`BS\n`), which is read as before.
pub const PAYLOAD_ALIGN: usize = crate::mem::ALIGN;

/// Shortest header: two letters and a newline.
const MIN_HEADER: usize = 3;

/// The 3-byte header of `id` (strings and postcard: decoded by a copy, so
/// their payload's alignment does not matter).
fn short_header(id: [u8; 2]) -> Bytes {
    match id {
        STR => Bytes::from_static(b"US\n"),
        _ => Bytes::from_static(b"RP\n"),
    }
}

/// The header of `id` padded to [`PAYLOAD_ALIGN`] bytes (bytes and arrays,
/// whose payloads are handed out in place).
fn padded_header(id: [u8; 2]) -> Bytes {
    static BS: [u8; PAYLOAD_ALIGN] = padded(BYTES);
    static NP: [u8; PAYLOAD_ALIGN] = padded(NUMPY);
    match id {
        NUMPY => Bytes::from_static(&NP),
        _ => Bytes::from_static(&BS),
    }
}

const fn padded(id: [u8; 2]) -> [u8; PAYLOAD_ALIGN] {
    let mut h = [b' '; PAYLOAD_ALIGN];
    h[0] = id[0];
    h[1] = id[1];
    h[PAYLOAD_ALIGN - 1] = b'\n';
    h
}

/// An object encoded elsewhere (the Python ProxyStore writes `BS\n` and
/// `NP\n`) with its bytes or array header padded to [`PAYLOAD_ALIGN`], so
/// that a connector storing it hands out an aligned payload. No copy: the
/// padded header and a slice of `buf`. Anything else is returned as it is.
pub fn align_header(buf: Bytes) -> Payload {
    match buf.get(..MIN_HEADER) {
        Some(b"BS\n") => Payload::new()
            .with(padded_header(BYTES))
            .with(buf.slice(MIN_HEADER..)),
        Some(b"NP\n") => Payload::new()
            .with(padded_header(NUMPY))
            .with(buf.slice(MIN_HEADER..)),
        _ => Payload::from(buf),
    }
}

/// Split an encoded buffer into its identifier and payload.
///
/// The header is two ASCII letters or digits, then any number of spaces
/// (the padding of [`PAYLOAD_ALIGN`]), then a newline, at most
/// [`PAYLOAD_ALIGN`] bytes in all.
pub fn split(buf: &Bytes) -> Result<([u8; 2], Bytes)> {
    if buf.len() < MIN_HEADER {
        return Err(Error::decode(format!(
            "buffer of {} bytes is too short for a format header (truncated or not an encoded object)",
            buf.len()
        )));
    }
    let line = &buf[..buf.len().min(PAYLOAD_ALIGN)];
    let end = line[2..]
        .iter()
        .position(|&c| c != b' ')
        .map(|i| i + 2)
        .filter(|&i| line[i] == b'\n');
    let Some(end) =
        end.filter(|_| line[0].is_ascii_alphanumeric() && line[1].is_ascii_alphanumeric())
    else {
        return Err(Error::decode(format!(
            "no format header: starts with {:?} (corrupt, or not written by ProxyStore)",
            String::from_utf8_lossy(&buf[..MIN_HEADER])
        )));
    };
    Ok(([buf[0], buf[1]], buf.slice(end + 1..)))
}

fn id_name(id: [u8; 2]) -> String {
    let s = String::from_utf8_lossy(&id).into_owned();
    match &id {
        b"BS" => "BS (bytes)".into(),
        b"US" => "US (str)".into(),
        b"NP" => "NP (numpy array)".into(),
        b"RP" => "RP (Rust serde/postcard)".into(),
        b"PK" | b"CP" => format!("{s} (Python pickle, cannot be decoded in Rust)"),
        b"PD" => "PD (pandas DataFrame pickle, cannot be decoded in Rust)".into(),
        b"PL" => "PL (polars DataFrame, not supported)".into(),
        _ => format!("{s} (unknown format)"),
    }
}

fn expect(found: [u8; 2], want: [u8; 2], ty: &str) -> Result<()> {
    if found == want {
        Ok(())
    } else {
        Err(Error::decode(format!(
            "wrong type: asked for {ty}, which needs format {}, but the object is {}",
            id_name(want),
            id_name(found)
        )))
    }
}

macro_rules! numpy_vec_types {
    ($m:ident) => {
        $m!(f64, "<f8");
        $m!(f32, "<f4");
        $m!(i64, "<i8");
        $m!(i32, "<i4");
        $m!(u64, "<u8");
        $m!(u32, "<u4");
        $m!(i16, "<i2");
        $m!(u16, "<u2");
        $m!(i8, "|i1");
    };
}

/// Encode an object (see the module docs for the format chosen per type).
pub fn encode<T: Object>(obj: &T) -> Result<Payload> {
    let any = obj as &dyn Any;
    if let Some(b) = any.downcast_ref::<Bytes>() {
        return Ok(Payload::new().with(padded_header(BYTES)).with(b.clone()));
    }
    if let Some(v) = any.downcast_ref::<Vec<u8>>() {
        return Ok(Payload::new()
            .with(padded_header(BYTES))
            .with(Bytes::copy_from_slice(v)));
    }
    if let Some(s) = any.downcast_ref::<String>() {
        return Ok(Payload::new()
            .with(short_header(STR))
            .with(Bytes::copy_from_slice(s.as_bytes())));
    }
    if let Some(a) = any.downcast_ref::<NdArray>() {
        return a.encode();
    }
    macro_rules! try_vec {
        ($t:ty, $d:literal) => {
            if let Some(v) = any.downcast_ref::<Vec<$t>>() {
                return NdArray::from_slice::<$t>(v).encode();
            }
        };
    }
    numpy_vec_types!(try_vec);
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&short_header(POSTCARD));
    let out = postcard::to_extend(obj, out).map_err(|e| Error::Encode {
        reason: format!("postcard cannot encode {}: {e}", std::any::type_name::<T>()),
    })?;
    Ok(Payload::from(out))
}

fn cast<T: 'static, U: 'static>(u: U) -> T {
    *(Box::new(u) as Box<dyn Any>)
        .downcast::<T>()
        .expect("caller checked TypeId equality")
}

/// Decode an object of type `T` from an encoded buffer.
///
/// Errors (never panics) on a truncated or corrupt buffer, an unknown or
/// Python-only format, or a format that does not match `T`.
pub fn decode<T: Object>(buf: Bytes) -> Result<T> {
    let (id, body) = split(&buf)?;
    let t = TypeId::of::<T>();
    let name = std::any::type_name::<T>();
    if t == TypeId::of::<Bytes>() {
        expect(id, BYTES, name)?;
        return Ok(cast(body));
    }
    if t == TypeId::of::<Vec<u8>>() {
        expect(id, BYTES, name)?;
        return Ok(cast(body.to_vec()));
    }
    if t == TypeId::of::<String>() {
        expect(id, STR, name)?;
        let s = std::str::from_utf8(&body)
            .map_err(|e| Error::decode(format!("US object is not valid UTF-8: {e}")))?;
        return Ok(cast(s.to_owned()));
    }
    if t == TypeId::of::<NdArray>() {
        expect(id, NUMPY, name)?;
        return Ok(cast(NdArray::parse_npy(body)?));
    }
    macro_rules! try_vec {
        ($t:ty, $d:literal) => {
            if t == TypeId::of::<Vec<$t>>() {
                expect(id, NUMPY, name)?;
                let a = NdArray::parse_npy(body)?;
                return Ok(cast(a.to_vec::<$t>()?));
            }
        };
    }
    numpy_vec_types!(try_vec);
    expect(id, POSTCARD, name)?;
    match postcard::take_from_bytes::<T>(&body) {
        Ok((v, [])) => Ok(v),
        Ok((_, rest)) => Err(Error::decode(format!(
            "wrong type or corrupt object: {} bytes left over after decoding {name}",
            rest.len()
        ))),
        Err(e) => Err(Error::decode(format!(
            "cannot decode {name} from RP payload of {} bytes: {e} (wrong type, truncated or corrupt)",
            body.len()
        ))),
    }
}

/// Element types of [`NdArray`] that can be viewed as Rust numbers.
pub trait Element: Copy + Send + Sync + 'static {
    /// NumPy `descr` (little-endian), e.g. `"<f8"`.
    const DESCR: &'static str;
}
macro_rules! impl_element {
    ($t:ty, $d:literal) => {
        impl Element for $t {
            const DESCR: &'static str = $d;
        }
    };
}
numpy_vec_types!(impl_element);
impl_element!(u8, "|u1");

/// An n-dimensional NumPy array: dtype, shape and the raw element bytes.
///
/// Decoding one is zero-copy: `data` is a slice of the received buffer.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NdArray {
    /// NumPy `descr` string, e.g. `"<f8"` for little-endian float64.
    pub descr: String,
    /// Dimensions; `[]` is a scalar.
    pub shape: Vec<usize>,
    /// Whether the data is in Fortran (column-major) order.
    pub fortran_order: bool,
    /// Raw element bytes (`shape.product() * itemsize` bytes).
    pub data: Bytes,
}

/// Elements of an array of `shape`: 0 when any dimension is 0 (whatever
/// the others), else their product, `None` if it overflows. One rule for
/// arrays built here, decoded through serde and read from `.npy` headers,
/// so that whatever encodes also decodes.
fn element_count(shape: &[usize]) -> Option<usize> {
    if shape.contains(&0) {
        return Some(0);
    }
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

impl fmt::Debug for NdArray {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NdArray({}, shape {:?}{}, {} bytes)",
            self.descr,
            self.shape,
            if self.fortran_order { ", F order" } else { "" },
            self.data.len()
        )
    }
}

fn itemsize(descr: &str) -> Option<usize> {
    let digits = descr.get(2..)?;
    if !matches!(descr.as_bytes().first(), Some(b'<' | b'|' | b'=' | b'>')) {
        return None;
    }
    if !matches!(
        descr.as_bytes().get(1),
        Some(b'f' | b'i' | b'u' | b'b' | b'c')
    ) {
        return None;
    }
    digits.parse().ok().filter(|n: &usize| (1..=16).contains(n))
}

/// Bytes per element of a dtype this codec encodes and decodes, or why not:
/// one rule for encoding and for `.npy` headers, so that whatever encodes
/// also decodes (big-endian dtypes of more than one byte are refused by
/// both).
fn dtype_itemsize(descr: &str) -> std::result::Result<usize, String> {
    let item = itemsize(descr).ok_or_else(|| format!("unsupported dtype '{descr}'"))?;
    if descr.starts_with('>') && item > 1 {
        return Err(format!("big-endian dtype '{descr}' is not supported"));
    }
    Ok(item)
}

impl NdArray {
    /// A 1-D array copied from a slice.
    pub fn from_slice<T: Element>(v: &[T]) -> NdArray {
        let n = std::mem::size_of_val(v);
        // SAFETY: `T: Element` is a plain number type (no padding, no invalid
        // bit patterns); viewing `n` initialised bytes of `v` as `u8` is sound.
        let bytes = unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), n) };
        NdArray {
            descr: T::DESCR.to_string(),
            shape: vec![v.len()],
            fortran_order: false,
            data: Bytes::copy_from_slice(bytes),
        }
    }

    /// Number of elements (product of the shape; `usize::MAX` for a shape
    /// whose product overflows, which no array's data can match).
    pub fn len(&self) -> usize {
        self.checked_len().unwrap_or(usize::MAX)
    }

    /// Product of the shape, `None` if it overflows (a shape read from
    /// untrusted bytes can hold any dimensions).
    fn checked_len(&self) -> Option<usize> {
        element_count(&self.shape)
    }

    /// Data bytes the shape needs at `item` bytes per element, `None` on overflow.
    fn data_len(&self, item: usize) -> Option<usize> {
        self.checked_len()?.checked_mul(item)
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copy the elements into a `Vec<T>` (C order as stored). Fails if the
    /// dtype is not `T`'s.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        let native = T::DESCR.replace('<', "=");
        if self.descr != T::DESCR && self.descr != native {
            return Err(Error::decode(format!(
                "wrong type: array has dtype '{}', asked for {} ('{}')",
                self.descr,
                std::any::type_name::<T>(),
                T::DESCR
            )));
        }
        let size = std::mem::size_of::<T>();
        if self.data_len(size) != Some(self.data.len()) {
            return Err(Error::decode(format!(
                "array data has {} bytes, which does not match shape {:?} of '{}'",
                self.data.len(),
                self.shape,
                self.descr
            )));
        }
        let mut out: Vec<T> = Vec::with_capacity(self.len());
        // SAFETY: `out` has capacity for `len` elements of `T`, i.e. exactly
        // `data.len()` bytes; the source is initialised and does not overlap a
        // fresh allocation; every bit pattern is a valid `T: Element`.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.data.as_ptr(),
                out.as_mut_ptr().cast::<u8>(),
                self.data.len(),
            );
            out.set_len(self.len());
        }
        Ok(out)
    }

    fn npy_header(&self) -> Vec<u8> {
        let shape = match self.shape.as_slice() {
            [one] => format!("({one},)"),
            dims => format!(
                "({})",
                dims.iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let mut dict = format!(
            "{{'descr': '{}', 'fortran_order': {}, 'shape': {}, }}",
            self.descr,
            if self.fortran_order { "True" } else { "False" },
            shape
        );
        // Pad so that magic(6) + version(2) + len(2) + dict + '\n' is a multiple of 64.
        let total = 10 + dict.len() + 1;
        dict.extend(std::iter::repeat_n(' ', (64 - total % 64) % 64));
        dict.push('\n');
        let mut h = Vec::with_capacity(10 + dict.len());
        h.extend_from_slice(b"\x93NUMPY\x01\x00");
        h.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        h.extend_from_slice(dict.as_bytes());
        h
    }

    fn encode(&self) -> Result<Payload> {
        let item = dtype_itemsize(&self.descr).map_err(|e| Error::Encode {
            reason: format!("NumPy array: {e}"),
        })?;
        if self.data_len(item) != Some(self.data.len()) {
            return Err(Error::Encode {
                reason: format!(
                    "array data has {} bytes but shape {:?} of '{}' needs {}",
                    self.data.len(),
                    self.shape,
                    self.descr,
                    self.data_len(item)
                        .map_or("more than usize::MAX".into(), |n| n.to_string())
                ),
            });
        }
        let mut h = padded_header(NUMPY).to_vec();
        h.extend_from_slice(&self.npy_header());
        Ok(Payload::new().with(h).with(self.data.clone()))
    }

    /// Parse a `.npy` buffer (format versions 1.0, 2.0 and 3.0); the data is a
    /// zero-copy slice of `buf`.
    pub fn parse_npy(buf: Bytes) -> Result<NdArray> {
        let bad = |why: &str| Error::decode(format!("invalid .npy data: {why}"));
        if buf.len() < 10 || &buf[..6] != b"\x93NUMPY" {
            return Err(bad("missing \\x93NUMPY magic (truncated or corrupt)"));
        }
        let (hlen, start): (usize, usize) = match buf[6] {
            1 => (u16::from_le_bytes([buf[8], buf[9]]) as usize, 10),
            2 | 3 if buf.len() >= 12 => (
                u32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize,
                12,
            ),
            v => return Err(bad(&format!("unsupported format version {v}"))),
        };
        let end = start
            .checked_add(hlen)
            .filter(|&e| e <= buf.len())
            .ok_or_else(|| bad("header runs past the end (truncated)"))?;
        let dict = std::str::from_utf8(&buf[start..end]).map_err(|_| bad("header is not text"))?;
        let field = |name: &str| -> Result<&str> {
            let pat = format!("'{name}':");
            let at = dict
                .find(&pat)
                .ok_or_else(|| bad(&format!("header has no '{name}'")))?;
            Ok(dict[at + pat.len()..].trim_start())
        };
        let descr_s = field("descr")?;
        let descr = descr_s
            .strip_prefix('\'')
            .and_then(|s| s.split('\'').next())
            .ok_or_else(|| bad("descr is not a simple dtype string (structured or object arrays are not supported)"))?
            .to_string();
        if descr.starts_with("|O") {
            return Err(bad("object arrays (pickled elements) are not supported"));
        }
        let item = dtype_itemsize(&descr).map_err(|e| bad(&e))?;
        let fortran_order = field("fortran_order")?.starts_with("True");
        let shape_s = field("shape")?;
        let inner = shape_s
            .strip_prefix('(')
            .and_then(|s| s.split(')').next())
            .ok_or_else(|| bad("shape is not a tuple"))?;
        let mut shape = Vec::new();
        for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let d = part.trim_end_matches('L');
            shape.push(
                d.parse::<usize>()
                    .map_err(|_| bad(&format!("bad dimension {part:?}")))?,
            );
        }
        let count = element_count(&shape)
            .and_then(|n| n.checked_mul(item))
            .ok_or_else(|| bad("shape overflows"))?;
        let data = buf.slice(end..);
        if data.len() != count {
            return Err(bad(&format!(
                "shape {shape:?} of '{descr}' needs {count} data bytes, found {} (truncated or corrupt)",
                data.len()
            )));
        }
        Ok(NdArray {
            descr,
            shape,
            fortran_order,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc<T: Object>(v: &T) -> Bytes {
        encode(v).unwrap().to_bytes()
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct My {
        a: u32,
        b: String,
        c: Vec<f64>,
    }

    #[test]
    fn python_compatible_prefixes() {
        // Python's `deserialize` reads `readline().strip()`: the padded
        // line names the same serializer as `BS\n`.
        let bs = format!("BS{}\nabc", " ".repeat(61));
        assert_eq!(&enc(&Bytes::from_static(b"abc"))[..], bs.as_bytes());
        assert_eq!(&enc(&b"abc".to_vec())[..], bs.as_bytes());
        assert_eq!(&enc(&"abc".to_string())[..], b"US\nabc");
        let np = enc(&vec![1.0f64, 2.0]);
        assert!(np.starts_with(b"NP  "));
        assert_eq!(&np[63..72], b"\n\x93NUMPY\x01\x00");
        // And what Python writes decodes as before.
        assert_eq!(
            decode::<Bytes>(Bytes::from_static(b"BS\nabc")).unwrap(),
            &b"abc"[..]
        );
        assert_eq!(
            decode::<Bytes>(Bytes::from_static(b"BS   \n  x")).unwrap(),
            &b"  x"[..]
        );
    }

    #[test]
    fn align_header_pads_python_headers_only() {
        let py = Bytes::from_static(b"BS\nabc");
        let p = align_header(py.clone()).to_bytes();
        assert_eq!(p, enc(&Bytes::from_static(b"abc")));
        let np = Bytes::from_static(b"NP\n\x93NUMPY");
        assert_eq!(
            &align_header(np).to_bytes()[..],
            &padded(NUMPY)[..]
                .iter()
                .chain(b"\x93NUMPY")
                .copied()
                .collect::<Vec<_>>()[..]
        );
        for other in [&b"US\nabc"[..], b"PK\n\x80", b"B", b""] {
            let b = Bytes::copy_from_slice(other);
            assert_eq!(align_header(b.clone()).to_bytes(), b);
        }
    }

    /// Byte strings and arrays start [`PAYLOAD_ALIGN`] bytes (or a multiple)
    /// into the encoded object, whatever their size.
    #[test]
    fn payloads_of_bytes_and_arrays_are_aligned() {
        for n in [0usize, 1, 3, 64, 1000] {
            let e = enc(&Bytes::from(vec![7u8; n]));
            assert_eq!(e.len(), PAYLOAD_ALIGN + n);
            let d: Bytes = decode(e.clone()).unwrap();
            assert_eq!(d.as_ptr() as usize - e.as_ptr() as usize, PAYLOAD_ALIGN);
            let a = NdArray::from_slice(&vec![1.5f64; n]);
            let e = enc(&a);
            let d: NdArray = decode(e.clone()).unwrap();
            assert_eq!(
                (d.data.as_ptr() as usize - e.as_ptr() as usize) % PAYLOAD_ALIGN,
                0
            );
            assert_eq!(d, a);
        }
        // A header line longer than the alignment is not one.
        let long = format!("BS{}\nx", " ".repeat(62));
        let e = decode::<Bytes>(Bytes::from(long)).unwrap_err().to_string();
        assert!(e.contains("no format header"), "{e}");
        let e = decode::<Bytes>(Bytes::from_static(b"BS  x\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no format header"), "{e}");
    }

    #[test]
    fn roundtrips() {
        let b = Bytes::from(vec![9u8; 1000]);
        let e = enc(&b);
        let d: Bytes = decode(e.clone()).unwrap();
        assert_eq!(d, b);
        // Zero-copy: the decoded bytes point into the encoded buffer.
        assert_eq!(d.as_ptr(), e[PAYLOAD_ALIGN..].as_ptr());
        assert_eq!(
            decode::<String>(enc(&"héllo".to_string())).unwrap(),
            "héllo"
        );
        let v = vec![1.5f64, -2.0, 3.25];
        assert_eq!(decode::<Vec<f64>>(enc(&v)).unwrap(), v);
        let v = vec![1i64, -2, 3];
        assert_eq!(decode::<Vec<i64>>(enc(&v)).unwrap(), v);
        let m = My {
            a: 7,
            b: "x".into(),
            c: vec![1.0],
        };
        assert_eq!(decode::<My>(enc(&m)).unwrap(), m);
        assert_eq!(decode::<Bytes>(enc(&Bytes::new())).unwrap(), Bytes::new());
        let nd = NdArray {
            descr: "<i4".into(),
            shape: vec![2, 3],
            fortran_order: false,
            data: Bytes::from((0..24u8).collect::<Vec<_>>()),
        };
        assert_eq!(decode::<NdArray>(enc(&nd)).unwrap(), nd);
        let empty: Vec<f32> = vec![];
        assert_eq!(decode::<Vec<f32>>(enc(&empty)).unwrap(), empty);
    }

    /// Random and mutated buffers never panic, whatever type they decode as.
    #[test]
    fn garbage_never_panics() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let seeds = [
            enc(&Bytes::from_static(b"abc")),
            enc(&"text".to_string()),
            enc(&vec![1.0f64, 2.0, 3.0]),
            enc(&My {
                a: 1,
                b: "b".into(),
                c: vec![0.5; 3],
            }),
        ];
        for i in 0..20_000 {
            let mut buf = seeds[i % seeds.len()].to_vec();
            match next() % 3 {
                0 => {
                    let at = (next() as usize) % buf.len();
                    buf[at] = next() as u8;
                }
                1 => buf.truncate((next() as usize) % (buf.len() + 1)),
                _ => buf = (0..(next() % 64)).map(|_| next() as u8).collect(),
            }
            let b = Bytes::from(buf);
            let _ = decode::<Bytes>(b.clone());
            let _ = decode::<String>(b.clone());
            let _ = decode::<Vec<f64>>(b.clone());
            let _ = decode::<NdArray>(b.clone());
            let _ = decode::<My>(b);
        }
    }

    /// An array decoded through serde (inside an `RP` object) can carry any
    /// shape: one whose element count overflows is an error, not a panic.
    #[test]
    fn big_endian_arrays_are_refused_by_encode_as_by_npy_decode() {
        // Found by the codec fuzz target: "RP" + postcard of a struct holding
        // an NdArray with dtype '>c6' and shape [0] decoded, and the array
        // encoded to a `.npy` that its own decoder refused. Encode now
        // refuses what decode refuses.
        #[derive(Serialize, Deserialize)]
        struct Mixed {
            name: String,
            arrays: Vec<NdArray>,
            blob: Bytes,
            n: Option<u64>,
        }
        let input: &[u8] = &[82, 80, 10, 0, 1, 3, 62, 99, 54, 1, 0, 0, 0, 0, 0];
        let m: Mixed = decode(Bytes::copy_from_slice(input)).unwrap();
        let a = &m.arrays[0];
        assert_eq!(a.descr, ">c6");
        let e = encode(a).unwrap_err().to_string();
        assert!(e.contains("big-endian dtype '>c6'"), "{e}");
        // One-byte big-endian dtypes have no byte order: both accept them.
        let one = NdArray {
            descr: ">u1".into(),
            shape: vec![2],
            fortran_order: false,
            data: Bytes::from_static(&[1, 2]),
        };
        let back: NdArray = decode(encode(&one).unwrap().to_bytes()).unwrap();
        assert_eq!(back, one);
        // And the .npy side still refuses a multi-byte big-endian header.
        let mut npy = NdArray::from_slice(&[1.0f64]);
        npy.descr = ">f8".into();
        assert!(encode(&npy).is_err());
    }

    #[test]
    fn overflowing_shape_is_an_error() {
        #[derive(Serialize, Deserialize)]
        struct Holder {
            a: NdArray,
        }
        let huge = NdArray {
            descr: "<f8".into(),
            shape: vec![usize::MAX / 2 + 2, 2],
            fortran_order: false,
            data: Bytes::from_static(&[0u8; 8]),
        };
        let h: Holder = decode(enc(&Holder { a: huge })).unwrap();
        assert_eq!(h.a.len(), usize::MAX);
        assert!(!h.a.is_empty());
        let e = h.a.to_vec::<f64>().unwrap_err().to_string();
        assert!(e.contains("does not match shape"), "{e}");
        let e = encode(&h.a).unwrap_err().to_string();
        assert!(e.contains("more than usize::MAX"), "{e}");
        // Wrapping products that would equal the data length are caught too.
        let wraps = NdArray {
            shape: vec![1 << 61, 1 << 3, 1],
            ..h.a.clone()
        };
        assert!(wraps.to_vec::<f64>().is_err());
        let empty = NdArray {
            shape: vec![usize::MAX, 3, 0],
            data: Bytes::new(),
            ..h.a
        };
        assert!(empty.is_empty());
        assert_eq!(empty.to_vec::<f64>().unwrap(), Vec::<f64>::new());
        // An empty array whose other dimensions overflow encodes, so it
        // decodes back (found by the codec fuzz target).
        let back: NdArray = decode(encode(&empty).unwrap().to_bytes()).unwrap();
        assert_eq!(back, empty);
        let fuzzed = NdArray {
            descr: "=i8".into(),
            shape: vec![56, 9225641567375655428, 0],
            fortran_order: false,
            data: Bytes::new(),
        };
        let back: NdArray = decode(encode(&fuzzed).unwrap().to_bytes()).unwrap();
        assert_eq!(back, fuzzed);
    }

    #[test]
    fn npy_header_is_aligned() {
        let e = enc(&vec![1.0f64; 3]);
        let h = PAYLOAD_ALIGN;
        let hlen = u16::from_le_bytes([e[h + 8], e[h + 9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        assert_eq!(e[h + 10 + hlen - 1], b'\n');
    }

    #[test]
    fn parses_numpy_written_header() {
        // Exactly what numpy 2.x `np.save` writes for np.arange(3, dtype='<f8').
        let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }";
        let mut h = b"\x93NUMPY\x01\x00".to_vec();
        let pad = 64 - (10 + dict.len() + 1) % 64;
        let body = format!("{dict}{}\n", " ".repeat(pad));
        h.extend_from_slice(&(body.len() as u16).to_le_bytes());
        h.extend_from_slice(body.as_bytes());
        for x in [0.0f64, 1.0, 2.0] {
            h.extend_from_slice(&x.to_le_bytes());
        }
        let a = NdArray::parse_npy(Bytes::from(h)).unwrap();
        assert_eq!(a.shape, vec![3]);
        assert_eq!(a.to_vec::<f64>().unwrap(), vec![0.0, 1.0, 2.0]);
    }

    #[test]
    fn bad_input_is_an_error_naming_the_problem() {
        let msg = |r: Result<Bytes>| r.unwrap_err().to_string();
        assert!(msg(decode(Bytes::from_static(b"B"))).contains("too short"));
        assert!(msg(decode(Bytes::from_static(b"\x00\x01\x02abc"))).contains("no format header"));
        assert!(msg(decode(Bytes::from_static(b"PK\n\x80\x05K\x01."))).contains("pickle"));
        assert!(msg(decode(Bytes::from_static(b"ZZ\nabc"))).contains("unknown format"));
        // Wrong type.
        let e = decode::<String>(enc(&Bytes::from_static(b"x")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("wrong type") && e.contains("US (str)") && e.contains("BS (bytes)"),
            "{e}"
        );
        let e = decode::<Vec<i32>>(enc(&vec![1.0f64]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("dtype '<f8'"), "{e}");
        let e = decode::<My>(enc(&"s".to_string())).unwrap_err().to_string();
        assert!(e.contains("wrong type"), "{e}");
        // Truncated npy and postcard.
        let full = enc(&vec![1.0f64; 10]);
        for cut in [5, 20, full.len() - 1] {
            assert!(decode::<Vec<f64>>(full.slice(..cut)).is_err());
        }
        let m = enc(&My {
            a: 1,
            b: "hello".into(),
            c: vec![2.0; 4],
        });
        for cut in 3..m.len() {
            assert!(decode::<My>(m.slice(..cut)).is_err(), "cut {cut}");
        }
        assert!(decode::<String>(Bytes::from_static(b"US\n\xff\xfe")).is_err());
        assert!(decode::<NdArray>(Bytes::from_static(b"NP\n\x93NUMPY\x01\x00\xff\xff")).is_err());
    }
}
