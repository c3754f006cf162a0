//! Exponential backoff for the operator's loops: an accept loop that meets an error (out of
//! file descriptors, say) and a status write the API server refused both wait before trying
//! again instead of spinning.

use std::{future::Future, time::Duration};

use tokio::net::{TcpListener, TcpStream};

/// Doubling delays between `first` and `max`, back to `first` after a success.
#[derive(Clone, Debug)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Delays from `first`, doubling up to `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            next: first,
        }
    }

    /// The delay to wait now; the one after is twice as long (at most `max`).
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// Whether a failure is being backed off from (the next delay is not the first).
    pub fn failing(&self) -> bool {
        self.next != self.first
    }

    /// Forgets past failures.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// The backoff every accept loop uses: 10 ms up to 1 s.
pub fn for_accept() -> Backoff {
    Backoff::new(Duration::from_millis(10), Duration::from_secs(1))
}

/// Accepts the next connection, waiting out errors with `backoff` (logged once per burst).
pub async fn accept(listener: &TcpListener, backoff: &mut Backoff) -> TcpStream {
    retry(backoff, "accept", || listener.accept()).await.0
}

/// Calls `f` until it succeeds, sleeping the backoff's delays between failures; `what`
/// names it in the log.
pub async fn retry<T, F, Fut>(backoff: &mut Backoff, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::io::Result<T>>,
{
    loop {
        match f().await {
            Ok(v) => {
                backoff.reset();
                return v;
            }
            Err(e) => {
                if !backoff.failing() {
                    tracing::warn!("{what} failed, backing off: {e}");
                }
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_reset() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_millis(50));
        let got: Vec<u64> = (0..5).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(got, [10, 20, 40, 50, 50]);
        assert!(b.failing());
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_accept_waits_between_tries_instead_of_spinning() {
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let mut backoff = for_accept();
        let v = retry(&mut backoff, "accept", || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 8 {
                    Err(std::io::Error::other("too many open files"))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(v, 8);
        // 10 + 20 + 40 + ... + 640 + 1000 ms over eight failures: the loop slept, not spun.
        assert!(
            started.elapsed() >= Duration::from_millis(2270),
            "{:?}",
            started.elapsed()
        );
        assert!(!backoff.failing(), "a success resets the backoff");
    }
}
