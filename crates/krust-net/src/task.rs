//! The task that owns one broker socket (the rust-postgres / mini-redis
//! shape): callers hand it whole encoded frames over a bounded channel; it
//! writes them, keeps a FIFO of the requests in flight, and hands each reply
//! frame to the oldest waiter after checking its correlation id (Kafka
//! answers the requests of one connection in order: "Network" section of the
//! protocol guide).
//!
//! Only this task writes, so a caller that gives up (timeout, dropped
//! future) can never leave half a frame on the wire: its frame is either
//! not written at all or written whole, and its reply is read and discarded.
//! Any desynchronisation (bad frame, wrong correlation id, reply with none
//! in flight, I/O error) poisons the connection: every waiter gets the same
//! error, and later callers too. So does a request timeout, which a handle
//! reports through [`Shared::close`]: replies come in order, so nothing
//! queued behind a lost reply would be answered either.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use krust_codec::frame::FrameDecoder;
use krust_codec::header::response_correlation_id;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, ProtocolViolation};
use crate::outbox::Outbox;

/// Stop taking new requests while this many bytes wait to be written.
const MAX_PENDING_WRITE: usize = 1024 * 1024;

/// A request handed to the connection task.
pub(crate) struct Command {
    /// The whole frame, length prefix included.
    pub frame: Bytes,
    /// The correlation id written in the frame's header.
    pub correlation_id: i32,
    /// False for requests the broker does not answer (Produce with acks=0):
    /// the reply channel then completes once the frame is written.
    pub expect_response: bool,
    /// A raw SASL token (after SaslHandshake v0): its reply is a bare
    /// length-prefixed token with no header, so no correlation id is
    /// checked.
    pub raw: bool,
    /// Where the reply frame (header and body) goes.
    pub reply: oneshot::Sender<Result<Bytes, Error>>,
}

/// State shared between the task and the handles of one connection.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The broker address, for errors.
    pub addr: String,
    /// The error that killed the connection, once it died.
    pub poison: OnceLock<Error>,
    /// No request is written before this instant (broker throttling).
    pub throttle_until: Mutex<Option<Instant>>,
    /// Set by a handle whose request timed out: the task closes the
    /// connection with this error (see [`Shared::close`]).
    close: OnceLock<Error>,
    /// The task's waker, so that `close` takes effect at once.
    waker: Mutex<Option<Waker>>,
    /// Bytes of an incomplete reply frame held after the last read (0:
    /// none), and the length its prefix declared (-1: prefix incomplete).
    /// The handshake reads them when it fails (see
    /// [`Shared::partial_frame`]).
    partial_received: AtomicUsize,
    partial_declared: AtomicI64,
}

impl Shared {
    pub(crate) fn new(addr: String) -> Shared {
        Shared {
            addr,
            poison: OnceLock::new(),
            throttle_until: Mutex::new(None),
            close: OnceLock::new(),
            waker: Mutex::new(None),
            partial_received: AtomicUsize::new(0),
            partial_declared: AtomicI64::new(-1),
        }
    }

    /// Record what is left in the read buffer after the complete frames
    /// were dispatched: an incomplete frame, or nothing.
    fn note_partial(&self, inbuf: &BytesMut) {
        let declared = inbuf.get(..4).map_or(-1, |b| {
            i64::from(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        });
        self.partial_declared.store(declared, Ordering::Relaxed);
        self.partial_received.store(inbuf.len(), Ordering::Relaxed);
    }

    /// The incomplete reply frame the connection held when it last read:
    /// bytes received after the length prefix and the declared length, or
    /// the bytes of the prefix itself and `None` when it is incomplete.
    pub(crate) fn partial_frame(&self) -> Option<(usize, Option<i32>)> {
        let held = self.partial_received.load(Ordering::Relaxed);
        if held == 0 {
            return None;
        }
        let declared = i32::try_from(self.partial_declared.load(Ordering::Relaxed)).ok();
        match declared.filter(|_| held >= 4) {
            Some(len) => Some((held - 4, Some(len))),
            None => Some((held, None)),
        }
    }

    /// Ask the task to close the connection, failing every request on it
    /// with `error` (a request timed out: Java's `NetworkClient` and
    /// librdkafka disconnect then too, because the replies of a
    /// connection come in order and nothing queued behind the lost one
    /// will be answered either).
    pub(crate) fn close(&self, error: Error) {
        if self.close.set(error).is_ok()
            && let Some(w) = self.waker.lock().unwrap_or_else(|p| p.into_inner()).take()
        {
            w.wake();
        }
    }

    /// Called by the task on each wake-up: register its waker, then see
    /// whether a handle asked it to close (in this order, so that a close
    /// between the two is not missed).
    fn close_requested(&self, cx: &Context<'_>) -> Option<Error> {
        {
            let mut w = self.waker.lock().unwrap_or_else(|p| p.into_inner());
            if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *w = Some(cx.waker().clone());
            }
        }
        self.close.get().cloned()
    }

