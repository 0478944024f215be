//! A connection to one broker: a cheap, clone-able handle to the task that
//! owns the socket (see `task.rs`), with the ApiVersions handshake done on
//! connect and typed, version-negotiated requests.
//!
//! Protocol guide: "Network", "Versioning and Compatibility"; KIP-35,
//! KIP-511 (ApiVersions), KIP-219 (throttling).

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use krust_codec::frame::{DEFAULT_MAX_FRAME_SIZE, FrameDecoder};
use krust_codec::generated::Request;
use krust_codec::{ApiKey, KString, header};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{RwLock, mpsc, oneshot};
use tracing::Instrument;

use crate::error::{Error, ProtocolViolation};
use crate::security::Security;
use crate::task::{self, Command, Shared};
use crate::throttle::ThrottleTime;
use crate::versions::{self, API_VERSIONS_FIRST, ApiVersions, Outcome};

mod establish;
use establish::open;

/// Settings of a connection.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// `client.id` sent in every request header.
    pub client_id: Option<String>,
    /// How long a request waits for its reply (`request.timeout.ms`); one
    /// that times out closes the connection, failing the requests behind
    /// it with a retriable error (as the Java client does).
    pub request_timeout: Duration,
    /// How long resolving and the TCP connect may take.
    pub connect_timeout: Duration,
    /// The largest reply frame accepted; larger ones poison the connection.
    pub max_frame_size: usize,
    /// Requests written and not yet answered, at most.
    pub max_in_flight: usize,
    /// Requests queued for the connection task, at most (backpressure).
    pub queue_depth: usize,
    /// TLS and SASL (`security.protocol` and friends); plaintext by
    /// default.
    pub security: Security,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            client_id: Some("krust".into()),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_in_flight: 100,
            queue_depth: 128,
            security: Security::plaintext(),
        }
    }
}

/// A handle to one broker connection. Clones share the connection; it
/// closes when the last handle is dropped.
#[derive(Clone, Debug)]
pub struct Connection {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tx: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    broker_id: Option<i32>,
    client_id: Option<KString>,
    request_timeout: Duration,
    next_correlation_id: AtomicI32,
    /// Requests callers are waiting on (see [`Connection::in_flight`]).
    waiting: AtomicUsize,
    versions: OnceLock<ApiVersions>,
    /// The (API, version) pairs whose replies carried bytes past their
    /// schema, so the debug event about it is emitted once each.
    lenient: std::sync::Mutex<Vec<(ApiKey, i16)>>,
    /// On SASL connections: requests take it shared while they enqueue,
    /// a re-authentication (KIP-368) exclusively for its whole exchange,
    /// so that no other request reaches the broker between its
    /// SaslHandshake and its last SaslAuthenticate.
    gate: Option<RwLock<()>>,
}

/// A request already encoded as a frame, for [`Connection::send_frame`].
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// The API (for errors and tracing).
    pub api: ApiKey,
    /// The version it is encoded at.
    pub version: i16,
    /// The whole frame, length prefix included.
    pub frame: Bytes,
    /// The correlation id in the frame's header.
    pub correlation_id: i32,
    /// False when the broker sends no reply (Produce with acks=0).
    pub expect_response: bool,
    /// Overrides the connection's request timeout.
    pub timeout: Option<Duration>,
}

impl Connection {
    /// Resolve `addr` (`host:port`), connect, and do the ApiVersions
    /// handshake. `broker_id` is only used in errors and tracing.
    pub async fn connect(
        addr: &str,
        broker_id: Option<i32>,
        config: &ConnectionConfig,
    ) -> Result<Connection, Error> {
        let stream = open(addr, config, config.connect_timeout, config.request_timeout).await?;
        Self::handshake(stream, addr, broker_id, config).await
    }

