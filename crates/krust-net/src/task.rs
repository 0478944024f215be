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
//! error, and later callers too.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use krust_codec::frame::FrameDecoder;
use krust_codec::header::response_correlation_id;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, ProtocolViolation};

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
}

impl Shared {
    pub(crate) fn new(addr: String) -> Shared {
        Shared {
            addr,
            poison: OnceLock::new(),
            throttle_until: Mutex::new(None),
        }
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
    reply: oneshot::Sender<Result<Bytes, Error>>,
}

/// Drive one connection until every handle is dropped or it is poisoned.
pub(crate) async fn run<S>(
    stream: S,
    mut rx: mpsc::Receiver<Command>,
    shared: Arc<Shared>,
    decoder: FrameDecoder,
    max_in_flight: usize,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut inbuf = BytesMut::with_capacity(8 * 1024);
    let mut out = BytesMut::new();
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    // Requests with no reply, completed when the written byte count passes
    // the end of their frame.
    let mut unanswered: VecDeque<(u64, oneshot::Sender<Result<Bytes, Error>>)> = VecDeque::new();
    let (mut queued_total, mut written_total) = (0u64, 0u64);

    // A request taken off the channel while the broker throttles us: it is
    // written when the throttle time is over.
    let mut held: Option<Command> = None;

    let fatal = loop {
        let throttle = shared.throttled_until();
        if throttle.is_none() {
            while let Some(cmd) = held.take() {
                enqueue(
                    cmd,
                    &mut out,
                    &mut in_flight,
                    &mut unanswered,
                    &mut queued_total,
                );
                if out.len() < MAX_PENDING_WRITE && in_flight.len() < max_in_flight {
                    held = rx.try_recv().ok();
                }
            }
        }
        let can_take =
            held.is_none() && out.len() < MAX_PENDING_WRITE && in_flight.len() < max_in_flight;
        if inbuf.capacity() - inbuf.len() < 4096 {
            inbuf.reserve(8 * 1024);
        }
        tokio::select! {
            r = rd.read_buf(&mut inbuf) => match r {
                Ok(0) => break eof_error(&shared.addr, &inbuf, in_flight.len()),
                Ok(_) => {
                    if let Err(e) = dispatch(&shared.addr, &decoder, &mut inbuf, &mut in_flight) {
                        break e;
                    }
                }
                Err(e) => break io_error(&shared.addr, e),
            },
            r = wr.write(&out), if !out.is_empty() => match r {
                Ok(0) => break io_error(&shared.addr, io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    out.advance(n);
                    written_total += u64::try_from(n).unwrap_or(u64::MAX);
                    while unanswered.front().is_some_and(|(end, _)| *end <= written_total) {
                        if let Some((_, reply)) = unanswered.pop_front() {
                            let _ = reply.send(Ok(Bytes::new()));
                        }
                    }
                    if out.is_empty() {
                        if let Err(e) = wr.flush().await {
                            break io_error(&shared.addr, e);
                        }
                    }
                }
                Err(e) => break io_error(&shared.addr, e),
            },
            cmd = rx.recv(), if can_take => match cmd {
                // Every handle is gone: nobody can be waiting for a reply.
                None => return,
                Some(cmd) => held = Some(cmd),
            },
            _ = sleep_until(throttle), if throttle.is_some() && held.is_some() => {}
        }
    };
    poison(&shared, fatal, &mut rx, in_flight, unanswered);
}

async fn sleep_until(t: Option<Instant>) {
    if let Some(t) = t {
        tokio::time::sleep_until(t.into()).await;
    }
}

fn enqueue(
    cmd: Command,
    out: &mut BytesMut,
    in_flight: &mut VecDeque<InFlight>,
    unanswered: &mut VecDeque<(u64, oneshot::Sender<Result<Bytes, Error>>)>,
    queued_total: &mut u64,
) {
    // The caller gave up before its frame reached the wire: never send it.
    if cmd.reply.is_closed() {
        return;
    }
    out.extend_from_slice(&cmd.frame);
    *queued_total += u64::try_from(cmd.frame.len()).unwrap_or(u64::MAX);
    if cmd.expect_response {
        in_flight.push_back(InFlight {
            correlation_id: cmd.correlation_id,
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
    unanswered: VecDeque<(u64, oneshot::Sender<Result<Bytes, Error>>)>,
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