    /// The error for a caller that finds the task gone.
    pub(crate) fn dead_error(&self) -> Error {
        self.poison.get().cloned().unwrap_or_else(|| Error::Closed {
            broker: self.addr.clone(),
        })
    }

    /// Delay the next request until `until` (extends, never shortens).
    pub(crate) fn throttle(&self, until: Instant) {
        let mut t = self
            .throttle_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if t.is_none_or(|cur| cur < until) {
            *t = Some(until);
        }
    }

    fn throttled_until(&self) -> Option<Instant> {
        let mut t = self
            .throttle_until
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match *t {
            Some(until) if until > Instant::now() => Some(until),
            Some(_) => {
                *t = None;
                None
            }
            None => None,
        }
    }
}

struct InFlight {
    correlation_id: i32,
    raw: bool,
    reply: oneshot::Sender<Result<Bytes, Error>>,
}

/// Bytes of free space the read buffer keeps before each read, and the
/// step it grows by: one read takes every reply the kernel holds (up to
/// this much), and all complete frames in it are dispatched at once.
const READ_MIN_SPARE: usize = 16 * 1024;
const READ_CHUNK: usize = 64 * 1024;

/// Drive one connection until every handle is dropped or it is poisoned.
///
/// The stream is not split: one `poll_fn` owns it and, on every wake-up,
/// reads (dispatching every complete reply), takes every queued request
/// the limits allow, and writes the whole pending buffer in one call. So a
/// batch of requests queued while the task was busy costs one write system
/// call, a batch of replies one read, and there is no lock between a read
/// half and a write half (`tokio::io::split`), which stays generic over any
/// `AsyncRead + AsyncWrite` (TCP, TLS, an in-memory pipe).
pub(crate) async fn run<S>(
    mut stream: S,
    mut rx: mpsc::Receiver<Command>,
    shared: Arc<Shared>,
    decoder: FrameDecoder,
    max_in_flight: usize,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let mut st = State {
        inbuf: BytesMut::with_capacity(READ_CHUNK),
        out: Outbox::default(),
        in_flight: VecDeque::new(),
        unanswered: VecDeque::new(),
        queued_total: 0,
        written_total: 0,
        need_flush: false,
        held: None,
        throttle_timer: None,
    };
    let fatal = std::future::poll_fn(|cx| {
        st.poll(cx, &mut stream, &mut rx, &shared, &decoder, max_in_flight)
    })
    .await;
    // `None`: every handle is gone, nobody can be waiting for a reply.
    if let Some(fatal) = fatal {
        poison(&shared, fatal, &mut rx, st.in_flight, st.unanswered);
    }
}

/// Requests with no reply, completed when the written byte count passes the
/// end of their frame.
type Unanswered = VecDeque<(u64, oneshot::Sender<Result<Bytes, Error>>)>;

