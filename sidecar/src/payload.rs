//! An upstream request body as the pieces it was put together from. A same-format call goes
//! out as slices of the buffer it came in with the new model between them: hyper writes the
//! pieces with one vectored write, and the 100 KB of an agent's turn are never copied.

use std::{
    convert::Infallible,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};

/// The most pieces a body is made of: the head, an added member, the part before the model,
/// the model, the rest.
const PIECES: usize = 5;

/// A request body of up to five pieces, sent in order.
///
/// The pieces live on the heap: a body rides in every slot of hyper's request channel to a
/// pooled connection, and that channel's buffer, sized for 32 requests, stays allocated for
/// as long as the connection is open (a thousand open streams, a thousand such buffers).
#[derive(Debug, Default)]
pub struct Payload {
    pieces: std::vec::IntoIter<Bytes>,
}

impl Payload {
    /// A body of one piece.
    pub fn whole(bytes: impl Into<Bytes>) -> Self {
        Self::of([bytes.into()])
    }

    /// A body of these pieces, in order (at most five; empty ones are skipped).
    pub fn of<const N: usize>(pieces: [Bytes; N]) -> Self {
        const { assert!(N <= PIECES) };
        let filled: Vec<Bytes> = pieces.into_iter().filter(|p| !p.is_empty()).collect();
        Self {
            pieces: filled.into_iter(),
        }
    }

    /// The bytes left to send.
    pub fn len(&self) -> usize {
        self.pieces.as_slice().iter().map(Bytes::len).sum()
    }

    /// Whether nothing is left to send.
    pub fn is_empty(&self) -> bool {
        self.pieces.as_slice().is_empty()
    }

    /// The bytes left to send, in one buffer (copied only when there are several pieces).
    pub fn contiguous(&self) -> Bytes {
        match self.pieces.as_slice() {
            [] => Bytes::new(),
            [only] => only.clone(),
            many => {
                let mut out = BytesMut::with_capacity(self.len());
                many.iter().for_each(|p| out.extend_from_slice(p));
                out.freeze()
            }
        }
    }
}

impl Body for Payload {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(
            self.get_mut()
                .pieces
                .next()
                .map(|piece| Ok(Frame::data(piece))),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn the_pieces_go_out_in_order_with_their_exact_length() {
        let body = Payload::of([
            Bytes::from_static(b"{\"model\":"),
            Bytes::new(),
            Bytes::from_static(b"\"m\""),
            Bytes::from_static(b"}"),
        ]);
        assert_eq!(body.size_hint().exact(), Some(13));
        assert_eq!(&body.contiguous()[..], b"{\"model\":\"m\"}");
        let frames = body.collect().await.map(|c| c.to_bytes());
        assert_eq!(frames.ok().as_deref(), Some(&b"{\"model\":\"m\"}"[..]));
    }

    #[test]
    fn one_piece_is_handed_on_without_a_copy() {
        let bytes = Bytes::from(vec![b'x'; 64]);
        let body = Payload::whole(bytes.clone());
        assert_eq!(body.contiguous().as_ptr(), bytes.as_ptr());
        assert!(Payload::default().is_end_stream());
    }
}
