//! What every call shares, as tower layers around the router, outermost first:
//!
//! 1. [`RequestIdLayer`]: the caller's `x-request-id` (1 to 64 visible ASCII characters) or
//!    one made up here; echoed on every response, errors and refusals included.
//! 2. [`ObserveLayer`]: the call's span (method, request id, and later the caller's token
//!    name and the answering model; never a recipient's id, needs or context), its log
//!    line, and its metrics: the method label comes from the request path
//!    ([`Metrics::method`]), the code from the response's `grpc-status`, in the headers for an
//!    error answered at once, otherwise in the trailers at the end of the body. A stream
//!    (EstimateBatch, TrainModel) is therefore measured over its whole life, until its last
//!    message and status; a body dropped before its end (the caller went away) is counted
//!    as CANCELLED.
//! 3. The access check ([`crate::auth::AuthLayer`]), inside the span, so refusals are
//!    counted and logged with their request id.
//! 4. [`LimitLayer`]: at most `limits.concurrency` of ramtid's calls run at once; the others
//!    wait for a slot (they are not refused). A call holds its slot until its handler has
//!    answered: for a stream, until the stream is set up (its messages are produced
//!    afterwards, outside the limit), as before these layers. Health checks and
//!    reflection never wait.

use crate::metrics::{MethodId, Metrics};
use http_body::{Body, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;
use tokio::sync::Semaphore;
use tonic::codegen::http::{self, HeaderValue};
use tonic::codegen::Service;
use tonic::Code;
use tracing::{Instrument, Span};

/// Header (gRPC metadata key) of the request id.
pub const REQUEST_ID: &str = "x-request-id";
/// Longest request id taken from a caller.
pub const MAX_REQUEST_ID: usize = 64;

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'static>>;

/// A call's request id, in the request's extensions for the layers inside.
#[derive(Debug, Clone)]
pub struct RequestId(pub HeaderValue);

/// Whether a caller's request id is taken as it is: bounded, visible ASCII only (it goes
/// into logs and back into a header).
pub fn acceptable_request_id(v: &[u8]) -> bool {
    !v.is_empty() && v.len() <= MAX_REQUEST_ID && v.iter().all(u8::is_ascii_graphic)
}

#[derive(Debug)]
struct IdSource {
    /// Differs between processes, so ids from two replicas rarely collide.
    prefix: u32,
    next: AtomicU64,
}

impl IdSource {
    fn make(&self) -> HeaderValue {
        let (text, len) = id_text(self.prefix, self.next.fetch_add(1, Ordering::Relaxed));
        HeaderValue::from_bytes(&text[..len]).expect("hex digits and a dash")
    }
}

/// `{prefix:08x}-{n:x}`, written without the formatting machinery (once per call): the
/// bytes and how many of them are used.
fn id_text(prefix: u32, n: u64) -> ([u8; 25], usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 25];
    for (i, b) in out[..8].iter_mut().enumerate() {
        *b = HEX[(prefix >> (28 - 4 * i)) as usize & 0xf];
    }
    out[8] = b'-';
    let digits = (64 - n.leading_zeros() as usize).div_ceil(4).max(1);
    for i in 0..digits {
        out[9 + i] = HEX[(n >> (4 * (digits - 1 - i))) as usize & 0xf];
    }
    (out, 9 + digits)
}

/// Gives every call a request id and echoes it on the response.
#[derive(Debug, Clone)]
pub struct RequestIdLayer {
    ids: Arc<IdSource>,
}

impl Default for RequestIdLayer {
    fn default() -> Self {
        let prefix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
            .unwrap_or(0);
        RequestIdLayer {
            ids: Arc::new(IdSource {
                prefix,
                next: AtomicU64::new(1),
            }),
        }
    }
}

impl<S> tower_layer::Layer<S> for RequestIdLayer {
    type Service = RequestIdService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestIdService {
            inner,
            ids: self.ids.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RequestIdService<S> {
    inner: S,
    ids: Arc<IdSource>,
}

impl<S, B, R> Service<http::Request<B>> for RequestIdService<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let id = match req.headers().get(REQUEST_ID) {
            Some(v) if acceptable_request_id(v.as_bytes()) => v.clone(),
            _ => self.ids.make(),
        };
        req.extensions_mut().insert(RequestId(id.clone()));
        let call = self.inner.call(req);
        Box::pin(async move {
            let mut response = call.await?;
            response.headers_mut().insert(REQUEST_ID, id);
            Ok(response)
        })
    }
}

/// The span, log line and metrics of every call.
#[derive(Debug, Clone)]
pub struct ObserveLayer {
    metrics: Arc<Metrics>,
}

impl ObserveLayer {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        ObserveLayer { metrics }
    }
}

impl<S> tower_layer::Layer<S> for ObserveLayer {
    type Service = ObserveService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ObserveService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ObserveService<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

/// The `grpc-status` in headers or trailers.
fn grpc_status(headers: &http::HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|v| Code::from_bytes(v.as_bytes()))
}

/// What ends a call's observation: once, with the code it ended with.
struct Ending {
    metrics: Arc<Metrics>,
    method: MethodId,
    start: Instant,
    span: Span,
}