    /// Do the ApiVersions handshake over an established stream (TCP, TLS,
    /// or an in-memory pipe) and start its connection task; then, when
    /// `config.security` has SASL, authenticate.
    pub async fn handshake<S>(
        stream: S,
        addr: &str,
        broker_id: Option<i32>,
        config: &ConnectionConfig,
    ) -> Result<Connection, Error>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let conn = Self::start(stream, addr, broker_id, config);
        conn.exchange_versions(None)
            .await
            .map_err(|e| conn.tls_cause(e, config))?;
        conn.authenticate(config, config.request_timeout).await?;
        Ok(conn)
    }

    /// Connect to a bootstrap address: [`Connection::connect`] with the
    /// TCP connect and the handshake bounded by `deadline` too (the
    /// connection keeps `config.request_timeout` for its later requests),
    /// and a handshake reply that starts but never completes a frame (cut
    /// by the peer, or nothing more within the timeout) reported as
    /// [`ProtocolViolation::IncompleteFrame`]: a Kafka broker writes that
    /// small reply whole, so a peer that does this speaks something else,
    /// and retrying the address would only hide it.
    pub(crate) async fn probe(
        addr: &str,
        config: &ConnectionConfig,
        deadline: Instant,
    ) -> Result<Connection, Error> {
        let left = || deadline.saturating_duration_since(Instant::now());
        let stream = open(
            addr,
            config,
            config.connect_timeout.min(left()),
            config.request_timeout.min(left()),
        )
        .await?;
        let conn = Self::start(stream, addr, None, config);
        let timeout = config.request_timeout.min(left());
        match conn.exchange_versions(Some(timeout)).await {
            Ok(()) => {
                conn.authenticate(config, config.request_timeout.min(left()))
                    .await?;
                Ok(conn)
            }
            Err(e) if config.security.protocol().uses_tls() => Err(conn.tls_cause(e, config)),
            // Only a lost connection or a timeout can hide a cut reply;
            // any other error already says what the peer did.
            Err(e) => match conn
                .inner
                .shared
                .partial_frame()
                .filter(|_| e.is_retriable())
            {
                Some((received, declared)) => Err(Error::NotKafka {
                    broker: addr.to_owned(),
                    cause: ProtocolViolation::IncompleteFrame {
                        received,
                        declared,
                        closed: !matches!(e, Error::Timeout { .. }),
                    },
                }),
                None => Err(e),
            },
        }
    }

    /// The ApiVersions handshake, falling back to older versions as the
    /// broker asks; `timeout` overrides the request timeout of each try.
    async fn exchange_versions(&self, timeout: Option<Duration>) -> Result<(), Error> {
        let req = versions::request();
        let mut version = API_VERSIONS_FIRST;
        loop {
            let frame = self
                .round_trip_encoded(&req, version, true, timeout)
                .await?;
            match versions::parse_reply(self.addr(), frame, version)? {
                Outcome::Supported(table) => {
                    let _ = self.inner.versions.set(table);
                    return Ok(());
                }
                Outcome::Retry(v) => {
                    tracing::debug!(
                        broker = self.addr(),
                        from = version,
                        to = v,
                        "ApiVersions fallback"
                    );
                    version = v;
                }
            }
        }
    }

    /// Start the connection task over `stream` without a handshake; the
    /// version table stays empty, so only the explicit-version calls work.
    pub fn start<S>(
        stream: S,
        addr: &str,
        broker_id: Option<i32>,
        config: &ConnectionConfig,
    ) -> Connection
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (tx, rx) = mpsc::channel(config.queue_depth.max(1));
        let shared = Arc::new(Shared::new(addr.to_owned()));
        tokio::spawn(task::run(
            stream,
            rx,
            shared.clone(),
            FrameDecoder::new(config.max_frame_size),
            config.max_in_flight.max(1),
        ));
        Connection {
            inner: Arc::new(Inner {
                tx,
                shared,
                broker_id,
                client_id: config.client_id.as_deref().map(KString::from),
                request_timeout: config.request_timeout,
                next_correlation_id: AtomicI32::new(0),
                waiting: AtomicUsize::new(0),
                versions: OnceLock::new(),
                lenient: std::sync::Mutex::new(Vec::new()),
                gate: config.security.sasl().map(|_| RwLock::new(())),
            }),
        }
    }

    /// The address this connection was made to.
    pub fn addr(&self) -> &str {
        &self.inner.shared.addr
    }

    /// The broker id, when known.
    pub fn broker_id(&self) -> Option<i32> {
        self.inner.broker_id
    }

    /// The broker's supported versions (empty before the handshake).
    pub fn api_versions(&self) -> &ApiVersions {
        static EMPTY: OnceLock<ApiVersions> = OnceLock::new();
        self.inner
            .versions
            .get()
            .unwrap_or_else(|| EMPTY.get_or_init(ApiVersions::default))
    }

    /// How many requests callers are waiting on: sent or queued, and not
    /// yet answered, failed or given up. A broker that stopped answering
    /// keeps them, so the pool sends cluster-wide requests to the
    /// connection with the fewest (Java's `leastLoadedNode`).
    pub fn in_flight(&self) -> usize {
        self.inner.waiting.load(Ordering::Relaxed)
    }

    /// Whether the connection task has stopped (poisoned or closed).
    pub fn is_closed(&self) -> bool {
        self.inner.tx.is_closed()
    }

    /// The error that killed the connection, if it died.
    pub fn poison(&self) -> Option<Error> {
        self.inner.shared.poison.get().cloned()
    }

    /// The highest version of `api` both sides support within `ours`.
    pub fn negotiate(&self, api: ApiKey, ours: (i16, i16)) -> Result<i16, Error> {
        self.api_versions()
            .negotiate(api, ours)
            .map_err(|e| match e {
                Error::UnsupportedVersion {
                    api, ours, theirs, ..
                } => Error::UnsupportedVersion {
                    api,
                    broker: Some(self.addr().to_owned()),
                    ours,
                    theirs,
                },
                other => other,
            })
    }

    /// Send `req` at the highest version both sides support and wait for the
    /// typed reply.
    pub async fn send<R>(&self, req: &R) -> Result<R::Response, Error>
    where
        R: Request,
        R::Response: ThrottleTime,
    {
        let version = self.negotiate(R::API_KEY, R::VALID_VERSIONS)?;
        self.send_at(req, version).await
    }

    /// Send `req` encoded at `version` and wait for the typed reply.
    pub async fn send_at<R>(&self, req: &R, version: i16) -> Result<R::Response, Error>
    where
        R: Request,
        R::Response: ThrottleTime,
    {
        let frame = self.round_trip_encoded(req, version, true, None).await?;
        self.decode_reply::<R>(frame, version)
    }

    /// [`Connection::send_at`] with a timeout of its own instead of the
    /// connection's `request_timeout`: a request the broker may hold on
    /// purpose (a Fetch's `max_wait_ms`, a JoinGroup's rebalance timeout)
    /// is given that time plus the request timeout.
    pub async fn send_at_with_timeout<R>(
        &self,
        req: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response, Error>
    where
        R: Request,
        R::Response: ThrottleTime,
    {
        self.send_timed(req, version, timeout, true).await
    }

    /// A request with its own timeout; `gated`: behind a re-authentication
    /// in progress (every request but the re-authentication's own).
    async fn send_timed<R>(
        &self,
        req: &R,
        version: i16,
        timeout: Duration,
        gated: bool,
    ) -> Result<R::Response, Error>
    where
        R: Request,
        R::Response: ThrottleTime,
    {
        let frame = self
            .round_trip_gated(req, version, true, Some(timeout), gated)
            .await?;
        self.decode_reply::<R>(frame, version)
    }

    fn decode_reply<R>(&self, frame: Bytes, version: i16) -> Result<R::Response, Error>
    where
        R: Request,
        R::Response: ThrottleTime,
    {
        // Lenient as Java and librdkafka are: the fields this version
        // defines are decoded and checked, bytes after them are ignored
        // (the librdkafka 2.12 mock appends one to Metadata v12).
        let read =
            header::read_response_as::<R>(frame, version).map_err(|source| Error::Decode {
                api: R::API_KEY,
                broker: self.addr().to_owned(),
                source,
            })?;
        if read.ignored > 0 {
            self.note_ignored_tail(R::API_KEY, version, read.ignored);
        }
        self.note_throttle(R::API_KEY, read.body.throttle_time_ms());
        Ok(read.body)
    }

    /// Send `req` at `version` for which the broker sends no reply (Produce
    /// with acks=0); returns once the frame is written.
    pub async fn send_no_response<R: Request>(&self, req: &R, version: i16) -> Result<(), Error> {
        self.round_trip_encoded(req, version, false, None)
            .await
            .map(drop)
    }

    /// Send a pre-encoded frame; returns the reply frame (header then body),
    /// or `None` when no reply was expected.
    pub async fn send_frame(&self, req: RawRequest) -> Result<Option<Bytes>, Error> {
        let expect = req.expect_response;
        let frame = self.round_trip(req).await?;
        Ok(expect.then_some(frame))
    }

    /// The next correlation id for a frame encoded by the caller.
    pub fn next_correlation_id(&self) -> i32 {
        self.inner
            .next_correlation_id
            .fetch_add(1, Ordering::Relaxed)
    }

    fn note_ignored_tail(&self, api: ApiKey, version: i16, bytes: usize) {
        let mut seen = self.inner.lenient.lock().unwrap_or_else(|e| e.into_inner());
        if !seen.contains(&(api, version)) {
            seen.push((api, version));
            tracing::debug!(
                broker = self.addr(),
                %api,
                version,
                bytes,
                "reply carries bytes after the fields of its version: ignored"
            );
        }
    }

    /// Record a throttle time a reply carried: the next request to this
    /// broker waits for it (KIP-219).
    pub fn note_throttle(&self, api: ApiKey, throttle_time_ms: i32) {
        if let Ok(ms) = u64::try_from(throttle_time_ms)
            && ms > 0
        {
            tracing::debug!(broker = self.addr(), %api, throttle_time_ms, "throttled by broker");
            self.inner
                .shared
                .throttle(Instant::now() + Duration::from_millis(ms));
        }
    }

    async fn round_trip_encoded<R: Request>(
        &self,
        req: &R,
        version: i16,
        expect_response: bool,
        timeout: Option<Duration>,
    ) -> Result<Bytes, Error> {
        self.round_trip_gated(req, version, expect_response, timeout, true)
            .await
    }

    async fn round_trip_gated<R: Request>(
        &self,
        req: &R,
        version: i16,
        expect_response: bool,
        timeout: Option<Duration>,
        gated: bool,
    ) -> Result<Bytes, Error> {
        let correlation_id = self.next_correlation_id();
        let mut buf = BytesMut::new();
        header::encode_request_frame(
            &mut buf,
            version,
            correlation_id,
            self.inner.client_id.as_ref(),
            req,
        )
        .map_err(|source| Error::Encode {
            api: R::API_KEY,
            source,
        })?;
        self.round_trip_as(
            RawRequest {
                api: R::API_KEY,
                version,
                frame: buf.freeze(),
                correlation_id,
                expect_response,
                timeout,
            },
            gated,
            false,
        )
        .await
    }

    async fn round_trip(&self, req: RawRequest) -> Result<Bytes, Error> {
        self.round_trip_as(req, true, false).await
    }

    async fn round_trip_as(&self, req: RawRequest, gated: bool, raw: bool) -> Result<Bytes, Error> {
        let span = tracing::debug_span!(
            "kafka_request",
            api = %req.api,
            version = req.version,
            broker_id = self.inner.broker_id,
            broker = %self.addr(),
            correlation_id = req.correlation_id,
        );
        self.round_trip_inner(req, gated, raw)
            .instrument(span)
            .await
    }

    async fn round_trip_inner(
        &self,
        req: RawRequest,
        gated: bool,
        raw: bool,
    ) -> Result<Bytes, Error> {
        // Counted from the gate on, until this future completes or is
        // dropped: a request held back by a re-authentication is not yet
        // in flight (the re-authentication waits for those that are).
        let mut _waiting = None;
        let started = Instant::now();
        let timeout = req.timeout.unwrap_or(self.inner.request_timeout);
        let api = req.api;
        let correlation_id = req.correlation_id;
        let (reply, rx) = oneshot::channel();
        let cmd = Command {
            frame: req.frame,
            correlation_id: req.correlation_id,
            expect_response: req.expect_response,
            raw,
            reply,
        };
        let wait = async {
            {
                // Held while enqueueing only: a re-authentication waits for
                // the requests being enqueued, and later ones wait for it.
                let _gate = match (&self.inner.gate, gated) {
                    (Some(gate), true) => Some(gate.read().await),
                    _ => None,
                };
                _waiting = Some(Waiting::count(&self.inner.waiting));
                self.inner
                    .tx
                    .send(cmd)
                    .await
                    .map_err(|_| self.inner.shared.dead_error())?;
            }
            rx.await.map_err(|_| self.inner.shared.dead_error())?
        };
        let result = match tokio::time::timeout(timeout, wait).await {
            Ok(r) => r,
            Err(_) => {
                let elapsed = started.elapsed();
                // The replies of a connection come in order: nothing behind
                // the lost reply will come either. Close it (Java and
                // librdkafka do), failing the other waiters at once with a
                // retriable error; the pool then connects anew.
                self.inner.shared.close(Error::Io {
                    broker: self.addr().to_owned(),
                    source: Arc::new(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "connection closed: a {api} request (correlation id {}) \
                             had no reply within {timeout:?}",
                            correlation_id
                        ),
                    )),
                });
                Err(Error::Timeout {
                    api,
                    broker: self.addr().to_owned(),
                    elapsed,
                })
            }
        };
        let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        match &result {
            Ok(_) => tracing::debug!(latency_us, "reply"),
            Err(error) => tracing::debug!(latency_us, %error, "request failed"),
        }
        result
    }
}

/// One request a caller waits on, counted in [`Connection::in_flight`]
/// while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn count(n: &'a AtomicUsize) -> Waiting<'a> {
        n.fetch_add(1, Ordering::Relaxed);
        Waiting(n)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
