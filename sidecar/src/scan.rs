//! A validating walk over a JSON body in two steps, after simdjson's: a block pass marks the
//! unescaped quotes 64 bytes at a time and checks string contents on the way, then a grammar
//! walk jumps from each opening quote straight to its closing one.
//!
//! A 100 KB agent turn is mostly long strings with an escape every few dozen bytes. A reader
//! that goes byte by byte stops and branches at every escape; here an escape costs a few bit
//! operations, and the walk touches only the bytes between strings.
//!
//! The first walk also notes where each container it reads through opens and closes; a
//! second walk over the same bytes ([`Scan::again`]) jumps over a container it only skips or
//! takes as text (a tool's schema, a tool call's arguments) instead of walking it again.

use std::borrow::Cow;

use wide::u8x16;

/// Why a body is not valid JSON (the caller is told in serde_json's words, which the error
/// path asks for).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Invalid;

/// The bits of a block's even positions.
const EVEN: u64 = 0x5555_5555_5555_5555;

/// What may follow a backslash.
static ESCAPES: [bool; 256] = {
    let mut table = [false; 256];
    let allowed = *b"\"\\/bfnrtu";
    let mut i = 0;
    while i < allowed.len() {
        table[allowed[i] as usize] = true;
        i += 1;
    }
    table
};

/// The body, with the unescaped quotes of every 64-byte block marked. Bytes, not text: like
/// serde_json's reader of a slice, the scan leaves the UTF-8 of strings it only skips to
/// whoever reads them (the fields the gateway reads are checked when taken).
pub(crate) struct Scan<'a> {
    body: &'a [u8],
    quotes: Cow<'a, [u64]>,
    at: usize,
    /// The whole body as text, once a reader has checked it all ([`de::read`]).
    text: Option<&'a str>,
    /// Which containers the value being read through is inside (`true` for an object), and
    /// where each one's span was noted.
    open: Vec<(bool, u32)>,
    /// A first walk's notes: where each container it read through opened and closed, in the
    /// order they opened (none past 4 GiB).
    noted: Option<Vec<Span>>,
    /// A second walk's: the first walk's notes, and the first of them not yet behind it.
    spans: &'a [Span],
    next_span: usize,
}

/// Where a container opens and closes (the offsets of its brackets).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Span {
    open: u32,
    close: u32,
}

impl<'a> Scan<'a> {
    /// Marks the quotes, refusing raw control characters and bad escapes inside strings.
    pub(crate) fn new(bytes: &'a [u8]) -> Result<Self, Invalid> {
        let mut quotes = Vec::with_capacity(bytes.len() / 64 + 1);
        let mut carry = Carry::default();
        let mut blocks = bytes.chunks_exact(64);
        for (n, block) in blocks.by_ref().enumerate() {
            let block: &[u8; 64] = block.try_into().map_err(|_| Invalid)?;
            quotes.push(carry.block(block, bytes, n * 64)?);
        }
        let rest = blocks.remainder();
        let mut last = [b' '; 64];
        last[..rest.len()].copy_from_slice(rest);
        quotes.push(carry.block(&last, bytes, bytes.len() - rest.len())?);
        Ok(Scan {
            body: bytes,
            quotes: Cow::Owned(quotes),
            at: 0,
            text: None,
            open: Vec::new(),
            // About one container every 250 bytes in an agent turn: room for them at once.
            noted: u32::try_from(bytes.len())
                .is_ok()
                .then(|| Vec::with_capacity(bytes.len() / 256)),
            spans: &[],
            next_span: 0,
        })
    }

    /// A second walk over a body already scanned, from the marks the first left.
    pub(crate) fn again(body: &'a [u8], marks: &'a Marks) -> Self {
        Scan {
            body,
            quotes: Cow::Borrowed(&marks.quotes),
            at: 0,
            text: None,
            open: Vec::new(),
            noted: None,
            spans: &marks.spans,
            next_span: 0,
        }
    }