struct State {
    inbuf: BytesMut,
    /// Whole frames not yet written (only ever whole frames are appended).
    out: Outbox,
    in_flight: VecDeque<InFlight>,
    unanswered: Unanswered,
    queued_total: u64,
    written_total: u64,
    /// Bytes were written since the last successful flush.
    need_flush: bool,
    /// A request taken off the channel while the broker throttles us: it
    /// is written when the throttle time is over.
    held: Option<Command>,
    /// Armed only while a request is held by throttling; reset, not
    /// re-created, when the deadline moves.
    throttle_timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl State {
    /// One wake-up: loop while anything makes progress. `Ready(None)` when
    /// every handle is dropped, `Ready(Some(e))` when the connection dies.
    fn poll<S>(
        &mut self,
        cx: &mut Context<'_>,
        stream: &mut S,
        rx: &mut mpsc::Receiver<Command>,
        shared: &Shared,
        decoder: &FrameDecoder,
        max_in_flight: usize,
    ) -> Poll<Option<Error>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let addr = shared.addr.as_str();
        if let Some(e) = shared.close_requested(cx) {
            return Poll::Ready(Some(e));
        }
        loop {
            let mut progress = false;

            // 1. Replies: everything readable, then every complete frame.
            if self.inbuf.capacity() - self.inbuf.len() < READ_MIN_SPARE {
                self.inbuf.reserve(READ_CHUNK);
            }
            let read = std::pin::pin!(stream.read_buf(&mut self.inbuf)).poll(cx);
            match read {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Some(eof_error(addr, &self.inbuf, self.in_flight.len())));
                }
                Poll::Ready(Ok(_)) => {
                    if let Err(e) = dispatch(addr, decoder, &mut self.inbuf, &mut self.in_flight) {
                        return Poll::Ready(Some(e));
                    }
                    shared.note_partial(&self.inbuf);
                    progress = true;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Some(io_error(addr, e))),
                Poll::Pending => {}
            }

            // 2. Requests: all the limits allow, unless throttled.
            loop {
                if self.out.len() >= MAX_PENDING_WRITE || self.in_flight.len() >= max_in_flight {
                    break;
                }
                let cmd = match self.held.take() {
                    Some(cmd) => cmd,
                    None => match rx.poll_recv(cx) {
                        Poll::Ready(Some(cmd)) => cmd,
                        Poll::Ready(None) => return Poll::Ready(None),
                        Poll::Pending => break,
                    },
                };
                if let Some(until) = shared.throttled_until() {
                    self.held = Some(cmd);
                    let deadline = tokio::time::Instant::from_std(until);
                    let timer = self
                        .throttle_timer
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                    if timer.deadline() != deadline {
                        timer.as_mut().reset(deadline);
                    }
                    if timer.as_mut().poll(cx).is_pending() {
                        break;
                    }
                    // The throttle time is over: take it again.
                    continue;
                }
                enqueue(
                    cmd,
                    &mut self.out,
                    &mut self.in_flight,
                    &mut self.unanswered,
                    &mut self.queued_total,
                );
                progress = true;
            }

            // 3. The whole pending buffer, in as few writes as the stream takes.
            while !self.out.is_empty() {
                match Pin::new(&mut *stream).poll_write(cx, self.out.chunk()) {
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(Some(io_error(addr, io::ErrorKind::WriteZero.into())));
                    }
                    Poll::Ready(Ok(n)) => {
                        self.out.advance(n);
                        self.written_total += u64::try_from(n).unwrap_or(u64::MAX);
                        self.need_flush = true;
                        progress = true;
                        let written = self.written_total;
                        while self
                            .unanswered
                            .front()
                            .is_some_and(|(end, _)| *end <= written)
                        {
                            if let Some((_, reply)) = self.unanswered.pop_front() {
                                let _ = reply.send(Ok(Bytes::new()));
                            }
                        }
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Some(io_error(addr, e))),
                    Poll::Pending => break,
                }
            }
            // A no-op on TCP; pushes buffered records out on TLS.
            if self.out.is_empty() && self.need_flush {
                match Pin::new(&mut *stream).poll_flush(cx) {
                    Poll::Ready(Ok(())) => self.need_flush = false,
                    Poll::Ready(Err(e)) => return Poll::Ready(Some(io_error(addr, e))),
                    Poll::Pending => {}
                }
            }

            if !progress {
                // Every source above returned Pending and registered the
                // waker (or is disabled by a limit that only a read or a
                // write, both registered, can lift).
                return Poll::Pending;
            }
        }
    }
}