impl Ending {
    fn finish(self, code: Code) {
        let elapsed = self.start.elapsed();
        self.metrics.observe(self.method, code, elapsed);
        let _e = self.span.enter();
        let micros = elapsed.as_micros() as u64;
        if code == Code::Ok {
            tracing::debug!(?code, micros, "done");
        } else {
            tracing::info!(?code, micros, "failed");
        }
    }
}

impl<S, B, R> Service<http::Request<B>> for ObserveService<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Send + 'static,
{
    type Response = http::Response<Observed<R>>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = self.metrics.method(req.uri().path());
        let request_id = req.extensions().get::<RequestId>().cloned();
        let span = tracing::info_span!(
            "rpc",
            method = self.metrics.name(method),
            request_id = request_id
                .as_ref()
                .and_then(|id| id.0.to_str().ok())
                .unwrap_or(""),
            caller = tracing::field::Empty,
            model = tracing::field::Empty,
        );
        let ending = Ending {
            metrics: self.metrics.clone(),
            method,
            start: Instant::now(),
            span: span.clone(),
        };
        // The layers and the handler inside run in the span (the access check notes the
        // caller on it, handlers the model).
        let call = {
            let _e = span.enter();
            self.inner.call(req)
        };
        Box::pin(
            async move {
                match call.await {
                    Ok(response) => {
                        let (parts, body) = response.into_parts();
                        // An error answered at once carries its status in the headers and
                        // no body: the call ends here.
                        let ending = match grpc_status(&parts.headers) {
                            Some(code) => {
                                ending.finish(code);
                                None
                            }
                            None => Some(ending),
                        };
                        Ok(http::Response::from_parts(
                            parts,
                            Observed {
                                inner: body,
                                ending,
                            },
                        ))
                    }
                    Err(e) => {
                        ending.finish(Code::Unknown);
                        Err(e)
                    }
                }
            }
            .instrument(span),
        )
    }
}

/// A response body that ends its call's observation when its trailers pass (or when it is
/// dropped before them).
pub struct Observed<B> {
    inner: B,
    ending: Option<Ending>,
}

impl<B> Drop for Observed<B> {
    fn drop(&mut self) {
        if let Some(ending) = self.ending.take() {
            ending.finish(Code::Cancelled);
        }
    }
}

impl<B> Body for Observed<B>
where
    B: Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        // Recorded before the trailers go out, so a caller that has seen the status also
        // finds the call counted.
        let code = match &frame {
            Some(Ok(f)) => f
                .trailers_ref()
                .map(|t| grpc_status(t).unwrap_or(Code::Unknown)),
            Some(Err(_)) => Some(Code::Internal),
            None => Some(Code::Unknown),
        };
        // Taken only with a code: a data frame must leave the ending for the trailers.
        if let Some(code) = code {
            if let Some(ending) = this.ending.take() {
                ending.finish(code);
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// At most `limits.concurrency` of ramtid's calls at once; the others wait for a slot.
#[derive(Debug, Clone)]
pub struct LimitLayer {
    metrics: Arc<Metrics>,
    slots: Arc<Semaphore>,
}

impl LimitLayer {
    pub fn new(metrics: Arc<Metrics>, concurrency: usize) -> Self {
        LimitLayer {
            metrics,
            slots: Arc::new(Semaphore::new(concurrency)),
        }
    }
}

impl<S> tower_layer::Layer<S> for LimitLayer {
    type Service = LimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LimitService {
            inner,
            metrics: self.metrics.clone(),
            slots: self.slots.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LimitService<S> {
    inner: S,
    metrics: Arc<Metrics>,
    slots: Arc<Semaphore>,
}

impl<S, B> Service<http::Request<B>> for LimitService<S>
where
    S: Service<http::Request<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if !self.metrics.limited(self.metrics.method(req.uri().path())) {
            return Box::pin(self.inner.call(req));
        }
        // The service that was made ready goes with this call; its clone stays for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let slots = self.slots.clone();
        Box::pin(async move {
            // The semaphore is never closed: a permit always comes.
            let _slot = slots.acquire_owned().await.ok();
            inner.call(req).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{acceptable_request_id, id_text};

    #[test]
    fn made_request_ids_are_the_prefix_and_the_count_in_hex() {
        for (prefix, n) in [
            (0u32, 0u64),
            (0xdead_beef, 1),
            (7, 0xf),
            (0x0102_0304, 0x10),
            (u32::MAX, u64::MAX),
            (0x00ab_cdef, 0x1234_5678_9abc),
        ] {
            let (text, len) = id_text(prefix, n);
            assert_eq!(
                std::str::from_utf8(&text[..len]).unwrap(),
                format!("{prefix:08x}-{n:x}")
            );
        }
    }

    #[test]
    fn request_ids_are_bounded_visible_ascii() {
        assert!(acceptable_request_id(b"req-42"));
        assert!(acceptable_request_id(&[b'a'; 64]));
        for bad in [
            &b""[..],
            &[b'a'; 65],
            b"has space",
            b"tab\there",
            "å".as_bytes(),
        ] {
            assert!(!acceptable_request_id(bad), "{bad:?}");
        }
    }
}