    /// The marks, for a second walk over the same bytes.
    pub(crate) fn marks(self) -> Marks {
        Marks {
            quotes: self.quotes.into_owned(),
            spans: self.noted.unwrap_or_default(),
        }
    }

    /// Where the container opening at `at` closes, when a first walk noted it.
    fn noted_close(&mut self, at: usize) -> Option<usize> {
        // Walks go forward: the notes before `at` are behind this one for good.
        let ahead = &self.spans[self.next_span..];
        let i = ahead.partition_point(|s| (s.open as usize) < at);
        self.next_span += i;
        let span = ahead.get(i).filter(|s| s.open as usize == at)?;
        self.next_span += 1;
        Some(span.close as usize)
    }

    /// The body's length.
    pub(crate) fn len(&self) -> usize {
        self.body.len()
    }

    /// The next byte after whitespace.
    pub(crate) fn next(&mut self) -> Option<u8> {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.body.get(self.at) {
            self.at += 1;
        }
        self.body.get(self.at).copied()
    }

    /// Takes `byte`, which must come next.
    fn expect(&mut self, byte: u8) -> Result<(), Invalid> {
        if self.next() != Some(byte) {
            return Err(Invalid);
        }
        self.at += 1;
        Ok(())
    }

    /// Nothing but whitespace is left.
    pub(crate) fn end(&mut self) -> Result<(), Invalid> {
        match self.next() {
            None => Ok(()),
            Some(_) => Err(Invalid),
        }
    }

