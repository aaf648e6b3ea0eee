//! The two future combinators the driver needs, so that the shared code
//! depends on no futures utility crate for them: [`or`], the first of two
//! futures to finish (the first one polled first, which the driver's order
//! of wake-ups relies on), and [`poll_once`], a future's output if it is
//! ready at once.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::{Context, Poll};

pin_project_lite::pin_project! {
    /// The future of [`or`]: a struct, not an `async fn`, so that nesting
    /// six of them (the driver's wait) adds no state of its own to the task.
    #[must_use = "futures do nothing unless polled"]
    pub(crate) struct Or<A, B> {
        #[pin]
        first: A,
        #[pin]
        second: B,
    }
}

/// Finishes with whichever of `first` and `second` finishes first; `first`
/// is polled first, so it wins when both are ready.
pub(crate) fn or<T, A: Future<Output = T>, B: Future<Output = T>>(first: A, second: B) -> Or<A, B> {
    Or { first, second }
}

impl<T, A: Future<Output = T>, B: Future<Output = T>> Future for Or<A, B> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let this = self.project();
        if let Poll::Ready(out) = this.first.poll(cx) {
            return Poll::Ready(out);
        }
        this.second.poll(cx)
    }
}

/// `future`'s output if it is ready on its first poll, else `None` (the
/// future is dropped; the driver's reads and writes are cancel-safe).
pub(crate) async fn poll_once<T>(future: impl Future<Output = T>) -> Option<T> {
    let mut future = pin!(future);
    poll_fn(|cx| {
        Poll::Ready(match future.as_mut().poll(cx) {
            Poll::Ready(out) => Some(out),
            Poll::Pending => None,
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::{pending, ready};

    #[test]
    fn the_first_ready_wins_and_the_first_polled_breaks_a_tie() {
        use futures_lite::future::block_on;
        assert_eq!(block_on(or(ready(1), ready(2))), 1);
        assert_eq!(block_on(or(pending(), ready(2))), 2);
        assert_eq!(block_on(poll_once(ready(3))), Some(3));
        assert_eq!(block_on(poll_once(pending::<u8>())), None);
    }
}
