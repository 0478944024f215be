//! A blocking, one-request-at-a-time Kafka connection over `std::net`, for
//! fixtures (CreateTopics on brokers without a CLI) and for tests that probe
//! a broker before krust-net exists or independently of it.
//!
//! Deliberately minimal: no pipelining, no retries, no SASL/TLS.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::BytesMut;
use krust_codec::frame::FrameDecoder;
use krust_codec::generated::{ApiVersionsRequest, ApiVersionsResponse};
use krust_codec::{KString, Request, header};

use crate::{Error, Result};

/// How long a connect, a write or a read may take.
pub const IO_TIMEOUT: Duration = Duration::from_secs(15);

/// A blocking connection that sends one request and reads its response.
#[derive(Debug)]
pub struct Connection {
    addr: String,
    stream: TcpStream,
    correlation_id: i32,
    read_buf: BytesMut,
    versions: Option<ApiVersionsResponse>,
}

impl Connection {
    /// Connect to `addr` (`host:port`).
    pub fn connect(addr: &str) -> Result<Self> {
        Self::connect_with_timeout(addr, IO_TIMEOUT)
    }

    /// Connect to `addr` with `timeout` for the connect and for each read
    /// and write (a probe of a broker that may be hung or starting).
    pub fn connect_with_timeout(addr: &str, timeout: Duration) -> Result<Self> {
        let sa: SocketAddr = addr
            .parse()
            .map_err(|e| Error::new(format!("bad broker address {addr:?}: {e}")))?;
        let stream = TcpStream::connect_timeout(&sa, timeout)
            .map_err(|e| Error::io(&format!("connecting to {addr}"), e))?;
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|()| stream.set_write_timeout(Some(timeout)))
            .and_then(|()| stream.set_nodelay(true))
            .map_err(|e| Error::io("socket options", e))?;
        Ok(Self {
            addr: addr.to_string(),
            stream,
            correlation_id: 0,
            read_buf: BytesMut::new(),
            versions: None,
        })
    }

    /// Send `body` at `version` and wait for its response, read as a client
    /// reads one: bytes after the fields of this version are ignored (as
    /// krust-net, Java and librdkafka do; the librdkafka 2.12 mock appends
    /// one to Metadata v12). [`send_read`](Self::send_read) counts them.
    pub fn send<R: Request>(&mut self, version: i16, body: &R) -> Result<R::Response> {
        Ok(self.send_read(version, body)?.body)
    }

    /// [`send`](Self::send), also giving the header and how many bytes after
    /// the schema's fields the broker sent (0 from a broker that follows it).
    pub fn send_read<R: Request>(
        &mut self,
        version: i16,
        body: &R,
    ) -> Result<header::ReadResponse<R::Response>> {
        let api = R::API_KEY;
        let what = |step: &str| format!("{api:?} v{version} to {}: {step}", self.addr);
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let mut frame = BytesMut::new();
        let client = KString::from("krust-testkit");
        header::encode_request_frame(
            &mut frame,
            version,
            self.correlation_id,
            Some(&client),
            body,
        )
        .map_err(|e| Error::new(format!("{}: {e}", what("encoding"))))?;
        self.stream
            .write_all(&frame)
            .map_err(|e| Error::io(&what("writing"), e))?;
        let decoder = FrameDecoder::default();
        let frame = loop {
            match decoder.decode(&mut self.read_buf) {
                Ok(Some(frame)) => break frame,
                Ok(None) => {}
                Err(e) => return Err(Error::new(format!("{}: {e}", what("framing")))),
            }
            let mut chunk = [0u8; 64 * 1024];
            let n = self
                .stream
                .read(&mut chunk)
                .map_err(|e| Error::io(&what("reading"), e))?;
            if n == 0 {
                return Err(Error::new(what("connection closed by the broker")));
            }
            self.read_buf.extend_from_slice(&chunk[..n]);
        };
        let response = header::read_response_as::<R>(frame, version)
            .map_err(|e| Error::new(format!("{}: {e}", what("decoding"))))?;
        if response.header.correlation_id != self.correlation_id {
            return Err(Error::new(format!(
                "{}: correlation id {} instead of {}",
                what("reading"),
                response.header.correlation_id,
                self.correlation_id
            )));
        }
        Ok(response)
    }

    /// The broker's ApiVersions (asked once, at v0, which every broker
    /// answers, then cached).
    pub fn api_versions(&mut self) -> Result<&ApiVersionsResponse> {
        if self.versions.is_none() {
            let response = self.send(0, &ApiVersionsRequest::default())?;
            if response.error_code != 0 {
                return Err(Error::new(format!(
                    "ApiVersions v0 to {}: error {}",
                    self.addr, response.error_code
                )));
            }
            self.versions = Some(response);
        }
        Ok(self.versions.as_ref().expect("set above"))
    }

    /// The highest version of `R` that both the broker and our codec speak.
    pub fn version_for<R: Request>(&mut self) -> Result<i16> {
        let key = R::API_KEY.key();
        let ours = R::API_KEY.valid_versions().1;
        let addr = self.addr.clone();
        let theirs = self
            .api_versions()?
            .api_keys
            .iter()
            .find(|v| v.api_key == key)
            .map(|v| (v.min_version, v.max_version))
            .ok_or_else(|| Error::new(format!("{addr} does not offer {:?}", R::API_KEY)))?;
        let version = theirs.1.min(ours);
        if version < theirs.0 {
            return Err(Error::new(format!(
                "no common version of {:?} with {addr}",
                R::API_KEY
            )));
        }
        Ok(version)
    }
}