    /// A string, the cursor on its opening quote: its text between the quotes, escapes kept.
    fn string(&mut self) -> Result<&'a [u8], Invalid> {
        let open = self.at;
        let close = self.quote_after(open).ok_or(Invalid)?;
        self.at = close + 1;
        Ok(&self.body[open + 1..close])
    }

    /// The first unescaped quote after `at`.
    fn quote_after(&self, at: usize) -> Option<usize> {
        let first = at / 64;
        let mut mask = self.quotes.get(first)? & (!0u64 << (at % 64) << 1);
        let mut block = first;
        while mask == 0 {
            block += 1;
            mask = *self.quotes.get(block)?;
        }
        let found = block * 64 + mask.trailing_zeros() as usize;
        (found < self.body.len()).then_some(found)
    }

    /// One value a second walk does not read into: jumped over when the first walk noted it,
    /// else read through as [`Scan::value`] reads it. Its JSON text.
    pub(crate) fn value_again(&mut self) -> Result<&'a [u8], Invalid> {
        if let Some(b'{' | b'[') = self.next() {
            let start = self.at;
            if let Some(close) = self.noted_close(start) {
                self.at = close + 1;
                return Ok(&self.body[start..self.at]);
            }
        }
        self.value()
    }

    /// One value of any type, read through and validated: its JSON text.
    pub(crate) fn value(&mut self) -> Result<&'a [u8], Invalid> {
        self.next();
        let start = self.at;
        let base = self.open.len();
        loop {
            if self.one()? {
                continue;
            }
            // Close what the value just read ends, up to the next value to read.
            loop {
                let Some(&(object, span)) = self.open.get(base..).and_then(<[_]>::last) else {
                    return Ok(&self.body[start..self.at]);
                };
                match (self.next(), object) {
                    (Some(b','), true) => {
                        self.at += 1;
                        self.skip_key()?;
                        break;
                    }
                    (Some(b','), false) => {
                        self.at += 1;
                        break;
                    }
                    (Some(b'}'), true) | (Some(b']'), false) => {
                        if let Some(s) = self.noted.as_mut().and_then(|n| n.get_mut(span as usize))
                        {
                            s.close = self.at as u32;
                        }
                        self.at += 1;
                        self.open.pop();
                    }
                    _ => return Err(Invalid),
                }
            }
        }
    }

    /// A scalar or an empty container, or the opening of one that is not empty (whose first
    /// value, and the key before it, are then next): whether it opened one.
    fn one(&mut self) -> Result<bool, Invalid> {
        match self.next() {
            Some(b'"') => self.string().map(|_| false),
            Some(open @ (b'{' | b'[')) => {
                let at = self.at;
                self.at += 1;
                let object = open == b'{';
                if self.next() == Some(if object { b'}' } else { b']' }) {
                    self.at += 1;
                    return Ok(false);
                }
                // The body fits in 32 bits when notes are kept (`noted` is `None` otherwise).
                let span = match self.noted.as_mut() {
                    Some(noted) => {
                        noted.push(Span {
                            open: at as u32,
                            close: 0,
                        });
                        noted.len() as u32 - 1
                    }
                    None => 0,
                };
                self.open.push((object, span));
                if object {
                    self.skip_key()?;
                }
                Ok(true)
            }
            Some(b't') => self.literal("true").map(|()| false),
            Some(b'f') => self.literal("false").map(|()| false),
            Some(b'n') => self.literal("null").map(|()| false),
            Some(b'-' | b'0'..=b'9') => self.number().map(|()| false),
            _ => Err(Invalid),
        }
    }

    /// A member's key and its colon, read past.
    fn skip_key(&mut self) -> Result<&'a [u8], Invalid> {
        if self.next() != Some(b'"') {
            return Err(Invalid);
        }
        let raw = self.string()?;
        self.expect(b':')?;
        Ok(raw)
    }

    /// A member's key, as it reads unescaped, and its colon.
    fn key(&mut self) -> Result<Cow<'a, [u8]>, Invalid> {
        self.next();
        let open = self.at;
        let raw = self.skip_key()?;
        if !raw.contains(&b'\\') {
            return Ok(Cow::Borrowed(raw));
        }
        // An escaped key is compared by what it says; a lone surrogate says nothing the
        // gateway reads.
        let quoted = &self.body[open..open + raw.len() + 2];
        Ok(serde_json::from_slice::<String>(quoted)
            .map_or(Cow::Borrowed(&b""[..]), |k| Cow::Owned(k.into_bytes())))
    }

    fn literal(&mut self, word: &str) -> Result<(), Invalid> {
        let rest = &self.body[self.at..];
        if !rest.starts_with(word.as_bytes()) {
            return Err(Invalid);
        }
        self.at += word.len();
        Ok(())
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Result<(), Invalid> {
        let bytes = self.body;
        let digits = |at: usize| {
            bytes[at.min(bytes.len())..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count()
        };
        let mut at = self.at;
        if bytes.get(at) == Some(&b'-') {
            at += 1;
        }
        let whole = digits(at);
        if whole == 0 || (whole > 1 && bytes[at] == b'0') {
            return Err(Invalid);
        }
        at += whole;
        if bytes.get(at) == Some(&b'.') {
            match digits(at + 1) {
                0 => return Err(Invalid),
                n => at += 1 + n,
            }
        }
        if let Some(b'e' | b'E') = bytes.get(at) {
            at += 1;
            if let Some(b'+' | b'-') = bytes.get(at) {
                at += 1;
            }
            match digits(at) {
                0 => return Err(Invalid),
                n => at += n,
            }
        }
        self.at = at;
        Ok(())
    }

    /// The members of an object, the cursor on its `{`: `each` is given the key and must read
    /// the value through.
    pub(crate) fn members(
        &mut self,
        mut each: impl FnMut(&mut Self, &[u8]) -> Result<(), Invalid>,
    ) -> Result<(), Invalid> {
        self.expect(b'{')?;
        if self.next() != Some(b'}') {
            loop {
                let key = self.key()?;
                each(self, &key)?;
                match self.next() {
                    Some(b',') => self.at += 1,
                    Some(b'}') => break,
                    _ => return Err(Invalid),
                }
            }
        }
        self.at += 1;
        Ok(())
    }

    /// The elements of an array, the cursor on its `[`: `each` is given the index and must
    /// read the element through.
    pub(crate) fn elements(
        &mut self,
        mut each: impl FnMut(&mut Self, usize) -> Result<(), Invalid>,
    ) -> Result<(), Invalid> {
        self.expect(b'[')?;
        if self.next() != Some(b']') {
            for i in 0.. {
                each(self, i)?;
                match self.next() {
                    Some(b',') => self.at += 1,
                    Some(b']') => break,
                    _ => return Err(Invalid),
                }
            }
        }
        self.at += 1;
        Ok(())
    }
}

/// The unescaped quotes of a scanned body and where the containers the first walk read
/// through open and close, kept with it so that a second reader walks it without scanning it
/// again, and jumps over what it does not read.
#[derive(Debug, Default)]
pub struct Marks {
    quotes: Vec<u64>,
    spans: Vec<Span>,
}

/// What one block tells the next: whether its first byte is escaped, whether it starts
/// inside a string.
#[derive(Default)]
struct Carry {
    escaped: u64,
    inside: u64,
}

impl Carry {
    /// The unescaped quotes of a block that starts at `offset` in `body`.
    fn block(&mut self, block: &[u8; 64], body: &[u8], offset: usize) -> Result<u64, Invalid> {
        let [quotes, backslashes, controls] = marks(block);
        let escaped = if backslashes | self.escaped == 0 {
            0
        } else {
            // A run of backslashes escapes the byte after it when it is odd; adding a run's
            // start to the run carries past its end, and the end's parity against the
            // start's says the run's length.
            let backslashes = backslashes & !self.escaped;
            let starts = backslashes & !(backslashes << 1);
            let even_ends = backslashes.wrapping_add(starts & EVEN) & !backslashes;
            let (odd_ends, carried) = backslashes.overflowing_add(starts & !EVEN);
            let escaped = (even_ends & !EVEN) | (odd_ends & !backslashes & EVEN) | self.escaped;
            self.escaped = u64::from(carried);
            check_escapes(escaped, block, body, offset)?;
            escaped
        };
        let quotes = quotes & !escaped;
        let inside = prefix_xor(quotes) ^ self.inside;
        self.inside = ((inside as i64) >> 63) as u64;
        if controls & inside != 0 {
            return Err(Invalid);
        }
        Ok(quotes)
    }
}

/// The bytes each escaped position holds are escapes JSON has; `\u` takes four hex digits.
fn check_escapes(
    mut escaped: u64,
    block: &[u8; 64],
    body: &[u8],
    offset: usize,
) -> Result<(), Invalid> {
    let mut fine = true;
    while escaped != 0 {
        let i = escaped.trailing_zeros() as usize;
        escaped &= escaped - 1;
        fine &= ESCAPES[usize::from(block[i])];
        if block[i] == b'u' {
            let at = offset + i + 1;
            fine &= body
                .get(at..at + 4)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
        }
    }
    fine.then_some(()).ok_or(Invalid)
}

/// Bit `i` set from each quote up to the next one (the opening quote in, the closing out).
fn prefix_xor(mut bits: u64) -> u64 {
    for shift in [1, 2, 4, 8, 16, 32] {
        bits ^= bits << shift;
    }
    bits
}

/// The quotes, backslashes and control characters of a block, one bit per byte.
fn marks(block: &[u8; 64]) -> [u64; 3] {
    let mut marks = [0u64; 3];
    for (k, lane) in block.chunks_exact(16).enumerate() {
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(lane);
        let v = u8x16::new(bytes);
        let found = [
            v.cmp_eq(u8x16::splat(b'"')),
            v.cmp_eq(u8x16::splat(b'\\')),
            v.min(u8x16::splat(0x1f)).cmp_eq(v),
        ];
        for (mark, found) in marks.iter_mut().zip(found) {
            *mark |= u64::from(found.move_mask() as u16) << (16 * k);
        }
    }
    marks
}

pub(crate) mod de;
mod unescape;

pub(crate) use unescape::{names_characters, unescape};
#[cfg(test)]
mod tests;