fn enqueue(
    cmd: Command,
    out: &mut Outbox,
    in_flight: &mut VecDeque<InFlight>,
    unanswered: &mut Unanswered,
    queued_total: &mut u64,
) {
    // The caller gave up before its frame reached the wire: never send it.
    if cmd.reply.is_closed() {
        return;
    }
    *queued_total += u64::try_from(cmd.frame.len()).unwrap_or(u64::MAX);
    out.push(cmd.frame);
    if cmd.expect_response {
        in_flight.push_back(InFlight {
            correlation_id: cmd.correlation_id,
            raw: cmd.raw,
            reply: cmd.reply,
        });
    } else {
        unanswered.push_back((*queued_total, cmd.reply));
    }
}

/// Hand every complete frame in `inbuf` to its waiter.
fn dispatch(
    addr: &str,
    decoder: &FrameDecoder,
    inbuf: &mut BytesMut,
    in_flight: &mut VecDeque<InFlight>,
) -> Result<(), Error> {
    let not_kafka = |cause: ProtocolViolation| Error::NotKafka {
        broker: addr.to_owned(),
        cause,
    };
    while let Some(frame) = decoder
        .decode(inbuf)
        .map_err(|e| not_kafka(ProtocolViolation::Frame(e)))?
    {
        if in_flight.front().is_some_and(|h| h.raw) {
            if let Some(head) = in_flight.pop_front() {
                let _ = head.reply.send(Ok(frame));
            }
            continue;
        }
        let got =
            response_correlation_id(&frame).map_err(|e| not_kafka(ProtocolViolation::Decode(e)))?;
        let Some(head) = in_flight.front() else {
            return Err(not_kafka(ProtocolViolation::Unsolicited { got }));
        };
        if head.correlation_id != got {
            return Err(not_kafka(ProtocolViolation::CorrelationMismatch {
                expected: head.correlation_id,
                got,
            }));
        }
        if let Some(head) = in_flight.pop_front() {
            // A waiter that gave up has dropped its receiver: discard.
            let _ = head.reply.send(Ok(frame));
        }
    }
    Ok(())
}

fn io_error(addr: &str, e: io::Error) -> Error {
    Error::Io {
        broker: addr.to_owned(),
        source: Arc::new(e),
    }
}

fn eof_error(addr: &str, inbuf: &BytesMut, in_flight: usize) -> Error {
    let what = if !inbuf.is_empty() {
        let declared = inbuf
            .get(..4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        match declared {
            Some(len) => format!(
                "connection closed mid-frame: {} of {len} bytes received",
                inbuf.len() - 4
            ),
            None => format!(
                "connection closed mid-frame: {} bytes of a length prefix received",
                inbuf.len()
            ),
        }
    } else if in_flight > 0 {
        format!("connection closed by the broker with {in_flight} requests in flight")
    } else {
        "connection closed by the broker".to_owned()
    };
    io_error(addr, io::Error::new(io::ErrorKind::UnexpectedEof, what))
}

/// Fail every waiter, present and future, with `error`.
fn poison(
    shared: &Shared,
    error: Error,
    rx: &mut mpsc::Receiver<Command>,
    in_flight: VecDeque<InFlight>,
    unanswered: Unanswered,
) {
    tracing::debug!(broker = %shared.addr, %error, "connection poisoned");
    let error = shared.poison.get_or_init(|| error).clone();
    rx.close();
    for f in in_flight {
        let _ = f.reply.send(Err(error.clone()));
    }
    for (_, reply) in unanswered {
        let _ = reply.send(Err(error.clone()));
    }
    while let Ok(cmd) = rx.try_recv() {
        let _ = cmd.reply.send(Err(error.clone()));
    }
}
