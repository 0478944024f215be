//! [`Consumer::stream`](crate::Consumer::stream): the records of successive
//! polls, one at a time. A record counts as processed (implicit acks) once
//! the application asks for the next one after the end of its batch.
//! Dropped, the stream gives the records of its batch it had not yielded
//! back to the consumer (their position rewound, their acks forgotten), so
//! the next poll starts with them: they were never the application's.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;

use crate::consumer::Consumer;
use crate::error::ConsumerError;
use crate::record::ConsumerRecord;

type Polling<'a> = Pin<
    Box<
        dyn Future<Output = (&'a mut Consumer, Result<Vec<ConsumerRecord>, ConsumerError>)>
            + Send
            + 'a,
    >,
>;

/// The stream returned by [`Consumer::stream`](crate::Consumer::stream).
pub(crate) struct RecordStream<'a> {
    consumer: Option<&'a mut Consumer>,
    ready: VecDeque<ConsumerRecord>,
    polling: Option<Polling<'a>>,
}

impl<'a> RecordStream<'a> {
    pub(crate) fn new(consumer: &'a mut Consumer) -> Self {
        RecordStream {
            consumer: Some(consumer),
            ready: VecDeque::new(),
            polling: None,
        }
    }
}

impl Drop for RecordStream<'_> {
    fn drop(&mut self) {
        // `ready` is empty while a poll is in flight (only then is the
        // consumer inside `polling`; dropping that is a cancelled poll).
        if let Some(c) = self.consumer.as_mut()
            && !self.ready.is_empty()
        {
            c.give_back(std::mem::take(&mut self.ready));
        }
    }
}

impl<'a> Stream for RecordStream<'a> {
    type Item = Result<ConsumerRecord, ConsumerError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(r) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(r)));
            }
            if this.polling.is_none() {
                let Some(c) = this.consumer.take() else {
                    return Poll::Ready(None);
                };
                this.polling = Some(Box::pin(async move {
                    let r = c.poll(Duration::from_secs(1)).await;
                    (c, r)
                }));
            }
            let Some(fut) = this.polling.as_mut() else {
                return Poll::Ready(None);
            };
            let (c, r) = match fut.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(out) => out,
            };
            this.polling = None;
            this.consumer = Some(c);
            match r {
                Ok(batch) => this.ready.extend(batch),
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
        }
    }
}
